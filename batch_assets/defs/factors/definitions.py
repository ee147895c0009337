"""The factors slice: daily factors of KRX and US symbols, computed from the market slice's bars."""

import dagster as dg

from batch_assets.defs.factors.assets import build_factor_asset
from batch_assets.defs.factors.partitions import factor_partitions
from batch_assets.lib.markets.calendars import EXCHANGES
from batch_assets.lib.settings import Settings, load_settings


def build_factors(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_factor_asset(
                exchange,
                factor_partitions(exchange, settings),
                settings.markets_start,
                memory_limit=settings.factors_memory_limit,
                threads=settings.duckdb_threads,
            )
            for exchange in EXCHANGES
        ]
    )


@dg.definitions
def factors() -> dg.Definitions:
    return build_factors(load_settings())
