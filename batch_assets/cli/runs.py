"""``batch-assets run|status|cancel|backfill``: launch and follow batches over Dagster's GraphQL API.

The HTTP trigger of the platform: a script or another service launches a job, one asset
partition or a partition-range backfill, gets an id back, polls ``status`` (or ``status --wait``)
and can ``cancel``. It talks to the webserver (``--url``, else ``$DAGSTER_WEBSERVER_URL``, else
http://127.0.0.1:3000) with ``dagster_graphql.DagsterGraphQLClient`` where it fits (launching
and terminating runs) and raw GraphQL for the rest (assets, partitions, backfills, details).

Exit codes: 0 done (``status --wait``: the run succeeded); 1 the run or backfill did not succeed,
the request was refused or the server failed; 2 unknown job, asset, partition or id; 3 the
webserver cannot be reached. Errors are one line on stderr (and ``{"error": ...}`` with --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import difflib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL = "http://127.0.0.1:3000"
URL_ENV = "DAGSTER_WEBSERVER_URL"
EXIT_OK, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 0, 1, 2, 3
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
BACKFILL_SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}
PARTITION_TAG = "dagster/partition"
# Asset tags copied to the run: `vendor` is the key of the instance's one-run-per-vendor limit,
# so a run launched here queues behind the sensor's run of the same vendor instead of racing it.
RUN_TAGS_FROM_ASSETS = ("vendor",)
TRIGGER_TAGS = {"trigger": "api"}


class CliError(Exception):
    """A one-line error for the operator, with the process exit code."""

    exit_code = EXIT_FAILED


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class UnreachableError(CliError):
    exit_code = EXIT_UNREACHABLE


# --- the API -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRef:
    name: str
    location: str
    repository: str

    def selector(self) -> dict[str, str]:
        return {"pipelineName": self.name, "repositoryName": self.repository, "repositoryLocationName": self.location}


@dataclass
class AssetNode:
    key: str
    job_names: list[str]
    op_names: list[str]
    executable: bool
    partitioned: bool
    partition_keys: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> AssetNode:
        return cls(
            key="/".join(node["assetKey"]["path"]),
            job_names=node.get("jobNames", []),
            op_names=node.get("opNames", []),
            executable=node.get("isMaterializable", True) and node.get("isExecutable", True),
            partitioned=node.get("isPartitioned", False),
            partition_keys=node.get("partitionKeys", []),
            tags={t["key"]: t["value"] for t in node.get("tags", [])},
        )


def asset_key_input(key: str) -> dict[str, list[str]]:
    return {"path": [p for p in key.strip("/").split("/") if p]}


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


ASSET_FIELDS = """
  assetKey { path } jobNames opNames isExecutable isMaterializable isPartitioned partitionKeys tags { key value }
"""

RUN_QUERY = """
query Run($id: ID!) {
  runOrError(runId: $id) {
    __typename
    ... on Run {
      runId jobName status creationTime startTime endTime canTerminate
      tags { key value }
      assetSelection { path }
      assetMaterializations {
        assetKey { path } partition
        metadataEntries { label ... on IntMetadataEntry { intRepr } }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions partitionNames timestamp endTimestamp isAssetBackfill partitionSetName title
      assetSelection { path }
      tags { key value }
      runs { runId status tags { key value } }
      error { message }
    }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


class DagsterApi:
    """The webserver's GraphQL API, with every failure turned into a one-line ``CliError``."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = None

    # raw GraphQL
    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        try:
            response = httpx.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=self.timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            raise CliError(f"the Dagster webserver at {self.url} did not answer within {self.timeout:.0f}s") from exc
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise CliError(
                f"{self.url}/graphql is not a Dagster GraphQL endpoint (HTTP {response.status_code})"
            ) from exc
        if body.get("errors") and not body.get("data"):
            raise CliError(f"GraphQL error: {first_line(body['errors'][0].get('message', body['errors'][0]))}")
        return body["data"]

    def _unreachable(self, exc: Exception) -> UnreachableError:
        reason = first_line(str(exc)) or type(exc).__name__
        return UnreachableError(f"cannot reach the Dagster webserver at {self.url} ({reason}); set --url or ${URL_ENV}")

    # the dagster-graphql client, for what it covers
    def client(self) -> Any:
        if self._client is None:
            import httpx
            from dagster_graphql import DagsterGraphQLClient

            url = httpx.URL(self.url)
            self._client = DagsterGraphQLClient(
                url.host,
                port_number=url.port,
                use_https=url.scheme == "https",
                timeout=int(self.timeout),
                path_prefix=url.path.rstrip("/"),
            )
        return self._client

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import requests
        from dagster_graphql import DagsterGraphQLClientError

        try:
            return fn(*args, **kwargs)
        except DagsterGraphQLClientError as exc:
            cause: BaseException | None = exc
            while cause is not None:
                if isinstance(cause, requests.ConnectionError):
                    raise self._unreachable(cause) from exc
                cause = cause.__cause__ or cause.__context__
            kind, *rest = exc.args or ("error",)
            raise CliError(f"{kind}: {first_line(rest[0])}" if rest else first_line(kind)) from exc
        except KeyError as exc:  # the client reads fields its query did not ask for on some errors
            raise CliError(f"the webserver refused the request ({exc})") from exc

    # jobs
    def jobs(self) -> list[JobRef]:
        data = self.query(
            "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name } "
            "pipelines { name } } } ... on PythonError { message } } }"
        )["repositoriesOrError"]
        if data["__typename"] != "RepositoryConnection":
            raise CliError(f"cannot list jobs: {first_line(data.get('message', data['__typename']))}")
        return [
            JobRef(job["name"], repo["location"]["name"], repo["name"])
            for repo in data["nodes"]
            for job in repo["pipelines"]
        ]

    def find_job(self, name: str) -> JobRef:
        jobs = self.jobs()
        found = [j for j in jobs if j.name == name]
        if not found:
            visible = sorted({j.name for j in jobs if not j.name.startswith("__")})
            close = difflib.get_close_matches(name, visible, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise NotFoundError(f"unknown job '{name}': {hint}jobs: {', '.join(visible)}")
        if len(found) > 1:
            raise CliError(f"job '{name}' exists in several code locations: {', '.join(j.location for j in found)}")
        return found[0]

    def job_partitions(self, job: JobRef) -> list[str]:
        data = self.query(
            "query($s: PipelineSelector!) { pipelineOrError(params: $s) { __typename "
            "... on Pipeline { partitionKeysOrError { __typename ... on PartitionKeys { partitionKeys } } } "
            "... on PipelineNotFoundError { message } ... on PythonError { message } } }",
            {"s": job.selector()},
        )["pipelineOrError"]
        if data["__typename"] == "PipelineNotFoundError":
            raise NotFoundError(f"unknown job '{job.name}'")
        if data["__typename"] != "Pipeline":
            return []  # a job without a partitions definition
        keys = data["partitionKeysOrError"]
        return keys.get("partitionKeys", []) if keys["__typename"] == "PartitionKeys" else []

    def job_assets(self, job: JobRef) -> list[AssetNode]:
        nodes = self.query(
            f"query($s: PipelineSelector!) {{ assetNodes(pipeline: $s) {{ {ASSET_FIELDS} }} }}", {"s": job.selector()}
        )["assetNodes"]
        return [AssetNode.from_graphql(n) for n in nodes]

    # assets
    def assets(self, keys: Sequence[str]) -> list[AssetNode]:
        nodes = self.query(
            f"query($k: [AssetKeyInput!]) {{ assetNodes(assetKeys: $k) {{ {ASSET_FIELDS} }} }}",
            {"k": [asset_key_input(k) for k in keys]},
        )["assetNodes"]
        found = {n.key: n for n in map(AssetNode.from_graphql, nodes)}
        missing = [k for k in keys if k.strip("/") not in found]
        if missing:
            every = [
                "/".join(n["assetKey"]["path"])
                for n in self.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
            ]
            close = difflib.get_close_matches(missing[0], every, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise NotFoundError(f"unknown asset '{missing[0]}'{hint}")
        return [found[k.strip("/")] for k in keys]

    # runs
    def launch_run(self, job: JobRef, tags: dict[str, str], assets: Sequence[str] | None) -> str:
        selection = [asset_key_input(k)["path"] for k in assets] if assets else None
        return self._call(
            self.client().submit_job_execution,
            job.name,
            repository_location_name=job.location,
            repository_name=job.repository,
            tags=tags,
            asset_selection=selection,
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        data = self.query(RUN_QUERY, {"id": run_id})["runOrError"]
        if data["__typename"] == "Run":
            return data
        if data["__typename"] == "RunNotFoundError":
            return None
        raise CliError(f"cannot read run {run_id}: {first_line(data.get('message', ''))}")

    def terminate(self, run_id: str) -> None:
        self._call(self.client().terminate_run, run_id)

    # backfills
    def launch_backfill(self, params: dict[str, Any]) -> str:
        data = self.query(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } "
            "... on PartitionSetNotFoundError { message } ... on PartitionKeysNotFoundError { message } "
            "... on InvalidSubsetError { message } ... on UnauthorizedError { message } "
            "... on PipelineNotFoundError { message } ... on RunConflict { message } } }",
            {"p": params},
        )["launchPartitionBackfill"]
        if data["__typename"] != "LaunchBackfillSuccess":
            raise CliError(f"backfill refused: {data['__typename']}: {first_line(data.get('message', ''))}")
        return data["backfillId"]

    def backfill(self, backfill_id: str) -> dict[str, Any] | None:
        data = self.query(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if data["__typename"] == "PartitionBackfill":
            return data
        if data["__typename"] == "BackfillNotFoundError":
            return None
        raise CliError(f"cannot read backfill {backfill_id}: {first_line(data.get('message', ''))}")

    def cancel_backfill(self, backfill_id: str) -> None:
        data = self.query(
            "mutation($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename "
            "... on PythonError { message } ... on UnauthorizedError { message } } }",
            {"id": backfill_id},
        )["cancelPartitionBackfill"]
        if data["__typename"] != "CancelBackfillSuccess":
            raise CliError(f"cannot cancel backfill {backfill_id}: {first_line(data.get('message', ''))}")


# --- what to launch ----------------------------------------------------------------------------


@dataclass
class Target:
    """A job, the assets of it to run (None: all) and the partition keys that exist for it."""

    job: JobRef
    assets: list[str] | None
    partition_keys: list[str]
    partitioned: bool
    tags: dict[str, str] = field(default_factory=dict)
    described: str = ""


def _with_op_siblings(requested: list[AssetNode], job_assets: list[AssetNode]) -> list[str]:
    """The requested assets plus those computed by the same op (a multi-asset runs as a whole)."""
    ops = {op for node in requested for op in node.op_names}
    keys = [n.key for n in requested]
    keys += sorted(n.key for n in job_assets if n.key not in keys and ops & set(n.op_names))
    return keys


def _asset_run_tags(nodes: list[AssetNode]) -> dict[str, str]:
    tags = {}
    for name in RUN_TAGS_FROM_ASSETS:
        values = {n.tags.get(name) for n in nodes}
        if len(values) == 1 and None not in values:
            tags[name] = values.pop()
    return tags


def resolve_target(api: DagsterApi, job_name: str | None, asset_keys: Sequence[str]) -> Target:
    if not asset_keys:
        if not job_name:
            raise CliError("name a job or pass --asset KEY")
        job = api.find_job(job_name)
        keys = api.job_partitions(job)
        return Target(job, None, keys, partitioned=bool(keys), described=f"job {job.name}")
    nodes = api.assets(asset_keys)
    for node in nodes:
        if not node.executable:
            raise CliError(f"asset '{node.key}' cannot be materialized (an external asset: its source reports it)")
    common = set.intersection(*(set(n.job_names) for n in nodes))
    if job_name:
        if job_name not in common:
            named = sorted(j for j in common if not j.startswith("__")) or ["none"]
            raise NotFoundError(f"asset(s) {', '.join(asset_keys)} not in job '{job_name}' (jobs: {', '.join(named)})")
        candidates = [job_name]
    else:
        # A named job first (notifications and run filters know it); the UI's hidden asset job otherwise.
        candidates = sorted(common, key=lambda j: (j.startswith("__"), j))
    if not candidates:
        raise CliError(f"assets {', '.join(asset_keys)} share no job: launch them one at a time")
    job = api.find_job(candidates[0])
    selection = _with_op_siblings(nodes, api.job_assets(job))
    partitioned = any(n.partitioned for n in nodes)
    keys = next((n.partition_keys for n in nodes if n.partitioned), [])
    return Target(
        job,
        selection,
        keys,
        partitioned=partitioned,
        tags=_asset_run_tags(nodes),
        described=f"{', '.join(selection)} via job {job.name}",
    )


def check_partition(target: Target, partition: str | None) -> None:
    if not target.partitioned:
        if partition:
            raise NotFoundError(f"{target.described} is not partitioned: drop --partition")
        return
    if not partition:
        hint = f" (latest: {target.partition_keys[-1]})" if target.partition_keys else ""
        raise CliError(f"{target.described} is partitioned: pass --partition{hint}")
    if partition not in target.partition_keys:
        span = f"{target.partition_keys[0]} to {target.partition_keys[-1]}" if target.partition_keys else "none"
        raise NotFoundError(f"unknown partition '{partition}' of {target.described} (partitions: {span})")


def partition_range(target: Target, start: str, end: str) -> list[str]:
    for key in (start, end):
        check_partition(target, key)
    i, j = target.partition_keys.index(start), target.partition_keys.index(end)
    if i > j:
        raise CliError(f"--from {start} comes after --to {end}")
    return target.partition_keys[i : j + 1]


def default_title(job: str | None, assets: Sequence[str], partitions: Sequence[str]) -> str:
    """What the UI's backfill list shows: the target and the range, within Dagster's 100 characters."""
    what = assets[0] + (f" +{len(assets) - 1}" if len(assets) > 1 else "") if assets else str(job)
    span = partitions[0] if len(partitions) == 1 else f"{partitions[0]} to {partitions[-1]}"
    return f"{what} {span}"[:100]


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--tag takes KEY=VALUE, not '{pair}'")
        tags[key] = value
    return tags


# --- output ------------------------------------------------------------------------------------


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(float(timestamp), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_summary(run: dict[str, Any], base_url: str) -> dict[str, Any]:
    from batch_assets.lib.notify import AssetRows, total_rows

    tags = {t["key"]: t["value"] for t in run["tags"]}
    assets = []
    for mat in run["assetMaterializations"]:
        values = {e["label"]: int(e["intRepr"]) for e in mat["metadataEntries"] if "intRepr" in e}
        assets.append(
            AssetRows(
                asset="/".join(mat["assetKey"]["path"]),
                partition=mat["partition"],
                **{m: values.get(m) for m in ("rows_in", "rows_out", "rows_rejected")},
            )
        )
    rows = total_rows(assets)
    started, ended = run["startTime"], run["endTime"]
    return {
        "kind": "run",
        "id": run["runId"],
        "status": run["status"],
        "job": run["jobName"],
        "partition": tags.get(PARTITION_TAG),
        "assets": ["/".join(a["path"]) for a in run["assetSelection"] or []],
        "created": _when(run["creationTime"]),
        "started": _when(started),
        "ended": _when(ended),
        "duration_seconds": round(ended - started, 1) if started and ended else None,
        "rows": None if rows is None else dataclasses.asdict(rows),
        "tags": {k: v for k, v in tags.items() if not k.startswith("dagster/") or k == PARTITION_TAG},
        "url": f"{base_url}/runs/{run['runId']}",
    }


def backfill_summary(backfill: dict[str, Any], base_url: str) -> dict[str, Any]:
    runs = [
        {
            "id": r["runId"],
            "status": r["status"],
            "partition": next((t["value"] for t in r["tags"] if t["key"] == PARTITION_TAG), None),
        }
        for r in backfill["runs"]
    ]
    return {
        "kind": "backfill",
        "id": backfill["id"],
        "status": backfill["status"],
        "partitions": backfill["partitionNames"] or [],
        "assets": ["/".join(a["path"]) for a in backfill["assetSelection"] or []],
        "job": backfill["partitionSetName"],
        "created": _when(backfill["timestamp"]),
        "ended": _when(backfill["endTimestamp"]),
        "runs": runs,
        "error": first_line(backfill["error"]["message"]) if backfill.get("error") else None,
        "url": f"{base_url}/runs/b/{backfill['id']}",
    }


def print_summary(summary: dict[str, Any]) -> None:
    print(f"{summary['kind']} {summary['id']}  {summary['status']}")
    if summary["kind"] == "run":
        rows = summary["rows"]
        lines = [
            ("job", summary["job"]),
            ("partition", summary["partition"] or "-"),
            ("assets", ", ".join(summary["assets"]) or "all of the job"),
            ("created", summary["created"]),
            ("started", summary["started"]),
            ("ended", summary["ended"]),
            ("rows", f"in {rows['rows_in']:,}, out {rows['rows_out']:,}, rejected {rows['rows_rejected']:,}")
            if rows
            else ("rows", "-"),
        ]
    else:
        parts = summary["partitions"]
        span = f"{len(parts)}: {parts[0]} to {parts[-1]}" if parts else "-"
        done = sum(r["status"] in RUN_DONE for r in summary["runs"])
        lines = [
            ("partitions", span),
            ("assets", ", ".join(summary["assets"]) or summary["job"] or "-"),
            ("created", summary["created"]),
            ("ended", summary["ended"]),
            ("runs", f"{len(summary['runs'])} launched, {done} finished"),
        ]
        lines += [("", f"{r['partition'] or '-'}  {r['id']}  {r['status']}") for r in summary["runs"]]
        if summary["error"]:
            lines.append(("error", summary["error"]))
    for label, value in lines + [("url", summary["url"])]:
        print(f"{label:<11} {value}")


def emit(args: argparse.Namespace, data: dict[str, Any], text: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        text()


# --- commands ----------------------------------------------------------------------------------


def _api(args: argparse.Namespace) -> DagsterApi:
    return DagsterApi(args.url or os.environ.get(URL_ENV) or DEFAULT_URL)


def run_cmd(args: argparse.Namespace) -> int:
    """Launch a job, or the job containing an asset, for one partition; print the run id."""
    if not args.job and not args.asset:
        raise CliError("name a job or pass --asset KEY")
    api = _api(args)
    target = resolve_target(api, args.job, args.asset)
    check_partition(target, args.partition)
    tags = {**TRIGGER_TAGS, **target.tags, **parse_tags(args.tag)}
    if args.partition:
        tags[PARTITION_TAG] = args.partition
    run_id = api.launch_run(target.job, tags, target.assets)
    data = {
        "run_id": run_id,
        "job": target.job.name,
        "partition": args.partition,
        "assets": target.assets,
        "tags": tags,
        "url": f"{api.url}/runs/{run_id}",
    }

    def text() -> None:
        print(
            f"Launched run {run_id}: {target.described}" + (f", partition {args.partition}" if args.partition else "")
        )
        print(data["url"])

    emit(args, data, text)
    return EXIT_OK


def _lookup(api: DagsterApi, id_: str) -> dict[str, Any]:
    run = api.run(id_)
    if run is not None:
        return run_summary(run, api.url)
    backfill = api.backfill(id_)
    if backfill is not None:
        return backfill_summary(backfill, api.url)
    raise NotFoundError(f"no run or backfill with id '{id_}'")


def status_cmd(args: argparse.Namespace) -> int:
    """Show a run's or a backfill's status (--wait: until it finishes; exit 0 only on success)."""
    api = _api(args)
    summary = _lookup(api, args.id)
    done = RUN_DONE if summary["kind"] == "run" else BACKFILL_DONE
    deadline = time.monotonic() + args.timeout
    while args.wait and summary["status"] not in done and time.monotonic() < deadline:
        time.sleep(args.interval)
        summary = _lookup(api, args.id)
    emit(args, summary, lambda: print_summary(summary))
    if not args.wait:
        return EXIT_OK
    if summary["status"] not in done:
        raise CliError(f"{summary['kind']} {args.id} still {summary['status']} after {args.timeout:.0f}s")
    succeeded = summary["status"] == "SUCCESS" or summary["status"] in BACKFILL_SUCCEEDED
    return EXIT_OK if succeeded else EXIT_FAILED


def cancel_cmd(args: argparse.Namespace) -> int:
    """Cancel a queued or running run, or a backfill."""
    api = _api(args)
    before = _lookup(api, args.id)
    if before["kind"] == "run":
        if before["status"] in RUN_DONE:
            summary = before
            message = f"run {args.id} already finished ({before['status']}): nothing to cancel"
            emit(args, {**summary, "canceled": False, "message": message}, lambda: print(message))
            return EXIT_OK if before["status"] == "CANCELED" else EXIT_FAILED
        api.terminate(args.id)
    else:
        if before["status"] in BACKFILL_DONE:
            message = f"backfill {args.id} already finished ({before['status']}): nothing to cancel"
            emit(args, {**before, "canceled": False, "message": message}, lambda: print(message))
            return EXIT_OK if before["status"] == "CANCELED" else EXIT_FAILED
        api.cancel_backfill(args.id)
    after = _lookup(api, args.id)
    message = f"Cancel requested for {after['kind']} {args.id} (was {before['status']}); now {after['status']}"
    emit(args, {**after, "canceled": True, "was": before["status"], "message": message}, lambda: print(message))
    return EXIT_OK


def backfill_cmd(args: argparse.Namespace) -> int:
    """Launch a backfill of a job's or assets' partitions (--from/--to range or --partition list)."""
    if not args.job and not args.asset:
        raise CliError("name a job or pass --asset KEY")
    if bool(args.start) != bool(args.end):
        raise CliError("--from and --to go together")
    if not args.start and not args.partition:
        raise CliError("pass --from and --to, or --partition (repeatable)")
    api = _api(args)
    target = resolve_target(api, args.job, args.asset)
    if not target.partitioned:
        raise CliError(f"{target.described} is not partitioned: use `batch-assets run`")
    if args.start:
        partitions = partition_range(target, args.start, args.end)
    else:
        for key in args.partition:
            check_partition(target, key)
        partitions = list(dict.fromkeys(args.partition))
    tags = {**TRIGGER_TAGS, **target.tags, **parse_tags(args.tag)}
    title = args.title or default_title(args.job, args.asset, partitions)
    backfill_id, assets = launch_backfill(api, target, partitions, tags, title)
    data = {
        "backfill_id": backfill_id,
        "partitions": partitions,
        "assets": assets,
        "job": target.job.name,
        "tags": tags,
        "url": f"{api.url}/runs/b/{backfill_id}",
    }

    def text() -> None:
        print(
            f"Launched backfill {backfill_id}: {target.described}, "
            f"{len(partitions)} partition(s) {partitions[0]} to {partitions[-1]}"
        )
        print(data["url"])

    emit(args, data, text)
    return EXIT_OK


def launch_backfill(
    api: DagsterApi, target: Target, partitions: list[str], tags: dict[str, str], title: str
) -> tuple[str, list[str]]:
    """Launch a backfill of ``partitions`` of ``target``; return its id and the assets it covers."""
    params: dict[str, Any] = {
        "partitionNames": partitions,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "title": title,
    }
    assets = target.assets or [n.key for n in api.job_assets(target.job) if n.executable]
    if assets:
        params["assetSelection"] = [asset_key_input(k) for k in assets]
    else:
        params["selector"] = {
            "partitionSetName": f"{target.job.name}_partition_set",
            "repositorySelector": {
                "repositoryName": target.job.repository,
                "repositoryLocationName": target.job.location,
            },
        }
    return api.launch_backfill(params), assets


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as exc:
            if args.json:
                print(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code

    return run


def register(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"the Dagster webserver (default: ${URL_ENV} or {DEFAULT_URL})")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    run = commands.add_parser("run", parents=[common], help=run_cmd.__doc__)
    run.add_argument("job", nargs="?", help="job name, e.g. process_vendor_files_job")
    run.add_argument("--asset", action="append", default=[], help="asset key, e.g. vendor/acme_retail/staged")
    run.add_argument("--partition", help="partition key, e.g. 2026-11-20")
    run.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra run tag (repeatable)")
    run.set_defaults(handler=_guarded(run_cmd))

    status = commands.add_parser("status", parents=[common], help=status_cmd.__doc__)
    status.add_argument("id", help="run id or backfill id")
    status.add_argument("--wait", action="store_true", help="poll until finished; exit 1 unless it succeeded")
    status.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (default 3600)")
    status.add_argument("--interval", type=float, default=2, help="seconds between polls (default 2)")
    status.set_defaults(handler=_guarded(status_cmd))

    cancel = commands.add_parser("cancel", parents=[common], help=cancel_cmd.__doc__)
    cancel.add_argument("id", help="run id or backfill id")
    cancel.set_defaults(handler=_guarded(cancel_cmd))

    backfill = commands.add_parser("backfill", parents=[common], help=backfill_cmd.__doc__)
    backfill.add_argument("job", nargs="?", help="job name (all its assets)")
    backfill.add_argument("--asset", action="append", default=[], help="asset key (repeatable)")
    backfill.add_argument("--from", dest="start", metavar="FIRST", help="first partition of the range")
    backfill.add_argument("--to", dest="end", metavar="LAST", help="last partition of the range (inclusive)")
    backfill.add_argument("--partition", action="append", default=[], help="one partition (repeatable)")
    backfill.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra tag (repeatable)")
    backfill.add_argument("--title", help="shown in the UI's backfill list")
    backfill.set_defaults(handler=_guarded(backfill_cmd))
