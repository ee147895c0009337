"""XML: records are the elements at ``record_path``; parsed with defusedxml, written as escaped text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import pyarrow as pa
import pyarrow.compute as pc
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from batch_assets.lib.formats.common import (
    DEFAULT_LIMITS,
    FormatError,
    ReadLimits,
    RowBuffer,
    encode_text,
    has_match,
    text_columns,
)
from batch_assets.lib.specs.model import XmlFormat

# Characters XML 1.0 cannot carry at all, even as character references.
NOT_XML = "[\\x{0}-\\x{8}\\x{b}\\x{c}\\x{e}-\\x{1f}\\x{fffe}\\x{ffff}]"
DECLARED_ENCODING = {"utf-8": "UTF-8", "latin-1": "ISO-8859-1"}


def _clark(name: str, namespaces: dict[str, str]) -> str:
    """``ns:order`` -> ``{urn:x}order``, the form ElementTree uses for tags and attribute names."""
    if ":" not in name:
        return name
    prefix, local = name.split(":", 1)
    return f"{{{namespaces[prefix]}}}{local}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Tracked:
    """Remembers whether the file held anything but whitespace, to tell an empty file from a broken one,
    and refuses to read on when more than ``max_record_bytes`` pass without a record ending."""

    def __init__(self, source: BinaryIO, limits: ReadLimits) -> None:
        self._source = source
        self._limits = limits
        self.has_content = False
        self.since_record = 0  # bytes read since the read in which the last record ended

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if not self.has_content and data.strip():
            self.has_content = True
        self.since_record += len(data)
        if self.since_record > self._limits.max_record_bytes:
            raise FormatError(f"XML file: a {self._limits.too_long()}")
        return data


def _record_values(record: Element, fields: Sequence[str], fmt: XmlFormat) -> tuple[list[str | None], str | None]:
    # An unprefixed field matches a child of that local name in any namespace (children usually
    # inherit the record's default namespace); a prefixed one must match its namespace exactly.
    children: dict[str, list[Element]] = {}
    for child in record:
        children.setdefault(child.tag, []).append(child)
        if child.tag.startswith("{"):
            children.setdefault(_local(child.tag), []).append(child)
    values: list[str | None] = []
    problems: list[str] = []
    for name in fields:
        if name in fmt.attributes:
            values.append(record.get(_clark(name, fmt.namespaces)))
            continue
        found = children.get(_clark(name, fmt.namespaces), [])
        if len(found) > 1:
            problems.append(f"{name} is repeated")
            values.append(None)
        elif found and len(found[0]):
            problems.append(f"{name} holds nested elements")
            values.append(None)
        else:
            values.append((found[0].text or "") if found else None)
    return values, "; ".join(problems) or None


def read_xml(
    fmt: XmlFormat, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[pa.RecordBatch]:
    path = [_clark(step, fmt.namespaces) for step in fmt.record_path.split("/")]
    parser = DefusedXMLParser(
        target=TreeBuilder(),
        encoding="iso-8859-1" if fmt.encoding == "latin-1" else None,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    tracked = _Tracked(source, limits)
    buffer = RowBuffer(fields)
    open_elements: list[Element] = []
    matched = 0  # how many of the open elements follow record_path from the root
    record_no = 0
    try:
        for event, element in iterparse(tracked, events=("start", "end"), parser=parser):
            if event == "start":
                if not open_elements and element.tag != path[0]:
                    raise FormatError(f"XML root element is {element.tag}, record_path expects {path[0]}")
                if matched == len(open_elements) and matched < len(path) and element.tag == path[matched]:
                    matched += 1
                open_elements.append(element)
                if len(open_elements) > limits.max_depth:
                    raise FormatError(f"XML file is {limits.too_deep()}")
                continue
            depth = len(open_elements)
            open_elements.pop()
            if depth == matched == len(path):
                tracked.since_record = 0
                record_no += 1
                values, error = _record_values(element, fields, fmt)
                buffer.add(record_no, None, error, values)
                if len(buffer) >= chunk_size:
                    yield buffer.flush()
            elif depth > len(path) and matched == len(path):
                continue  # inside a record: kept until the record ends
            if depth == matched:
                matched -= 1
            if open_elements:
                open_elements[-1].remove(element)  # finished with it: keeps memory flat
    except DefusedXmlException as exc:
        raise FormatError(f"XML file declares a DTD or entities, which are refused: {type(exc).__name__}") from exc
    except ParseError as exc:
        if not tracked.has_content:
            return
        raise FormatError(f"XML file is not well-formed: {exc}") from exc
    if len(buffer):
        yield buffer.flush()


# ---------------------------------------------------------------- writing


def _escape(column: pa.Array, attribute: bool) -> pa.Array:
    replacements = [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")]
    if attribute:
        # Parsers normalise whitespace in attribute values; references keep it exact.
        replacements += [('"', "&quot;"), ("\n", "&#10;"), ("\t", "&#9;")]
    for char, reference in replacements:
        column = pc.replace_substring(column, char, reference)
    return column


class XmlWriter:
    """``a/b/rec`` is written as ``<a xmlns:..><b><rec ..>..</rec>...</b></a>``; null fields are omitted."""

    def __init__(self, fmt: XmlFormat, sink: BinaryIO, schema: pa.Schema) -> None:
        steps = fmt.record_path.split("/")
        if len(steps) < 2:
            raise ValueError("XML output needs a record_path with a root above the record, like 'records/record'")
        self._fmt = fmt
        self._sink = sink
        self._names = schema.names
        self._record = steps[-1]
        self._parents = steps[:-1]
        declarations = "".join(
            f' xmlns:{prefix}="{uri.replace("&", "&amp;").replace(chr(34), "&quot;")}"'
            for prefix, uri in fmt.namespaces.items()
        )
        opening = f"<{self._parents[0]}{declarations}>" + "".join(f"<{p}>" for p in self._parents[1:])
        header = f'<?xml version="1.0" encoding="{DECLARED_ENCODING[fmt.encoding]}"?>\n{opening}\n'
        sink.write(header.encode(fmt.encoding))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        columns = text_columns(batch, self._names)
        attributes, children = [], []
        for name, column in columns.items():
            if has_match(column, NOT_XML):
                raise ValueError(f"field '{name}' has a character that XML cannot represent")
            if name in self._fmt.attributes:
                attribute = pc.binary_join_element_wise(f' {name}="', _escape(column, True), '"', "")
                attributes.append(pc.fill_null(attribute, ""))
            else:
                child = pc.binary_join_element_wise(f"<{name}>", _escape(column, False), f"</{name}>", "")
                children.append(pc.fill_null(child, ""))
        start = pa.repeat(pa.scalar(f"<{self._record}"), batch.num_rows)
        records = pc.binary_join_element_wise(start, *attributes, ">", *children, f"</{self._record}>", "")
        text = "\n".join(records.to_pylist()) + "\n"
        self._sink.write(self._encode(text, columns))

    def close(self) -> None:
        closing = "".join(f"</{p}>" for p in reversed(self._parents)) + "\n"
        self._sink.write(closing.encode(self._fmt.encoding))

    def _encode(self, text: str, columns: dict[str, pa.Array]) -> bytes:
        if self._fmt.encoding == "latin-1":
            return text.encode("latin-1", errors="xmlcharrefreplace")  # &#NNNN; reads back exactly
        return encode_text(text, self._fmt.encoding, columns)
