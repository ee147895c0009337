"""A vendor on SFTP end to end, in-process: the poll lands its file, a run stages it, the
delivery asset puts the outbound file on the vendor's server."""

import shutil

import dagster as dg
import yaml

from batch_assets.defs.resources import build_resources
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import slice_defs


def test_an_sftp_vendors_file_is_polled_processed_and_delivered_back(
    sftp_server, local_settings, demo_specs, tmp_path, monkeypatch
) -> None:
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    raw = yaml.safe_load((VENDORS_DIR / "acme_retail.yaml").read_text())
    to_us, from_us = sftp_server.root / "acme_out", sftp_server.root / "acme_in"
    shutil.rmtree(to_us, ignore_errors=True)
    shutil.rmtree(from_us, ignore_errors=True)
    to_us.mkdir()
    from_us.mkdir()
    raw["sftp"] = {
        "host": sftp_server.host,
        "port": sftp_server.port,
        "username": sftp_server.username,
        "private_key_env": "ACME_SFTP_KEY",
        "host_key": sftp_server.host_key_line,
        "inbound_dir": str(to_us),
        "outbound_dir": str(from_us),
    }
    (vendors / "acme_retail.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("ACME_SFTP_KEY", str(sftp_server.client_key))
    settings = local_settings.model_copy(update={"vendors_dir": vendors})
    spec = demo_specs["acme_retail"]
    made = write_vendor_file(spec, to_us / file_name_for(spec, "2026-11-22", 1), 120, invalid_share=0.05, seed=9)

    defs = slice_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    poll = defs.resolve_sensor_def("vendor_sftp_poll_sensor")
    context = dg.build_sensor_context(instance=instance, resources=build_resources(settings), definitions=defs)
    assert poll(context).skip_message == "acme_retail: 1 new file(s)"
    landed = [o.key for o in LocalFolderStore(settings.data_dir).list("inbound/")]
    assert [k.rsplit("/", 1)[-1] for k in landed] == [made.file_name]
    again = dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=build_resources(settings))
    assert poll(again).skip_message == "acme_retail: 0 new file(s)"

    arrival = defs.resolve_sensor_def("vendor_inbound_arrival_sensor")
    tick = arrival(dg.build_sensor_context(instance=instance, resources=build_resources(settings), definitions=defs))
    [request] = tick.run_requests
    assert dg.AssetKey(["vendor", "acme_retail", "sftp_delivery"]) in request.asset_selection

    result = defs.resolve_job_def("process_vendor_files_job").execute_in_process(
        partition_key=request.partition_key, asset_selection=request.asset_selection, instance=instance
    )
    assert result.success
    [delivered] = list(from_us.iterdir())
    assert delivered.name == made.file_name
    assert len(delivered.read_bytes().splitlines()) == 1 + made.records - made.invalid
