"""Daily bars from a folder of per-symbol price files a user already has.

Layout: ``<root>/<exchange>/<SYMBOL>.csv`` or ``.parquet`` (the file name is the symbol, leading
zeros kept: ``005930.csv``). Headers are Yahoo-style English (Date, Open, High, Low, Close,
Adj Close, Volume) or KRX-style Korean (날짜, 시가, 고가, 저가, 종가, 거래량; 수정종가 if present);
other columns are ignored. CSV text is UTF-8 (with or without BOM) or CP949, the encoding of
KRX downloads. Numbers may carry thousands separators ("71,000"); dates may be written
2026-11-20, 2026.11.20, 2026/11/20 or 20261120. Yahoo's "null" rows (every price missing) are
dropped. A row with zero volume and a missing or non-positive price is a trading halt
(``halted = true``), as KRX reports a suspended stock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batch_assets.lib.markets.schema import BarDataError, conform_bars, empty_bars
from batch_assets.lib.markets.sources import BarSource

SUFFIXES = (".csv", ".parquet", ".pq")
HEADERS = {
    "date": "date",
    "날짜": "date",
    "일자": "date",
    "open": "open",
    "시가": "open",
    "high": "high",
    "고가": "high",
    "low": "low",
    "저가": "low",
    "close": "close",
    "종가": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjusted close": "adj_close",
    "수정종가": "adj_close",
    "volume": "volume",
    "거래량": "volume",
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")
NULL_TEXT = ["", "null", "NULL", "NaN", "nan", "-", "N/A", "n/a"]
# Sessions read per pass over the files in fetch_range: bounds memory to this many days of bars.
SESSIONS_PER_PASS = 250


def _decode(raw: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BarDataError(f"{path}: neither UTF-8 nor CP949 text")


def _canonical_names(names: list[str], path: Path) -> dict[str, str]:
    """Original column name -> canonical name, for the columns we know."""
    found: dict[str, str] = {}
    for name in names:
        canonical = HEADERS.get(name.strip().lower()) or HEADERS.get(name.strip())
        if canonical and canonical not in found.values():
            found[name] = canonical
    missing = [c for c in REQUIRED if c not in found.values()]
    if missing:
        raise BarDataError(f"{path}: no column for {', '.join(missing)} (header: {', '.join(names)})")
    return found


def _read_raw(path: Path) -> pa.Table:
    if path.suffix.lower() == ".csv":
        text = _decode(path.read_bytes(), path)
        header = next(csv.reader(io.StringIO(text)), [])
        return pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), null_values=NULL_TEXT, strings_can_be_null=True
            ),
        )
    return pq.read_table(path)


def _number(column: pa.ChunkedArray, to: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.replace_substring(pc.utf8_trim_whitespace(column), ",", "")
        if pa.types.is_integer(to):
            # "1234.0" is how some exports write an integer.
            return column.cast(pa.float64()).cast(to)
    return column.cast(to)


def _dates(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        return column.cast(pa.date32())
    digits = pc.replace_substring_regex(pc.cast(column, pa.string()), r"[^0-9]", "")
    return pc.strptime(digits, format="%Y%m%d", unit="s").cast(pa.date32())


def read_price_file(path: Path) -> pa.Table:
    """One symbol's history from ``path``: symbol, session, prices, volume, halted (not yet per session)."""
    try:
        raw = _read_raw(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise BarDataError(f"{path}: cannot be read: {error}") from error
    names = _canonical_names(raw.column_names, path)
    cols = {canonical: raw[original] for original, canonical in names.items()}
    try:
        out = {
            "session": _dates(cols["date"]),
            **{c: _number(cols[c], pa.float64()) for c in ("open", "high", "low", "close")},
        }
        out["adj_close"] = _number(cols["adj_close"], pa.float64()) if "adj_close" in cols else out["close"]
        out["volume"] = _number(cols["volume"], pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise BarDataError(f"{path}: {error}") from error
    table = pa.table(out)
    prices = [table[c] for c in ("open", "high", "low", "close")]
    all_missing = pc.and_kleene(
        pc.and_kleene(pc.is_null(prices[0]), pc.is_null(prices[1])),
        pc.and_kleene(pc.is_null(prices[2]), pc.is_null(prices[3])),
    )
    table = table.filter(pc.invert(all_missing))
    no_volume = pc.equal(pc.fill_null(table["volume"], 0), 0)
    bad_price = pc.is_null(table["open"])
    for c in ("open", "high", "low", "close"):
        bad_price = pc.or_(bad_price, pc.fill_null(pc.less_equal(table[c], 0.0), True))
    table = table.append_column("halted", pc.and_(no_volume, bad_price))
    symbol = pa.array([path.stem] * table.num_rows, pa.string())
    return table.add_column(0, "symbol", symbol)


class FolderSource(BarSource):
    """Per-symbol CSV or Parquet files under ``<root>/<exchange>/``."""

    kind = "folder"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"folder {self.root}"

    def files(self, exchange: str) -> list[Path]:
        folder = self.root / exchange
        if not folder.is_dir():
            raise BarDataError(f"the price folder {folder} does not exist")
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)

    def fetch(self, exchange: str, session: date) -> pa.Table:
        return next(iter(self.fetch_range(exchange, [session])))[1]

    def fetch_range(self, exchange: str, sessions: Sequence[date]) -> Iterator[tuple[date, pa.Table]]:
        files = self.files(exchange)
        for start in range(0, len(sessions), SESSIONS_PER_PASS):
            chunk = list(sessions[start : start + SESSIONS_PER_PASS])
            wanted = pa.array(chunk, pa.date32())
            parts = []
            for path in files:
                history = read_price_file(path)
                parts.append(history.filter(pc.is_in(history["session"], value_set=wanted)))
            days = pa.concat_tables(parts) if parts else empty_bars().select(["symbol", "session"])
            for session in chunk:
                if not parts:
                    yield session, empty_bars()
                    continue
                day = days.filter(pc.equal(days["session"], pa.scalar(session, pa.date32())))
                yield session, conform_bars(day, session, self.kind)
