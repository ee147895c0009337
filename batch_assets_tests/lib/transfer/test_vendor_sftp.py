"""SFTP with a real OpenSSH server on loopback: polling a vendor's files in, delivering outbound."""

import datetime as dt
import subprocess

import paramiko
import pytest

from batch_assets.lib.engine.arrivals import ArrivalCursor
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.specs.model import SftpSpec
from batch_assets.lib.storage import LocalFolderStore
from batch_assets.lib.transfer.sftp import SftpConfigError, connect
from batch_assets.lib.transfer.vendor_sftp import deliver_files, pull_new_files
from batch_assets_tests.sftp_server import SftpServer


@pytest.fixture
def sftp_spec(sftp_server: SftpServer, demo_specs, tmp_path, monkeypatch) -> VendorSpec:
    inbound, outbound = sftp_server.root / "to_us", sftp_server.root / "from_us"
    inbound.mkdir(exist_ok=True)
    outbound.mkdir(exist_ok=True)
    for folder in (inbound, outbound):
        for f in folder.iterdir():
            f.unlink()
    monkeypatch.setenv("ACME_SFTP_KEY", str(sftp_server.client_key))
    sftp = SftpSpec(
        host=sftp_server.host,
        port=sftp_server.port,
        username=sftp_server.username,
        private_key_env="ACME_SFTP_KEY",
        host_key=sftp_server.host_key_line,
        inbound_dir=str(inbound),
        outbound_dir=str(outbound),
    )
    return demo_specs["acme_retail"].model_copy(update={"sftp": sftp})


def pull(store, spec, cursor=None, settle=0.0):
    with connect(spec.sftp) as session:
        return pull_new_files(
            store,
            spec,
            session,
            cursor or ArrivalCursor(),
            timezone="UTC",
            now=dt.datetime.now(dt.UTC),
            settle_seconds=settle,
            lag_seconds=900,
        )


def test_new_remote_files_land_in_inbound_once(sftp_spec, sftp_server, tmp_path) -> None:
    """The poll hands files to the arrival sensor; a file must land once, not on every poll."""
    remote = sftp_server.root / "to_us"
    (remote / "orders_1.csv").write_text("order_id\nORD-00000001\n")
    (remote / "readme.txt").write_text("not an order file\n")
    store = LocalFolderStore(tmp_path / "store")

    first = pull(store, sftp_spec)
    day = dt.datetime.fromtimestamp((remote / "orders_1.csv").stat().st_mtime, dt.UTC).date().isoformat()
    assert first.landed == [f"inbound/acme_retail/{day}/orders_1.csv"]
    assert store.read_bytes(first.landed[0]) == b"order_id\nORD-00000001\n"
    assert "does not match the vendor's pattern" in first.skipped[f"inbound/acme_retail/{day}/readme.txt"]

    again = pull(store, sftp_spec, first.cursor)
    assert again.landed == []

    (remote / "orders_1.csv").write_text("order_id\nORD-00000001\nORD-00000002\n")  # a new version
    changed = pull(store, sftp_spec, again.cursor)
    assert changed.landed == first.landed
    assert store.read_bytes(first.landed[0]).count(b"ORD-") == 2


def test_outbound_files_are_delivered_under_a_temporary_name_then_renamed(sftp_spec, sftp_server, tmp_path) -> None:
    store = LocalFolderStore(tmp_path / "store")
    with store.publish("outbound/acme_retail/2026-11-20/orders_1.csv") as p:
        p.write_text("a|b\r\n1|2\r\n")
    with store.publish("outbound/acme_retail/2026-11-20/acme_retail_2026-11-20_report.pdf") as p:
        p.write_bytes(b"%PDF-1.3")
    with connect(sftp_spec.sftp) as session:
        delivered = deliver_files(store, sftp_spec, session, "2026-11-20")
        again = deliver_files(store, sftp_spec, session, "2026-11-20")
    assert delivered == again == ["orders_1.csv"]
    remote = sftp_server.root / "from_us"
    assert sorted(p.name for p in remote.iterdir()) == ["orders_1.csv"]
    assert (remote / "orders_1.csv").read_bytes() == b"a|b\r\n1|2\r\n"


def test_a_server_with_another_host_key_is_refused(sftp_spec, tmp_path) -> None:
    """A pinned host key is what stops a man in the middle from collecting vendor files."""
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    wrong = sftp_spec.sftp.model_copy(update={"host_key": f"{kind} {blob}"})
    with pytest.raises(paramiko.SSHException), connect(wrong):
        pass


def test_a_missing_key_variable_is_a_clear_error(sftp_spec, monkeypatch) -> None:
    monkeypatch.delenv("ACME_SFTP_KEY")
    with pytest.raises(SftpConfigError, match=r"\$ACME_SFTP_KEY"), connect(sftp_spec.sftp):
        pass
