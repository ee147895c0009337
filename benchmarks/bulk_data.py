"""Vendor files at benchmark scale, synthesised from a spec a column at a time (numpy + pyarrow).

``demo_data`` writes one record at a time through rstr (readable, ~3,000 records/s); this module
builds whole columns with vectorised draws (~1M records/s), so a day of 25M records takes minutes,
not hours. Every valid record satisfies its spec's rules; a chosen share breaks exactly one rule
(missing, wrong type, pattern, bound, allowed value or duplicate), so each file's valid and
rejected counts are known before the engine sees it. Same spec, records and seed: same bytes.
``python -m benchmarks.generate check`` proves that through the engine for every demo vendor.
"""

from __future__ import annotations

import math
import random
import re
import re._constants as sre_c  # the stdlib's regex syntax tree (Python 3.11+)
import re._parser as sre_parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import rstr

from batch_assets.lib.demo_data import FIRST, LAST, GeneratedFile, file_name_for
from batch_assets.lib.formats import open_writer
from batch_assets.lib.specs.model import FieldType, FixedWidthFormat, SchemaField, VendorSpec

VERSION = 2  # bump when the same seed would write other bytes: cached benchmark data is then rewritten
BATCH_ROWS = 100_000
UNBOUNDED_EXTRA = 8  # `+` and `*` repeat at most this many times more than their minimum
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
CATEGORIES = {
    sre_c.CATEGORY_DIGIT: "0123456789",
    sre_c.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    sre_c.CATEGORY_SPACE: " ",
}
EPOCH_DATE = np.datetime64("1950-01-01", "D")
EPOCH_TIMESTAMP = np.datetime64("2026-01-01T00:00:00", "s")


class UnsupportedRegex(ValueError):
    """A pattern construct the vectorised generator does not handle (then rstr draws it per value)."""


# ---------------------------------------------------------------- strings from regexes


def _strings(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A string array from the concatenated ASCII bytes of its values and their lengths."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    ).cast(pa.string())


def _draw_chars(alphabet: str, n: int, lo: int, hi: int, rng: np.random.Generator) -> pa.Array:
    """n strings of lo..hi characters drawn from an ASCII alphabet."""
    codes = np.frombuffer(alphabet.encode("ascii"), np.uint8)
    if hi == 0:
        return pa.array([""] * n, pa.string())
    lengths = rng.integers(lo, hi + 1, n) if hi > lo else np.full(n, lo)
    chars = codes[rng.integers(0, len(codes), (n, hi), dtype=np.uint8)]  # uint8 draws: 1/8 of the memory
    return _strings(chars[np.arange(hi) < lengths[:, None]], lengths)


def _alphabet(items: list) -> str:
    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            chars.add(chr(av))
        elif op is sre_c.RANGE:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY and av in CATEGORIES:
            chars.update(CATEGORIES[av])
        else:
            raise UnsupportedRegex(f"character class item {op}")
    if negate:
        chars = set(PRINTABLE) - chars
    if not chars or not all(c.isascii() for c in chars):
        raise UnsupportedRegex("character class outside ASCII")
    return "".join(sorted(chars))


def _single_char(node: tuple) -> str | None:
    """The alphabet of a node that matches exactly one character, else None."""
    op, av = node
    if op is sre_c.IN:
        return _alphabet(av)
    if op is sre_c.ANY:
        return PRINTABLE
    if op is sre_c.NOT_LITERAL:
        return "".join(c for c in PRINTABLE if c != chr(av))
    if op is sre_c.LITERAL and chr(av).isascii():
        return chr(av)
    return None


def _join(pieces: list[pa.Array | str], n: int) -> pa.Array:
    arrays = [p for p in pieces if not isinstance(p, str)]
    if not arrays:
        return pa.array(["".join(pieces)] * n, pa.string())  # type: ignore[arg-type]
    return pc.binary_join_element_wise(*pieces, "")


def _generate(nodes: list, n: int, rng: np.random.Generator) -> pa.Array:
    pieces: list[pa.Array | str] = []
    for op, av in nodes:
        if op is sre_c.LITERAL:
            pieces.append(chr(av))
        elif op is sre_c.AT:
            continue  # anchors: the value is matched whole anyway
        elif op in (sre_c.IN, sre_c.ANY, sre_c.NOT_LITERAL):
            pieces.append(_draw_chars(_single_char((op, av)) or "", n, 1, 1, rng))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            hi = lo + UNBOUNDED_EXTRA if hi is sre_c.MAXREPEAT else hi
            alphabet = _single_char(sub[0]) if len(sub) == 1 else None
            if alphabet is not None:
                pieces.append(_draw_chars(alphabet, n, lo, hi, rng))
                continue
            count = rng.integers(lo, hi + 1, n)
            empty = pa.array([""] * n, pa.string())
            for k in range(hi):
                piece = _generate(list(sub), n, rng)
                pieces.append(pc.if_else(pa.array(k < count), piece, empty) if k >= lo else piece)
        elif op is sre_c.SUBPATTERN:
            pieces.append(_generate(list(av[-1]), n, rng))
        elif op is sre_c.BRANCH:
            options = [_generate(list(alt), n, rng) for alt in av[1]]
            pieces.append(pc.choose(pa.array(rng.integers(0, len(options), n)), *options))
        else:
            raise UnsupportedRegex(f"regex construct {op}")
    return _join(pieces, n)


def regex_strings(pattern: str, n: int, rng: np.random.Generator) -> pa.Array:
    """n random full matches of ``pattern`` (unbounded repeats capped), drawn column-wise."""
    try:
        values = _generate(list(sre_parse.parse(pattern)), n, rng)
    except UnsupportedRegex:
        draw = rstr.Rstr(random.Random(int(rng.integers(1 << 62))))  # slow but any pattern, still seeded
        values = pa.array([draw.xeger(pattern) for _ in range(n)], pa.string())
    sample = values.slice(0, 2_000)
    if pc.all(pc.match_substring_regex(sample, f"^(?:{pattern})$")).as_py() is False:
        raise AssertionError(f"generated values do not match {pattern!r}")
    return values


# ---------------------------------------------------------------- field values


def _numbers_as_text(values: np.ndarray, width: int = 0) -> pa.Array:
    text = pa.array(values).cast(pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def _decimal_text(units: np.ndarray, scale: int) -> pa.Array:
    """Exact decimal strings of ``units / 10**scale``."""
    if scale == 0:
        return _numbers_as_text(units)
    step = 10**scale
    sign = pc.if_else(pa.array(units < 0), "-", "")
    magnitude = np.abs(units)
    return pc.binary_join_element_wise(
        sign, _numbers_as_text(magnitude // step), ".", _numbers_as_text(magnitude % step, scale), ""
    )


STRFTIME_PARTS = {"Y": (pc.year, 4), "m": (pc.month, 2), "d": (pc.day, 2), "H": (pc.hour, 2), "M": (pc.minute, 2)}
STRFTIME_PARTS["S"] = (pc.second, 2)


def strftime(stamps: pa.Array, fmt: str) -> pa.Array:
    """``pc.strftime`` for the common directives, ~15x faster (it formats value by value)."""
    pieces: list[pa.Array | str] = []
    for literal, directive in re.findall(r"([^%]*)(?:%(.))?", fmt):
        if literal:
            pieces.append(literal)
        if directive and directive not in STRFTIME_PARTS:
            return pc.strftime(stamps, format=fmt)
        if directive:
            part, width = STRFTIME_PARTS[directive]
            pieces.append(_numbers_as_text(part(stamps), width))
    return _join(pieces, len(stamps))


def _choice(options: list[str], n: int, rng: np.random.Generator) -> pa.Array:
    return pc.take(pa.array(options, pa.string()), pa.array(rng.integers(0, len(options), n)))


def _bounds(f: SchemaField) -> tuple[float, float]:
    lo = f.min if f.min is not None else 0
    return lo, min(f.max if f.max is not None else 10_000, lo + 10_000)


def field_values(f: SchemaField, n: int, rng: np.random.Generator, first_no: int = 0) -> pa.Array:
    """n valid raw values of a field; ``first_no`` numbers the values of unpatterned identifiers."""
    if f.allowed:
        return _choice(list(f.allowed), n, rng)
    if f.regex:
        if "email" in f.name:
            first = pc.utf8_lower(_choice(FIRST, n, rng))
            last = pc.utf8_lower(_choice(LAST, n, rng))
            numbers = _numbers_as_text(np.arange(first_no, first_no + n))
            emails = pc.binary_join_element_wise(first, ".", last, numbers, "@example.com", "")
            if pc.all(pc.match_substring_regex(emails.slice(0, 2_000), f"^(?:{f.regex})$")).as_py():
                return emails
        return regex_strings(f.regex, n, rng)
    lo, hi = _bounds(f)
    match f.type:
        case FieldType.INTEGER:
            return _numbers_as_text(rng.integers(math.ceil(lo), math.floor(hi) + 1, n))
        case FieldType.DECIMAL:
            step = 10**f.scale
            return _decimal_text(rng.integers(math.ceil(lo * step), math.floor(hi * step) + 1, n), f.scale)
        case FieldType.FLOAT:
            return pa.array(np.clip(np.round(rng.uniform(lo, hi, n), 3), lo, hi)).cast(pa.string())
        case FieldType.BOOLEAN:
            return _choice(["true", "false"], n, rng)
        case FieldType.DATE:
            days = EPOCH_DATE + rng.integers(0, 27_000, n)
            return strftime(pa.array(days.astype("datetime64[s]"), pa.timestamp("s")), f.format or "%Y-%m-%d")
        case FieldType.TIMESTAMP:
            stamps = pa.array(EPOCH_TIMESTAMP + rng.integers(0, 30_000_000, n), pa.timestamp("s"))
            return strftime(stamps, f.format or "%Y-%m-%d %H:%M:%S")
    if "name" in f.name:
        return pc.binary_join_element_wise(_choice(FIRST, n, rng), _choice(LAST, n, rng), " ")
    prefix = re.sub("[^A-Z]", "", f.name.upper())[:3] or "ID"
    return pc.binary_join_element_wise(prefix, _numbers_as_text(np.arange(first_no, first_no + n), 8), "")


def duplicate_positions(values: pa.Array) -> np.ndarray:
    """True at every repeat of a value seen earlier in the array.

    A stable sort puts equal values next to each other in their original order (a hash table of
    5M strings, as dictionary_encode builds, took ~800 MB).
    """
    order = pc.sort_indices(values)  # stable
    ordered = values.take(order)
    same_as_previous = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1)).to_numpy(zero_copy_only=False)
    repeat = np.zeros(len(values), bool)
    repeat[order.to_numpy()[1:][same_as_previous]] = True
    return repeat


def unique_values(f: SchemaField, n: int, rng: np.random.Generator, fit: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """n distinct valid values of a unique field: repeats are drawn again until none is left."""
    values = fit(field_values(f, n, rng))
    for _ in range(60):
        repeat = duplicate_positions(values)
        count = int(repeat.sum())
        if not count:
            return values
        redrawn = fit(field_values(f, count, rng, first_no=n + rng.integers(1 << 40)))
        values = pc.replace_with_mask(values, pa.array(repeat), redrawn)
    raise ValueError(f"field '{f.name}': its pattern has too few distinct values for {n:,} records")


# ---------------------------------------------------------------- broken records


@dataclass(frozen=True)
class Breakage:
    """One way to break exactly one rule of one field: ``value`` replaces the field's raw value."""

    field: str  # source name
    rule: str
    value: str | None  # None: copy the value of an earlier valid record (a duplicate)


def _out_of_bounds(f: SchemaField, below: bool) -> str:
    bound = f.min if below else f.max
    assert bound is not None
    if f.type == FieldType.INTEGER:
        return str(math.ceil(bound) - 1 if below else math.floor(bound) + 1)
    if f.type == FieldType.DECIMAL:
        return f"{bound + (-1 if below else 1):.{f.scale}f}"
    return f"{bound + (-1.5 if below else 1.5):.3f}"


def breakages(spec: VendorSpec) -> list[Breakage]:
    """Every single-rule breakage the spec allows, in schema order."""
    found = []
    for f in spec.schema_:
        name = f.source_name
        if f.required:
            found.append(Breakage(name, f"required:{f.name}", ""))
        if f.type != FieldType.STRING:
            found.append(Breakage(name, f"type:{f.name}", "n/a"))
        elif f.regex and not re.fullmatch(f.regex, "??"):
            found.append(Breakage(name, f"regex:{f.name}", "??"))
        if f.min is not None:
            found.append(Breakage(name, f"min:{f.name}", _out_of_bounds(f, below=True)))
        if f.max is not None:
            found.append(Breakage(name, f"max:{f.name}", _out_of_bounds(f, below=False)))
        if f.allowed and "UNKNOWN" not in f.allowed:
            found.append(Breakage(name, f"allowed:{f.name}", "UNKNOWN"))
        if f.unique:
            found.append(Breakage(name, f"unique:{f.name}", None))
    return found


# ---------------------------------------------------------------- files


class BulkSynth:
    """The records of one file: unique columns drawn whole up front, the rest batch by batch."""

    def __init__(self, spec: VendorSpec, records: int, *, invalid_share: float, seed: int):
        self.spec = spec
        self.records = records
        root = np.random.SeedSequence(seed)
        plan_rng, unique_rng, self._batch_seeds = (np.random.default_rng(s) for s in root.spawn(3))
        fmt = spec.input
        self.widths = {f.name: f.width for f in fmt.fields} if isinstance(fmt, FixedWidthFormat) else {}
        self.invalid = plan_rng.random(records) < invalid_share
        self.invalid[:1] = False  # a duplicate needs an earlier valid record to copy
        self.kinds = breakages(spec)
        self.kind = plan_rng.integers(0, max(1, len(self.kinds)), records, dtype=np.int16)
        if not self.kinds:
            self.invalid[:] = False
        positions = np.arange(records)
        self.prior_valid = np.maximum.accumulate(np.where(self.invalid, -1, positions))
        self.unique = {
            f.source_name: unique_values(f, records, unique_rng, lambda a, f=f: self._fit(f.source_name, a))
            for f in spec.schema_
            if f.unique
        }

    def _fit(self, name: str, values: pa.Array) -> pa.Array:
        width = self.widths.get(name)
        return pc.utf8_slice_codeunits(values, 0, width) if width else values

    def batches(self, batch_rows: int = BATCH_ROWS):
        names = [f.source_name for f in self.spec.schema_]
        schema = pa.schema([pa.field(n, pa.string()) for n in names])
        for start in range(0, self.records, batch_rows):
            n = min(batch_rows, self.records - start)
            rng = np.random.default_rng([int(self._batch_seeds.integers(1 << 62)), start])
            columns = {}
            for f in self.spec.schema_:
                if f.source_name in self.unique:
                    columns[f.source_name] = self.unique[f.source_name].slice(start, n)
                else:
                    columns[f.source_name] = self._fit(f.source_name, field_values(f, n, rng, first_no=start))
            self._break(columns, start, n)
            yield pa.RecordBatch.from_arrays([columns[name] for name in names], schema=schema)

    def _break(self, columns: dict[str, pa.Array], start: int, n: int) -> None:
        invalid = self.invalid[start : start + n]
        if not invalid.any():
            return
        kind = self.kind[start : start + n]
        for k, breakage in enumerate(self.kinds):
            mask = invalid & (kind == k)
            if not mask.any():
                continue
            if breakage.value is None:
                sources = self.prior_valid[start : start + n][mask]
                replacement = self.unique[breakage.field].take(pa.array(sources))
            else:
                replacement = pa.array([breakage.value] * int(mask.sum()), pa.string())
            columns[breakage.field] = pc.replace_with_mask(columns[breakage.field], pa.array(mask), replacement)


def write_bulk_file(
    spec: VendorSpec, path: Path, records: int, *, invalid_share: float = 0.0, seed: int = 0
) -> GeneratedFile:
    """Write ``records`` raw records in the vendor's input format; returns how many are invalid."""
    synth = BulkSynth(spec, records, invalid_share=invalid_share, seed=seed)
    fmt = spec.input
    encoding = getattr(fmt, "encoding", "utf-8")
    schema = pa.schema([pa.field(f.source_name, pa.string()) for f in spec.schema_])
    with open(path, "wb") as sink:
        for n in range(getattr(fmt, "skip_lines", 0)):
            sink.write(f"# {spec.name} extract, line {n + 1} of the preamble\n".encode(encoding))
        writer = open_writer(fmt, sink, schema)
        for batch in synth.batches():
            writer.write_batch(batch)
        writer.close()
    return GeneratedFile(file_name=path.name, records=records, invalid=int(synth.invalid.sum()))


# ---------------------------------------------------------------- a day of files


def file_sizes(files: int, total: int, rng: np.random.Generator, lo: int = 1_000, hi: int = 100_000) -> np.ndarray:
    """Record counts of ``files`` files summing to ``total``, log-normal between ``lo`` and ``hi``.

    A log-normal (sigma 1) is the usual shape of file sizes: most are small, a few are large.
    """
    if not lo * files <= total <= hi * files:
        raise ValueError(f"{total:,} records do not fit {files:,} files of {lo:,}..{hi:,}")
    mean = total / files
    sizes = np.clip(rng.lognormal(math.log(mean) - 0.5, 1.0, files), lo, hi)
    for _ in range(50):
        sizes = np.clip(sizes * total / sizes.sum(), lo, hi)
    counts = np.floor(sizes).astype(np.int64)
    short = total - int(counts.sum())
    step = 1 if short > 0 else -1
    order = rng.permutation(files)
    while short:
        for i in order:
            if short and lo <= counts[i] + step <= hi:
                counts[i] += step
                short -= step
    return counts


@dataclass(frozen=True)
class PlannedFile:
    vendor_id: str
    file_name: str
    records: int
    seed: int

    @property
    def path(self) -> str:
        """Where the file sits under a generated day's ``files/`` folder (and under a day's inbound folder)."""
        return f"{self.vendor_id}/{self.file_name}"


def derived_specs(bases: list[VendorSpec], vendors: int) -> list[VendorSpec]:
    """``vendors`` vendor specs cycling over ``bases``: the bases themselves, then copies with new ids."""
    specs = []
    for k in range(vendors):
        base = bases[k % len(bases)]
        if k < len(bases):
            specs.append(base)
        else:
            copy = k // len(bases)
            update = {"vendor_id": f"{base.vendor_id}_{copy:03d}", "name": f"{base.name} #{copy}"}
            specs.append(base.model_copy(update=update))
    return specs


def plan_day(
    specs: list[VendorSpec], *, files: int, records: int, seed: int, label: str = "2026-01-01"
) -> list[PlannedFile]:
    """``files`` files of ``records`` records in all, dealt round-robin to the vendors in random order.

    ``label`` is the day written into file names (the folder a file lands in decides its partition).
    """
    rng = np.random.default_rng([seed, 0])
    sizes = file_sizes(files, records, rng)
    owners = rng.permutation(np.arange(files) % len(specs))
    counters: dict[str, int] = {}
    planned = []
    for i, (size, owner) in enumerate(zip(sizes, owners, strict=True)):
        spec = specs[owner]
        counters[spec.vendor_id] = counters.get(spec.vendor_id, 0) + 1
        name = file_name_for(spec, label, counters[spec.vendor_id])
        planned.append(PlannedFile(spec.vendor_id, name, int(size), seed * 1_000_003 + i))
    return planned
