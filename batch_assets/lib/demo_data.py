"""Deterministic vendor files synthesised from a vendor spec: for the demo, tests and benchmarks.

Each record satisfies the spec's rules, except a chosen share that breaks exactly one rule, so
the expected number of rejects is known in advance.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import rstr

from batch_assets.lib.formats import open_writer
from batch_assets.lib.specs.model import FieldType, FixedWidthFormat, SchemaField, VendorSpec

FIRST = ["Ana", "Bram", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gus", "Hana", "Ines", "Jonas", "Kofi", "Lena"]
LAST = ["Okafor", "Larsen", "Müller", "Tanaka", "Silva", "Novak", "Haddad", "Kim", "Rossi", "Byrne", "Diaz"]


@dataclass
class GeneratedFile:
    file_name: str
    records: int
    invalid: int


class RecordSynth:
    """Valid raw records for a spec, and single-rule breakages of them."""

    def __init__(self, spec: VendorSpec, seed: int):
        self.spec = spec
        self.rng = random.Random(seed)
        self.xeger = rstr.Rstr(self.rng)
        self.seen: dict[str, set[str]] = {f.name: set() for f in spec.schema_ if f.unique}
        self.widths = {f.name: f.width for f in spec.input.fields} if isinstance(spec.input, FixedWidthFormat) else {}

    def value(self, f: SchemaField, i: int) -> str:
        for _ in range(100):
            text = self._value(f, i)
            if f.name not in self.seen or text not in self.seen[f.name]:
                break
        if f.name in self.seen:
            self.seen[f.name].add(text)
        return text

    def _value(self, f: SchemaField, i: int) -> str:
        rng = self.rng
        if f.allowed:
            return rng.choice(f.allowed)
        if f.regex:
            if "email" in f.name:
                # Readable addresses; xeger's '+' repeats make 100-character ones.
                candidate = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@example.com"
                if re.fullmatch(f.regex, candidate):
                    return candidate
            return self.xeger.xeger(f.regex)
        lo = f.min if f.min is not None else 0
        hi = min(f.max if f.max is not None else 10_000, lo + 10_000)
        match f.type:
            case FieldType.INTEGER:
                return str(rng.randint(int(lo), int(hi)))
            case FieldType.DECIMAL:
                return f"{rng.uniform(lo, hi):.{f.scale}f}"
            case FieldType.FLOAT:
                return f"{rng.uniform(lo, hi):.3f}"
            case FieldType.BOOLEAN:
                return rng.choice(["true", "false"])
            case FieldType.DATE:
                day = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 27_000))
                return day.strftime(f.format or "%Y-%m-%d")
            case FieldType.TIMESTAMP:
                moment = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=rng.randint(0, 30_000_000))
                return moment.strftime(f.format or "%Y-%m-%d %H:%M:%S")
        if "name" in f.name:
            return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        return f"{f.name[:3].upper()}{i:07d}"

    def record(self, i: int) -> dict[str, str]:
        return {f.source_name: self._fit(f, self.value(f, i)) for f in self.spec.schema_}

    def broken(self, i: int) -> dict[str, str]:
        """A record that breaks exactly one rule of one field."""
        rec = self.record(i)
        candidates = [f for f in self.spec.schema_ if f.required or f.type != FieldType.STRING or f.allowed]
        f = self.rng.choice(candidates)
        if f.required:
            rec[f.source_name] = ""
        elif f.allowed:
            rec[f.source_name] = "UNKNOWN"
        else:
            rec[f.source_name] = "n/a"
        return rec

    def _fit(self, f: SchemaField, text: str) -> str:
        width = self.widths.get(f.source_name)
        return text[:width] if width else text


def file_name_for(spec: VendorSpec, day: str, n: int) -> str:
    """A name that matches the vendor's pattern: its '*' becomes the day and a sequence number."""
    return spec.file_pattern.replace("*", f"{day}_{n:03d}", 1).replace("*", "").replace("?", "x")


def write_vendor_file(
    spec: VendorSpec, path: Path, records: int, *, invalid_share: float = 0.0, seed: int = 0
) -> GeneratedFile:
    """Write ``records`` raw records in the vendor's input format; returns how many are invalid."""
    synth = RecordSynth(spec, seed)
    rng = random.Random(seed + 1)
    names = [f.source_name for f in spec.schema_]
    schema = pa.schema([pa.field(n, pa.string()) for n in names])
    invalid = 0
    fmt = spec.input
    with open(path, "wb") as sink:
        skip = getattr(fmt, "skip_lines", 0)
        for n in range(skip):
            preamble = f"# {spec.name} extract, line {n + 1} of the preamble\n"
            sink.write(preamble.encode(getattr(fmt, "encoding", "utf-8")))
        writer = open_writer(fmt, sink, schema)
        batch: list[dict[str, str]] = []
        for i in range(records):
            bad = rng.random() < invalid_share
            invalid += bad
            batch.append(synth.broken(i) if bad else synth.record(i))
            if len(batch) == 50_000 or i == records - 1:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                batch = []
        writer.close()
    return GeneratedFile(file_name=path.name, records=records, invalid=invalid)
