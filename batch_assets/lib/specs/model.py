"""The vendor spec: everything that differs between vendors, as validated data.

A vendor is one YAML file under ``vendors/``. Field names used by mappings, business rules
and masking are checked against the schema here, so a broken spec fails when the code
location loads, not halfway through a run.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
VENDOR_ID = r"^[a-z0-9][a-z0-9_]{1,62}$"  # also an asset key part and an op name

Encoding = Literal["utf-8", "utf-8-sig", "latin-1"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Priority(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @property
    def run_priority(self) -> int:
        """Value for the ``dagster/priority`` run tag: higher runs first in the queue."""
        return {"HIGH": 10, "MEDIUM": 0, "LOW": -10}[self.value]


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


# ---------------------------------------------------------------- formats


class CsvFormat(Strict):
    kind: Literal["csv"]
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    encoding: Encoding = "utf-8"
    header: bool = True
    skip_lines: int = Field(0, ge=0, description="Lines to skip before the header (or the first record).")
    line_terminator: Literal["\n", "\r\n"] = "\n"


class JsonFormat(Strict):
    """A JSON document whose top level is an array of objects."""

    kind: Literal["json"]
    encoding: Literal["utf-8", "utf-8-sig"] = "utf-8"


class JsonLinesFormat(Strict):
    """One JSON object per line."""

    kind: Literal["jsonl"]
    encoding: Literal["utf-8", "utf-8-sig"] = "utf-8"


class XmlFormat(Strict):
    """Records are the elements at ``record_path`` (slash-separated, ``prefix:name`` for namespaces).

    A field is read from the record's child element of the same name, or from the record's
    attribute when the field is listed in ``attributes``.
    """

    kind: Literal["xml"]
    record_path: str = Field(pattern=r"^[A-Za-z_][\w.:-]*(/[A-Za-z_][\w.:-]*)*$")
    namespaces: dict[str, str] = Field(default_factory=dict)
    attributes: list[str] = Field(default_factory=list)
    encoding: Literal["utf-8", "latin-1"] = "utf-8"

    @model_validator(mode="after")
    def _prefixes_are_declared(self) -> XmlFormat:
        for step in self.record_path.split("/"):
            if ":" in step and step.split(":", 1)[0] not in self.namespaces:
                raise ValueError(f"namespace prefix of '{step}' is not declared in namespaces")
        return self


class FixedWidthField(Strict):
    name: str = Field(pattern=IDENTIFIER)
    start: int = Field(ge=1, description="1-based column where the field starts.")
    width: int = Field(ge=1)
    align: Literal["left", "right"] = "left"


class FixedWidthFormat(Strict):
    kind: Literal["fixed_width"]
    fields: list[FixedWidthField] = Field(min_length=1)
    encoding: Encoding = "utf-8"
    skip_lines: int = Field(0, ge=0)
    line_terminator: Literal["\n", "\r\n"] = "\n"

    @model_validator(mode="after")
    def _fields_do_not_overlap(self) -> FixedWidthFormat:
        ordered = sorted(self.fields, key=lambda f: f.start)
        for left, right in zip(ordered, ordered[1:], strict=False):
            if left.start + left.width > right.start:
                raise ValueError(f"fields '{left.name}' and '{right.name}' overlap")
        return self

    @property
    def line_width(self) -> int:
        return max(f.start + f.width - 1 for f in self.fields)


InputFormat = Annotated[
    CsvFormat | JsonFormat | JsonLinesFormat | XmlFormat | FixedWidthFormat, Field(discriminator="kind")
]


class OutputSpec(Strict):
    format: InputFormat
    granularity: Literal["per_file", "per_day"] = "per_file"


# ---------------------------------------------------------------- schema and rules


class SchemaField(Strict):
    """One field of the inbound record, with the validation rules that apply to it."""

    name: str = Field(pattern=IDENTIFIER)
    type: FieldType = FieldType.STRING
    required: bool = False
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    format: str | None = Field(None, description="strptime format for date and timestamp fields.")
    scale: int = Field(
        2, ge=0, le=18, description="Decimal places of a decimal field; more are rejected, never rounded."
    )
    unique: bool = False
    source: str | None = Field(None, description="Name in the file when it differs (CSV header, JSON key, XML tag).")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> SchemaField:
        numeric = {FieldType.INTEGER, FieldType.DECIMAL, FieldType.FLOAT}
        if (self.min is not None or self.max is not None) and self.type not in numeric:
            raise ValueError("min/max apply only to integer, decimal and float fields")
        if self.format is not None and self.type not in {FieldType.DATE, FieldType.TIMESTAMP}:
            raise ValueError("format applies only to date and timestamp fields")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self

    @property
    def source_name(self) -> str:
        return self.source or self.name


class Mapping(Strict):
    """One output field: ``source`` from the validated record, written as ``target``."""

    source: str
    target: str | None = Field(None, pattern=IDENTIFIER)

    @property
    def output_name(self) -> str:
        return self.target or self.source


class BusinessRule(Strict):
    """A derived or rewritten field: ``expression`` is DuckDB SQL over the mapped record."""

    field: str = Field(pattern=IDENTIFIER)
    expression: str = Field(min_length=1)
    description: str = ""


class Mask(Strict):
    method: Literal["redact", "keep_last", "email", "hash"]
    keep: int = Field(4, ge=0, description="Characters kept by keep_last.")
    secret_env: str = Field(
        "BATCH_ASSETS_HASH_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable holding the hash key."
    )


class SftpSpec(Strict):
    """Where the vendor's SFTP server is; the key comes from the environment, the host key is pinned."""

    host: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(min_length=1)
    private_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="Variable holding the key file's path.")
    host_key: str = Field(pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+$")
    inbound_dir: str | None = Field(None, description="Remote folder polled for the vendor's new files.")
    outbound_dir: str | None = Field(None, description="Remote folder the outbound files are delivered to.")


class VendorSpec(Strict):
    vendor_id: str = Field(pattern=VENDOR_ID)
    name: str = Field(min_length=1)
    priority: Priority = Priority.MEDIUM
    file_pattern: str = Field("*", description="Glob that inbound file names must match.")
    input: InputFormat
    output: OutputSpec
    schema_: list[SchemaField] = Field(alias="schema", min_length=1)
    mappings: list[Mapping] = Field(default_factory=list, description="Empty keeps every field in schema order.")
    business_rules: list[BusinessRule] = Field(default_factory=list)
    masking: dict[str, Mask] = Field(default_factory=dict)
    reject_rate_threshold: float = Field(0.05, ge=0, le=1)
    sftp: SftpSpec | None = Field(None, description="Pull inbound files from / deliver outbound files to SFTP.")

    @model_validator(mode="after")
    def _names_resolve(self) -> VendorSpec:
        names = [f.name for f in self.schema_]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"schema: duplicate field names {sorted(dupes)}")
        for m in self.mappings:
            if m.source not in names:
                raise ValueError(f"mappings: '{m.source}' is not a schema field")
        mapped = self.mapped_fields
        if len(set(mapped)) != len(mapped):
            raise ValueError("mappings: two fields map to the same output name")
        available = set(mapped)
        for rule in self.business_rules:
            available.add(rule.field)
        for field_name in self.masking:
            if field_name not in available:
                raise ValueError(f"masking: '{field_name}' is not an output field")
        if isinstance(self.input, XmlFormat):
            for attr in self.input.attributes:
                if attr not in {f.source_name for f in self.schema_}:
                    raise ValueError(f"input.attributes: '{attr}' is not a schema field")
        if isinstance(self.input, FixedWidthFormat):
            layout = {f.name for f in self.input.fields}
            missing = [f.source_name for f in self.schema_ if f.source_name not in layout]
            if missing:
                raise ValueError(f"input.fields: no layout for schema fields {missing}")
        if isinstance(self.output.format, FixedWidthFormat):
            layout = {f.name for f in self.output.format.fields}
            missing = [n for n in self.output_fields if n not in layout]
            if missing:
                raise ValueError(f"output.format.fields: no layout for output fields {missing}")
        return self

    @property
    def mapped_fields(self) -> list[str]:
        """Field names after mapping (rename, reorder, drop), before business rules."""
        if not self.mappings:
            return [f.name for f in self.schema_]
        return [m.output_name for m in self.mappings]

    @property
    def output_fields(self) -> list[str]:
        """Field names of the outbound record: mapped fields, then new derived fields."""
        fields = list(self.mapped_fields)
        for rule in self.business_rules:
            if rule.field not in fields:
                fields.append(rule.field)
        return fields
