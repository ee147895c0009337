"""The Dagster UI as a person uses it: a real headless Chromium against a real webserver + daemon.

One test walks the whole path in order, because the steps share one deployment (~10 s to start)
and the slow part (a backfill turns Succeeded ~30 s after its last run) is best overlapped with
the others. Every step leaves a screenshot under ``test-artifacts/ui/`` for a person to look at.

Chromium is Debian's package (``scripts/test.sh`` installs it); Playwright is pointed at it with
``executable_path``, so it never downloads a browser.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import REPO_ROOT
from batch_assets_tests.dagster_server import (  # noqa: F401  (dagster_deployment is a fixture)
    DagsterDeployment,
    dagster_deployment,
    graphql,
    wait_for_code_location,
)
from batch_assets_tests.defs.vendor_files.helpers import drop_file

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
LOCATION = "batch_assets"
FINAL_RUN_STATUS = re.compile(r"^(Success|Failure|Canceled)$")
# Upper bounds, not expectations. The embedded profile lets one vendor transform run at a time
# (pool vendor_transform, 1 slot), so this test's four runs go one after another; each costs a
# few CPU-seconds, and the machine's two cores are shared with whole suites.
RUN_TIMEOUT_S = 240
# The backfill daemon marks a backfill done on its pass after the last run (~30 s).
BACKFILL_TIMEOUT_S = 360


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's screens
    ARTIFACTS.mkdir(parents=True)
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    # Clicks and assertions wait up to 30 s: the machine's two cores are shared with whole suites.
    context.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        # Whatever happened, the last screen is kept: on a failure it is the first thing to look at.
        page.screenshot(path=ARTIFACTS / "99-last-screen.png")
        context.close()


def shot(page: Page, name: str, full_page: bool = False) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    return path


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    # A fresh instance may greet with "Join the Dagster community"; it blocks every click.
    skip = page.get_by_role("button", name="Skip")
    if skip.is_visible():
        skip.click()


def assets_by_group(url: str) -> dict[str, dict[str, bool]]:
    """What the code location defines, asked of the same server: group -> {asset key "a/b/c": materializable}."""
    nodes = graphql(url, "{ assetNodes { assetKey { path } groupName isMaterializable } }")["assetNodes"]
    groups: dict[str, dict[str, bool]] = {}
    for node in nodes:
        groups.setdefault(node["groupName"], {})["/".join(node["assetKey"]["path"])] = node["isMaterializable"]
    return groups


def failed_runs(deployment: DagsterDeployment) -> str:
    """Why runs failed, read from the deployment's instance: the message a failing test should carry."""
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        lines = []
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
            lines.append(f"run {run.run_id} {dict(run.tags)}")
            errors = [e for e in instance.all_logs(run.run_id) if e.is_error]
            lines += [f"  {e.dagster_event_type}: {e.message[:2000]}" for e in errors]
    return "\n".join(lines) or "no failed runs\n" + deployment.log_tail()


def launch_dialog_for(page: Page, partitions: str) -> Locator:
    """In the open launch dialog, select partitions as typed (a key, or ``[START...END]``)."""
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_role("textbox")
    box.fill(partitions)
    box.press("Enter")
    return dialog


def wait_for_run_page(page: Page, url: str, run_path: str) -> str:
    """Open a run's page and wait for its final status; returns it."""
    open_page(page, f"{url}{run_path}")
    status = page.get_by_text(FINAL_RUN_STATUS).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
    return status.inner_text()


def metadata_value(page: Page, label: str) -> Locator:
    """The value cell next to a label in the materialization's metadata table."""
    row = page.locator("tr").filter(has=page.get_by_text(label, exact=True)).first
    return row.locator("td").nth(1)


def days_ago(n: int) -> str:
    # The fixture's vendor day is in UTC; days older than the sensor's 2-day lookback are left
    # to people (UI materializations and backfills), so the sensor does not race them.
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=n)).isoformat()


def test_a_person_finds_the_assets_materializes_a_partition_sees_a_sensor_run_and_a_backfill_complete(
    dagster_deployment: DagsterDeployment,  # noqa: F811
    demo_specs: dict[str, VendorSpec],
    page: Page,
) -> None:
    """The UI is where operators work: each of these paths must work end to end in a real browser."""
    url = dagster_deployment.url
    store = LocalFolderStore(dagster_deployment.data_dir)
    manual_day = days_ago(10)
    backfill_days = [days_ago(8), days_ago(7)]
    _, manual_file = drop_file(store, demo_specs["acme_retail"], day=manual_day, n=1, records=300)
    for n, day in enumerate(backfill_days, start=1):
        drop_file(store, demo_specs["hooli_ads"], day=day, n=n)

    # 1. The asset graph: every group the code location defines is there (the vendor groups, and
    #    the market groups once that slice lands), and a vendor group and the market groups show
    #    their assets.
    wait_for_code_location(dagster_deployment)
    groups = assets_by_group(url)
    vendor_groups = {f"vendor_{vid}" for vid in demo_specs}
    assert vendor_groups <= set(groups), sorted(groups)
    open_page(page, f"{url}/asset-groups")
    for group in sorted(groups):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    shot(page, "01-asset-graph")
    shown = sorted(vendor_groups)[:1] + sorted(g for g in groups if g.startswith("market"))
    for group in shown:
        open_page(page, f"{url}/locations/{LOCATION}/asset-groups/{group}")
        for key in sorted(groups[group]):
            expect(page.get_by_text(key.rsplit("/", 1)[-1], exact=True).first).to_be_visible()
        shot(page, f"02-asset-group-{group}")

    # 2. Materialize one vendor partition from the asset page: Materialize -> the multi-asset's
    #    sibling (rejects) is confirmed -> the partition dialog -> launch 1 run.
    open_page(page, f"{url}/assets/vendor/acme_retail/staged")
    page.get_by_role("button", name=re.compile(r"Materialize…$")).click()
    page.get_by_role("button", name="Confirm").click()
    dialog = launch_dialog_for(page, manual_day)
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    shot(page, "03-materialize-dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()
    toast = page.locator('a[href^="/runs/"]').first  # the toast's "View" link; it fades after a few seconds
    run_path = toast.get_attribute("href")
    assert run_path and re.fullmatch(r"/runs/[0-9a-f-]{36}", run_path), run_path

    # 3. A vendor drops a file: the arrival sensor queues a run (looked for on the Runs page below).
    today = days_ago(0)
    drop_file(store, demo_specs["globex_logistics"], day=today, n=1)

    # 4. While they run, launch a 2-day backfill of one vendor's whole group (every asset but the
    #    external inbound) from the group's lineage: its completion is the slowest thing to wait for.
    backfilled = sorted(key for key, materializable in groups["vendor_hooli_ads"].items() if materializable)
    open_page(page, f"{url}/locations/{LOCATION}/asset-groups/vendor_hooli_ads")
    page.get_by_role("button", name=re.compile(rf"Materialize all \({len(backfilled)}\)…$")).click()
    dialog = launch_dialog_for(page, f"[{backfill_days[0]}...{backfill_days[-1]}]")
    expect(dialog.get_by_text(f"{len(backfill_days)} partitions", exact=True)).to_be_visible()
    shot(page, "04-backfill-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    backfill_path = page.locator('a[href^="/runs/b/"]').first.get_attribute("href")
    assert backfill_path, "no backfill link in the launch toast"

    # 5. The manual run succeeds, and the asset page shows its numbers.
    status = wait_for_run_page(page, url, run_path)
    shot(page, "05-manual-run")
    assert status == "Success", failed_runs(dagster_deployment)
    open_page(page, f"{url}/assets/vendor/acme_retail/staged?view=events")
    latest = page.get_by_text(re.compile(rf"Partition\s*{manual_day}\s*materialized in run\s*{run_path[6:14]}"))
    expect(latest.first).to_be_visible()
    expect(metadata_value(page, "rows_in")).to_have_text(str(manual_file.records))
    expect(metadata_value(page, "rows_out")).to_have_text(str(manual_file.records - manual_file.invalid))
    expect(metadata_value(page, "rows_rejected")).to_have_text(str(manual_file.invalid))
    shot(page, "06-asset-events-metadata")

    # 6. The arrival sensor's run shows on the Runs page, with its tags, and succeeds.
    runs_url = f"{url}/runs?q%5B0%5D=tag%3Avendor%3Dglobex_logistics"
    row = page.locator("div[data-index]").filter(has_text="vendor_inbound_arrival_sensor")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        open_page(page, runs_url)
        page.get_by_text("Launched by", exact=True).wait_for()
        if row.count() and row.first.get_by_text(FINAL_RUN_STATUS).count():
            break
        assert time.monotonic() < deadline, f"no finished sensor run within {RUN_TIMEOUT_S}s\n" + (
            dagster_deployment.log_tail()
        )
        page.wait_for_timeout(2000)
    expect(row.first).to_contain_text(f"partition: {today}")
    expect(row.first).to_contain_text("trigger: arrival")
    shot(page, "07-runs-sensor-run")
    assert row.first.get_by_text(FINAL_RUN_STATUS).inner_text() == "Success", failed_runs(dagster_deployment)

    # 7. The backfill completes: Succeeded, both partitions succeeded for each of its assets.
    open_page(page, f"{url}{backfill_path}")
    backfill_status = page.get_by_text("Status", exact=True).locator("xpath=following-sibling::div[1]")
    expect(backfill_status).to_have_text(
        re.compile(r"^(Succeeded|Failed|Canceled|Completed with failures)$"), timeout=BACKFILL_TIMEOUT_S * 1000
    )
    shot(page, "08-backfill-done")
    assert backfill_status.inner_text() == "Succeeded", failed_runs(dagster_deployment)
    # Its table (asset, progress, targeted, in progress, succeeded, failed) is not an HTML table:
    # read it as the text a person reads.
    table = page.locator("body").inner_text()
    n = len(backfill_days)
    for key in backfilled:
        name = re.escape(key.replace("/", " / "))
        assert re.search(rf"{name}\s+100% completed\s+{n}\s+0\s+{n}\s+0(\s|$)", table), (key, table)
