"""One daily-partitioned asset family per vendor, built from its spec.

vendor/<id>/inbound  (external: the files the vendor dropped, reported by the arrival sensor)
  -> vendor/<id>/staged + vendor/<id>/rejects  (one step: the chunked DuckDB transform)
  -> vendor/<id>/outbound  (the vendor's own format)
"""

import dagster as dg

from batch_assets.defs.resources import FileStoreResource, TransformEngineResource
from batch_assets.lib.engine import MaskingKeyError, layout, missing_keys, resolve_keys
from batch_assets.lib.engine.vendor_day import DayStage, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.reports.daily_report import write_daily_report
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.transfer.sftp import connect as sftp_connect
from batch_assets.lib.transfer.vendor_sftp import deliver_files

STAGE_TAG = "batch_assets/stage"
REPORT = "daily_report"
DELIVERY = "sftp_delivery"
OWNERS = ["team:vendor-exchange"]
# A step that failed for a reason other than its files (storage, network) is retried; the day is
# recomputed from its inputs, so a retry is safe. File errors never get here: they are quarantined.
TRANSIENT_RETRIES = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def vendor_key(vendor_id: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey(["vendor", vendor_id, stage])


def vendor_run_selection(spec: VendorSpec) -> list[dg.AssetKey]:
    """What a run for one vendor day materializes: from staging to the report and the delivery."""
    stages = [layout.STAGED, layout.REJECTS, layout.OUTBOUND, REPORT]
    if spec.sftp is not None and spec.sftp.outbound_dir is not None:
        stages.append(DELIVERY)
    return [vendor_key(spec.vendor_id, s) for s in stages]


def vendor_group(spec: VendorSpec) -> str:
    return f"vendor_{spec.vendor_id}"


def vendor_tags(spec: VendorSpec, stage: str) -> dict[str, str]:
    return {STAGE_TAG: stage, "vendor": spec.vendor_id, "priority": spec.priority.value}


def _preview_markdown(rows: list[dict]) -> str:
    if not rows:
        return "_no records_"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def stage_metadata(result: DayStage, staged_uri: str) -> dict[str, object]:
    rows_in, rows_out, rejected = (result.total(a) for a in ("rows_in", "rows_out", "rows_rejected"))
    return {
        "files": len(result.files),
        "files_quarantined": len(result.quarantined),
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rejected,
        "reject_rate": rejected / rows_in if rows_in else 0.0,
        "bytes_in": result.total("bytes_in"),
        "duration_seconds": round(result.seconds, 3),
        "records_per_second": round(rows_in / result.seconds) if result.seconds > 0 else 0,
        "rejects_by_rule": dg.MetadataValue.json(dict(result.rejects_by_rule.most_common())),
        "files_skipped": dg.MetadataValue.json(result.skipped),
        "location": dg.MetadataValue.url(staged_uri)
        if staged_uri.startswith("s3")
        else dg.MetadataValue.path(staged_uri),
        "preview": dg.MetadataValue.md(_preview_markdown(result.preview)),
        "dagster/row_count": rows_out,
    }


def build_vendor_assets(
    spec: VendorSpec, partitions_def: dg.PartitionsDefinition, *, default_key: bytes | None = None
) -> list:
    """The inbound spec, the staging multi-asset (with its checks) and the outbound asset of one vendor.

    ``default_key`` stands in for a missing masking key (the demo profile); None: a missing key fails the run.
    """
    vid = spec.vendor_id
    group = vendor_group(spec)
    inbound_key, staged_key, rejects_key, outbound_key = (
        vendor_key(vid, s) for s in (layout.INBOUND, layout.STAGED, layout.REJECTS, layout.OUTBOUND)
    )
    inbound = dg.AssetSpec(
        inbound_key,
        description=f"Files {spec.name} drops into inbound/{vid}/<day>/ ({spec.input.kind}).",
        group_name=group,
        partitions_def=partitions_def,
        kinds={spec.input.kind},
        tags=vendor_tags(spec, layout.INBOUND),
        owners=OWNERS,
    )
    conserved = dg.AssetCheckSpec(
        "records_conserved",
        asset=staged_key,
        blocking=True,
        description="Every record read is either staged or rejected: rows in = rows out + rows rejected.",
    )
    reject_rate = dg.AssetCheckSpec(
        "reject_rate_within_threshold",
        asset=staged_key,
        description=f"At most {spec.reject_rate_threshold:.1%} of the day's records are rejected.",
    )
    readable = dg.AssetCheckSpec(
        "inbound_files_readable",
        asset=staged_key,
        description=(
            "Every inbound file could be processed; one that cannot is moved to quarantine/ with its error "
            "(re-drive: batch-assets dead-letters redrive), nothing of it published."
        ),
    )
    arrived = dg.AssetCheckSpec(
        "inbound_files_arrived", asset=staged_key, description="At least one file arrived for the day."
    )

    @dg.multi_asset(
        name=f"stage_{vid}",
        specs=[
            dg.AssetSpec(
                staged_key,
                deps=[inbound],
                group_name=group,
                kinds={"duckdb", "parquet"},
                owners=OWNERS,
                tags=vendor_tags(spec, layout.STAGED),
                description=f"{spec.name}'s records of the day, validated, mapped and masked (Parquet).",
            ),
            dg.AssetSpec(
                rejects_key,
                deps=[inbound],
                group_name=group,
                kinds={"json"},
                owners=OWNERS,
                tags=vendor_tags(spec, layout.REJECTS),
                description=f"{spec.name}'s rejected records of the day, each with its rule and reason.",
            ),
        ],
        check_specs=[conserved, reject_rate, readable, arrived],
        partitions_def=partitions_def,
        pool="vendor_transform",
        retry_policy=TRANSIENT_RETRIES,
        op_tags={"vendor": vid},
    )
    def stage(
        context: dg.AssetExecutionContext, file_store: FileStoreResource, transform_engine: TransformEngineResource
    ):
        day = context.partition_key
        try:
            keys = resolve_keys(spec, default=default_key)
        except MaskingKeyError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        if missing_keys(spec):
            context.log.warning("demo profile: no masking key is set, so pseudonyms use the public demo key")
        store = file_store.store()
        result = stage_vendor_day(store, spec, day, keys=keys, options=transform_engine.options(), log=context.log.info)
        rows_in, rows_out, rejected = (result.total(a) for a in ("rows_in", "rows_out", "rows_rejected"))
        rate = rejected / rows_in if rows_in else 0.0
        yield dg.MaterializeResult(
            asset_key=staged_key,
            metadata=stage_metadata(result, store.uri(layout.day_prefix(layout.STAGED, vid, day))),
            check_results=[
                dg.AssetCheckResult(
                    check_name="records_conserved",
                    passed=result.conserved,
                    metadata={"rows_in": rows_in, "rows_out": rows_out, "rows_rejected": rejected},
                    description=None if result.conserved else "records were lost or duplicated between read and write",
                ),
                dg.AssetCheckResult(
                    check_name="reject_rate_within_threshold",
                    passed=rate <= spec.reject_rate_threshold,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"reject_rate": rate, "threshold": spec.reject_rate_threshold},
                ),
                dg.AssetCheckResult(
                    check_name="inbound_files_readable",
                    passed=not result.failed,
                    metadata={
                        "failed_files": dg.MetadataValue.json(result.failed),
                        "quarantined_at": dg.MetadataValue.json(result.quarantined),
                    },
                    description="; ".join(f"{k} -> {result.quarantined[k]}: {v}" for k, v in result.failed.items())
                    or None,
                ),
                dg.AssetCheckResult(
                    check_name="inbound_files_arrived",
                    passed=bool(result.files or result.failed),
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"files": len(result.files)},
                ),
            ],
        )
        yield dg.MaterializeResult(
            asset_key=rejects_key,
            metadata={
                "rows_rejected": rejected,
                "rejects_by_rule": dg.MetadataValue.json(dict(result.rejects_by_rule.most_common())),
                "location": store.uri(layout.day_prefix(layout.REJECTS, vid, day)),
                "dagster/row_count": rejected,
            },
        )

    @dg.asset(
        key=outbound_key,
        deps=[staged_key],
        partitions_def=partitions_def,
        group_name=group,
        kinds={spec.output.format.kind},
        owners=OWNERS,
        tags=vendor_tags(spec, layout.OUTBOUND),
        retry_policy=TRANSIENT_RETRIES,
        description=f"The file(s) that go back to {spec.name} ({spec.output.format.kind}, {spec.output.granularity}).",
    )
    def outbound(context: dg.AssetExecutionContext, file_store: FileStoreResource) -> dg.MaterializeResult:
        store = file_store.store()
        day = context.partition_key
        result = deliver_vendor_day(store, spec, day, log=context.log.info)
        return dg.MaterializeResult(
            metadata={
                "files": len(result.outbound_keys),
                "rows_out": result.rows,
                "bytes_out": result.bytes_out,
                "duration_seconds": round(result.seconds, 3),
                "locations": dg.MetadataValue.json([store.uri(k) for k in result.outbound_keys]),
                "removed": dg.MetadataValue.json(result.removed),
                "dagster/row_count": result.rows,
            }
        )

    report_key = vendor_key(vid, REPORT)

    @dg.asset(
        key=report_key,
        deps=[staged_key, rejects_key, outbound_key],
        partitions_def=partitions_def,
        group_name=group,
        kinds={"pdf"},
        owners=OWNERS,
        tags=vendor_tags(spec, REPORT),
        retry_policy=TRANSIENT_RETRIES,
        description=f"{spec.name}'s day on one PDF page, beside the outbound files: files, rows, rejects by rule.",
    )
    def daily_report(context: dg.AssetExecutionContext, file_store: FileStoreResource) -> dg.MaterializeResult:
        store = file_store.store()
        key, summary = write_daily_report(store, spec, context.partition_key)
        return dg.MaterializeResult(
            metadata={
                "location": store.uri(key),
                "files": len(summary.files),
                "rows_in": summary.total("rows_in"),
                "rows_out": summary.total("rows_out"),
                "rows_rejected": summary.total("rows_rejected"),
                "files_quarantined": len(summary.quarantined),
            }
        )

    assets = [inbound, stage, outbound, daily_report]
    if spec.sftp is not None and spec.sftp.outbound_dir is not None:
        assets.append(build_sftp_delivery(spec, partitions_def, outbound_key))
    return assets


def build_sftp_delivery(spec: VendorSpec, partitions_def: dg.PartitionsDefinition, outbound_key: dg.AssetKey):
    sftp = spec.sftp

    @dg.asset(
        key=vendor_key(spec.vendor_id, DELIVERY),
        deps=[outbound_key],
        partitions_def=partitions_def,
        group_name=vendor_group(spec),
        kinds={"sftp"},
        owners=OWNERS,
        tags=vendor_tags(spec, DELIVERY),
        retry_policy=TRANSIENT_RETRIES,
        description=f"The day's outbound files as delivered to {spec.name}'s SFTP server ({sftp.host}).",
    )
    def sftp_delivery(context: dg.AssetExecutionContext, file_store: FileStoreResource) -> dg.MaterializeResult:
        store = file_store.store()
        with sftp_connect(sftp) as session:
            delivered = deliver_files(store, spec, session, context.partition_key)
        for name in delivered:
            context.log.info(f"delivered {name} to {sftp.host}:{sftp.outbound_dir}")
        return dg.MaterializeResult(
            metadata={
                "files": len(delivered),
                "delivered": dg.MetadataValue.json(delivered),
                "server": f"{sftp.username}@{sftp.host}:{sftp.port}{sftp.outbound_dir}",
            }
        )

    return sftp_delivery
