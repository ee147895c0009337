"""Load vendor spec files, refusing a broken one with the file, the field and the problem."""

from __future__ import annotations

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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    # Imported here: the engine imports the spec model, and the SQL check needs the engine.
    from batch_assets.lib.engine.transform import check_spec_sql

    problem = check_spec_sql(spec)
    if problem:
        raise VendorSpecError(f"{path}: {problem}")
    return spec


def load_vendor_specs(directory: Path) -> list[VendorSpec]:
    """Every ``*.yaml`` spec in ``directory``, sorted by vendor id."""
    if not directory.is_dir():
        raise VendorSpecError(f"{directory}: vendor spec folder does not exist")
    return [load_vendor_spec(p) for p in sorted(directory.glob("*.yaml"))]
