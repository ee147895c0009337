"""The market and factors slices load in the whole code location, with their names pinned."""

from __future__ import annotations

import dagster as dg
import pytest

from batch_assets_tests.conftest import VENDORS_DIR

BARS = {"market/krx/daily_bars", "market/us/daily_bars"}
FACTORS = {"factors/krx/daily", "factors/us/daily"}
BAR_CHECKS = ("high_low_consistent", "volume_non_negative", "prices_positive_unless_halted", "no_missing_symbols")


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
        mp.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        mp.setenv("BATCH_ASSETS_HASH_KEY", "test-hash-key")
        from batch_assets.definitions import defs as load

        loaded = load()
        loaded.resolve_asset_graph()
        return loaded


def specs_of(defs: dg.Definitions, prefix: tuple[str, ...]) -> dict[str, dg.AssetSpec]:
    return {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs() if s.key.path[0] in prefix}


def test_the_market_and_factor_asset_keys_are_pinned(defs: dg.Definitions) -> None:
    """Other slices (strategies, orders, PnL, seed 004's schedules) depend on these keys."""
    assert set(specs_of(defs, ("market", "factors"))) == BARS | FACTORS


def test_the_checks_are_pinned_and_the_price_rules_block(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    checks = {
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in graph.asset_check_keys
        if k.asset_key.path[0] in ("market", "factors")
    }
    assert checks == {f"{b}:{c}" for b in BARS for c in BAR_CHECKS} | {f"{f}:bar_history_complete" for f in FACTORS}
    for bars in BARS:
        key = dg.AssetKey.from_user_string(bars)
        blocking = {c for c in BAR_CHECKS if graph.get_check_spec(dg.AssetCheckKey(key, c)).blocking}
        assert blocking == {"high_low_consistent", "volume_non_negative", "prices_positive_unless_halted"}


def test_groups_owners_kinds_and_backfill_policy(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for name, spec in specs_of(defs, ("market", "factors")).items():
        assert spec.group_name == name.split("/")[0]
        assert spec.owners == ["team:markets"]
        assert "parquet" in spec.kinds and spec.description
        node = graph.get(spec.key)
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
        assert node.partitions_def.timezone == ("Asia/Seoul" if "/krx/" in name else "America/New_York")


def test_factors_depend_on_the_bars_of_their_exchange(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for exchange in ("krx", "us"):
        node = graph.get(dg.AssetKey(["factors", exchange, "daily"]))
        assert node.parent_keys == {dg.AssetKey(["market", exchange, "daily_bars"])}


def test_the_market_data_resource_is_provided(defs: dg.Definitions) -> None:
    assert "market_data" in defs.get_repository_def().get_top_level_resources()
