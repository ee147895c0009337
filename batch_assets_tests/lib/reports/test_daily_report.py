"""The vendor's daily PDF, read back the way a person would: rendered to PNG, and its text."""

import subprocess

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import dead_letters, layout, resolve_keys
from batch_assets.lib.engine.vendor_day import deliver_vendor_day, stage_vendor_day
from batch_assets.lib.reports.daily_report import write_daily_report
from batch_assets.lib.storage import LocalFolderStore

DAY = "2026-11-20"


def test_the_report_shows_the_days_files_counts_and_rejects_by_rule(tmp_path, demo_specs) -> None:
    spec = demo_specs["acme_retail"]
    store = LocalFolderStore(tmp_path / "store")
    made = []
    for n in (1, 2):
        with store.publish(f"inbound/acme_retail/{DAY}/{file_name_for(spec, DAY, n)}") as path:
            made.append(write_vendor_file(spec, path, 150, invalid_share=0.1, seed=n))
    broken = f"inbound/acme_retail/{DAY}/orders_{DAY}_009.csv"
    with store.publish(broken) as path:
        path.write_text('order_id,customer_id\n"ORD-1,C000001\n')
    stage = stage_vendor_day(store, spec, DAY, keys=resolve_keys(spec))
    deliver_vendor_day(store, spec, DAY)

    key, summary = write_daily_report(store, spec, DAY)

    assert key == layout.report_key("acme_retail", DAY)
    assert summary.total("rows_in") == sum(m.records for m in made)
    assert summary.total("rows_rejected") == sum(m.invalid for m in made)
    assert summary.quarantined == [broken.rsplit("/", 1)[-1]]
    assert dead_letters.list_dead_letters(store, "acme_retail")
    pdf = tmp_path / "report.pdf"
    store.download(key, pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert f"ACME Retail - daily report {DAY}" in text
    assert f"Rows in {summary.total('rows_in')}" in text
    assert f"Rows rejected {summary.total('rows_rejected')}" in text
    for rule, count in stage.rejects_by_rule.items():
        assert rule in text and str(count) in text
    assert f"orders_{DAY}_009.csv" in text  # the quarantined file is named
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    png = tmp_path / "page-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_a_rerun_writes_the_same_report_bytes(tmp_path, demo_specs) -> None:
    """Reruns are idempotent all the way down: even the PDF does not change."""
    spec = demo_specs["acme_retail"]
    store = LocalFolderStore(tmp_path / "store")
    with store.publish(f"inbound/acme_retail/{DAY}/{file_name_for(spec, DAY, 1)}") as path:
        write_vendor_file(spec, path, 50, seed=1)
    stage_vendor_day(store, spec, DAY, keys=resolve_keys(spec))
    first = store.read_bytes(write_daily_report(store, spec, DAY)[0])
    second = store.read_bytes(write_daily_report(store, spec, DAY)[0])
    assert first == second
