"""Load vendor spec files, refusing a broken one with the file, the field and the problem."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import yaml
from pydantic import ValidationError

from batch_assets.lib.specs.model import VendorSpec


class VendorSpecError(ValueError):
    """A vendor spec file that cannot be used; the message names the file, field and problem."""


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_vendor_spec(path: Path) -> VendorSpec:
    try:
        # The C loader when PyYAML has it: a tenth of the time on the 100 specs of the seed's day.
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise VendorSpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise VendorSpecError(f"{path}: expected a mapping at the top level")
    try:
        spec = VendorSpec.model_validate(raw)
    except ValidationError as exc:
        raise VendorSpecError(f"{path}: invalid vendor spec\n{_describe(exc)}") from exc
    if spec.vendor_id != path.stem:
        raise VendorSpecError(f"{path}: vendor_id '{spec.vendor_id}' must match the file name '{path.stem}'")
    problem = _check_sql_once(spec)
    if problem:
        raise VendorSpecError(f"{path}: {problem}")
    return spec


def _check_sql_once(spec: VendorSpec) -> str | None:
    """The spec's SQL check, skipped where this spec already passed it with the same engine.

    Every process that loads the code location checks every vendor: the code server, and each run
    worker again (~35 ms a vendor, 3.5 CPU-s per run with 100 vendors). A pass is remembered as an
    empty file named by the hash of the spec, the DuckDB version and the engine's SQL code; a
    problem is never remembered, so its message always comes from a fresh check.
    """
    # Imported here: the engine imports the spec model, and the SQL check needs the engine.
    from batch_assets.lib.engine import transform

    digest = hashlib.sha256(spec.model_dump_json(by_alias=True).encode() + _engine_fingerprint())
    passed = _spec_check_cache() / digest.hexdigest()
    if passed.exists():
        return None
    problem = transform.check_spec_sql(spec)
    if problem is None:
        passed.parent.mkdir(parents=True, exist_ok=True)
        passed.touch()
    return problem


@functools.cache
def _engine_fingerprint() -> bytes:
    """The DuckDB version and the engine's SQL code: what a spec's check result depends on besides the spec."""
    import duckdb

    from batch_assets.lib.engine import sql, transform

    digest = hashlib.sha256(duckdb.__version__.encode())
    for module in (sql, transform):
        digest.update(Path(module.__file__).read_bytes())
    return digest.digest()


def _spec_check_cache() -> Path:
    return Path(os.environ.get("BATCH_ASSETS_SPEC_CHECK_CACHE") or tempfile.gettempdir()) / "batch_assets-spec-checks"


def load_vendor_specs(directory: Path) -> list[VendorSpec]:
    """Every ``*.yaml`` spec in ``directory``, sorted by vendor id."""
    if not directory.is_dir():
        raise VendorSpecError(f"{directory}: vendor spec folder does not exist")
    return [load_vendor_spec(p) for p in sorted(directory.glob("*.yaml"))]
