"""The dead-letter commands on the real local store: list what is in quarantine, send it back."""

import json

from batch_assets.cli import main
from batch_assets.lib.engine import dead_letters
from batch_assets.lib.storage import LocalFolderStore


def quarantined_file(store: LocalFolderStore, name: str) -> str:
    key = f"inbound/acme_retail/2026-11-20/{name}"
    with store.publish(key) as path:
        path.write_text('order_id\n"unterminated\n')
    return dead_letters.quarantine(store, key, "FormatError: unclosed quote", "v1")


def test_list_shows_each_quarantined_file_with_its_error(tmp_path, monkeypatch, capsys) -> None:
    store = LocalFolderStore(tmp_path)
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    quarantined_file(store, "orders_1.csv")

    assert main(["dead-letters", "list", "--json"]) == 0
    [letter] = json.loads(capsys.readouterr().out)
    assert letter["key"] == "quarantine/acme_retail/2026-11-20/orders_1.csv"
    assert letter["inbound_key"] == "inbound/acme_retail/2026-11-20/orders_1.csv"
    assert letter["error"] == "FormatError: unclosed quote"


def test_redrive_moves_files_back_to_inbound_and_empties_quarantine(tmp_path, monkeypatch, capsys) -> None:
    """A re-drive is a new upload for the arrival sensor: the file lands in inbound with a new version."""
    store = LocalFolderStore(tmp_path)
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    quarantined_file(store, "orders_1.csv")
    quarantined_file(store, "orders_2.csv")

    assert main(["dead-letters", "redrive", "--vendor", "acme_retail", "--day", "2026-11-20"]) == 0
    assert "re-driven quarantine/acme_retail/2026-11-20/orders_1.csv" in capsys.readouterr().out
    assert [o.key for o in store.list("inbound/")] == [
        "inbound/acme_retail/2026-11-20/orders_1.csv",
        "inbound/acme_retail/2026-11-20/orders_2.csv",
    ]
    assert list(store.list("quarantine/")) == []


def test_redrive_of_a_key_not_in_quarantine_is_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    assert main(["dead-letters", "redrive", "quarantine/acme_retail/2026-11-20/nope.csv"]) == 2
    assert "not in quarantine" in capsys.readouterr().out
