"""Vendor onboarding without a deploy: ``vendor check`` and ``vendor preview`` on the demo vendors'
generated files and on broken specs, through the real CLI entry point and the real engine."""

import json
import shutil
from pathlib import Path

import pytest

from batch_assets.cli import main
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.specs import VendorSpecError, load_vendor_spec
from batch_assets_tests.conftest import VENDORS_DIR

DEMO_VENDORS = ["acme_retail", "globex_logistics", "hooli_ads", "initech_payroll", "umbrella_health"]


def sample(spec, folder: Path, records: int = 120, invalid_share: float = 0.15):
    path = folder / file_name_for(spec, "2026-11-20", 1)
    return path, write_vendor_file(spec, path, records, invalid_share=invalid_share, seed=7)


def broken_spec(tmp_path: Path, old: str, new: str) -> Path:
    """ACME's spec with one line changed, under its own name (the loader wants file name = vendor id)."""
    path = tmp_path / "specs" / "acme_retail.yaml"
    path.parent.mkdir()
    text = (VENDORS_DIR / "acme_retail.yaml").read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_check_accepts_a_valid_spec(capsys) -> None:
    assert main(["vendor", "check", str(VENDORS_DIR / "acme_retail.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "acme_retail" in out and "csv in, csv out per_file" in out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("type: integer", "type: money", "schema.4.type"),
        ('expression: "quantity * unit_price"', 'expression: "quantity * no_such_column"', "line_total"),
        ("vendor_id: acme_retail", "vendor_id: acme", "must match the file name"),
    ],
    ids=["unknown type", "business rule that does not compile", "vendor id not the file name"],
)
def test_check_refuses_a_broken_spec_with_the_loaders_own_message(tmp_path, capsys, old, new, expected) -> None:
    """Operators fix what the code location would refuse: the same words, before any deploy."""
    path = broken_spec(tmp_path, old, new)
    with pytest.raises(VendorSpecError) as loader:
        load_vendor_spec(path)
    assert main(["vendor", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == str(loader.value).strip()
    assert expected in err


def test_check_json_says_valid_or_why_not(tmp_path, capsys) -> None:
    path = broken_spec(tmp_path, "type: integer", "type: money")
    assert main(["vendor", "check", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and "schema.4.type" in report["error"]
    assert main(["vendor", "check", str(VENDORS_DIR / "hooli_ads.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "spec": str(VENDORS_DIR / "hooli_ads.yaml"),
        "valid": True,
        "vendor_id": "hooli_ads",
    }


@pytest.mark.parametrize("vendor", DEMO_VENDORS)
def test_preview_runs_the_engine_on_a_generated_file_of_each_demo_vendor(
    vendor, demo_specs, tmp_path, monkeypatch, capsys
) -> None:
    """Each demo vendor's generated file: every record is either out or rejected, the rejects are
    exactly the records generated broken, and nothing lands in the file store."""
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path / "store"))
    spec = demo_specs[vendor]
    path, made = sample(spec, tmp_path)
    assert made.invalid > 0
    assert main(["vendor", "preview", str(VENDORS_DIR / f"{vendor}.yaml"), str(path), "--rows", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] and report["file_name_matches"]
    assert (report["rows_in"], report["rows_rejected"]) == (made.records, made.invalid)
    assert report["rows_out"] == made.records - made.invalid
    assert len(report["records"]) == 4 and len(report["rejects"]) == 4
    assert sum(report["rejects_by_rule"].values()) == made.invalid
    for reject in report["rejects"]:
        assert reject["rule"] in report["rejects_by_rule"] and reject["reason"]
    assert report["outbound_preview"]
    assert not (tmp_path / "store").exists()


def test_preview_masks_the_outbound_records_and_the_rejects(demo_specs, tmp_path, capsys) -> None:
    """A preview is shown to people onboarding a vendor: it must not show what production masks."""
    path, _ = sample(demo_specs["acme_retail"], tmp_path)
    assert main(["vendor", "preview", str(VENDORS_DIR / "acme_retail.yaml"), str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    emails = [r["customer_email"] for r in report["records"]]
    emails += [r["fields"]["customer_email"] for r in report["rejects"] if r["fields"].get("customer_email")]
    assert emails and all(e.startswith("***") for e in emails)  # the local part, even of a broken address
    refs = [r["customer_ref"] for r in report["records"]]
    assert all(len(ref) == 64 for ref in refs)  # HMAC-SHA256 pseudonyms, not customer ids
    assert not any(ref in path.read_text() for ref in refs)


def test_preview_prints_records_file_and_rejects_as_tables(demo_specs, tmp_path, capsys) -> None:
    path, made = sample(demo_specs["initech_payroll"], tmp_path)
    assert main(["vendor", "preview", str(VENDORS_DIR / "initech_payroll.yaml"), str(path), "--rows", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{made.records} records in" in out
    assert "Outbound records (first 3 of" in out and "employee_id" in out
    assert "Outbound file (fixed_width, first 3 records as written)" in out
    assert "record  line  rule" in out
    assert f"Rejects (first 3 of {made.invalid}" in out


def test_preview_without_the_hash_key_uses_a_preview_key_and_says_so(demo_specs, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BATCH_ASSETS_HASH_KEY")
    path, _ = sample(demo_specs["acme_retail"], tmp_path)
    assert main(["vendor", "preview", str(VENDORS_DIR / "acme_retail.yaml"), str(path)]) == 0
    assert "$BATCH_ASSETS_HASH_KEY is not set" in capsys.readouterr().out


def test_preview_warns_when_the_sample_name_would_be_passed_over(demo_specs, tmp_path, capsys) -> None:
    path, _ = sample(demo_specs["acme_retail"], tmp_path)
    renamed = path.rename(tmp_path / "acme-export.csv")
    assert main(["vendor", "preview", str(VENDORS_DIR / "acme_retail.yaml"), str(renamed), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["file_name_matches"] is False
    assert any("does not match file_pattern" in note for note in report["notes"])


def test_preview_of_a_broken_spec_exits_2_before_reading_the_sample(demo_specs, tmp_path, capsys) -> None:
    path, _ = sample(demo_specs["acme_retail"], tmp_path)
    spec = broken_spec(tmp_path, "type: integer", "type: money")
    assert main(["vendor", "preview", str(spec), str(path)]) == 2
    assert "invalid vendor spec" in capsys.readouterr().err


def test_preview_of_an_unreadable_sample_exits_1_with_the_reason(tmp_path, capsys) -> None:
    path = tmp_path / "shipments_2026-11-20_001.json"
    path.write_text('[{"shipment_id": "SH0000001", ')
    assert main(["vendor", "preview", str(VENDORS_DIR / "globex_logistics.yaml"), str(path)]) == 1
    assert "unreadable as json" in capsys.readouterr().err


def test_a_copied_spec_can_be_checked_from_anywhere(tmp_path, capsys) -> None:
    """Onboarding starts outside the repo: the spec file is all that is needed."""
    target = tmp_path / "hooli_ads.yaml"
    shutil.copy(VENDORS_DIR / "hooli_ads.yaml", target)
    assert main(["vendor", "check", str(target)]) == 0
