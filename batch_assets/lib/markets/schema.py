"""The daily bar and factor tables as stored: one Parquet file per exchange and session."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("session", pa.date32(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("adj_close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("halted", pa.bool_(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")

FACTOR_COLUMNS = ("mom_20", "mom_60", "mom_120", "sma_20", "sma_60", "ema_20", "rsi_14", "vol_20")
FACTOR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("session", pa.date32(), nullable=False),
        *(pa.field(name, pa.float64()) for name in FACTOR_COLUMNS),
    ]
)


class BarDataError(ValueError):
    """Bars that cannot be stored as a session's table: the message says which and why."""


def empty_bars() -> pa.Table:
    return BAR_SCHEMA.empty_table()


def conform_bars(table: pa.Table, session: date, source: str | None = None) -> pa.Table:
    """The session's bars in ``BAR_SCHEMA``: columns in order and cast, sorted by symbol.

    ``adj_close`` defaults to ``close``, ``halted`` to false and ``source`` to ``source``. Raises
    BarDataError for a missing column, a value that does not cast, a row of another session or
    a symbol that appears twice. Prices are not judged here: the asset checks do that.
    """
    names = set(table.column_names)
    missing = [c for c in ("symbol", "open", "high", "low", "close", "volume") if c not in names]
    if missing:
        raise BarDataError(f"bars of {session} lack the column(s) {', '.join(missing)}")
    n = table.num_rows
    columns = {}
    for field in BAR_SCHEMA:
        if field.name in names:
            column = table[field.name]
        elif field.name == "session":
            column = pa.array([session] * n, pa.date32())
        elif field.name == "adj_close":
            column = table["close"]
        elif field.name == "halted":
            column = pa.array([False] * n, pa.bool_())
        elif field.name == "source" and source is not None:
            column = pa.array([source] * n, pa.string())
        else:
            raise BarDataError(f"bars of {session} lack the column {field.name}")
        try:
            columns[field.name] = column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise BarDataError(f"bars of {session}: column {field.name} is not {field.type}: {error}") from error
    if n and pc.any(pc.is_null(columns["halted"])).as_py():
        columns["halted"] = pc.fill_null(columns["halted"], False)
    for name in ("symbol", "session", "source"):
        if columns[name].null_count:
            raise BarDataError(f"bars of {session}: {columns[name].null_count} row(s) without a {name}")
    out = pa.table(columns, schema=BAR_SCHEMA)
    if n:
        other = pc.filter(out["session"], pc.not_equal(out["session"], pa.scalar(session, pa.date32())))
        if len(other):
            raise BarDataError(f"bars of {session} hold rows of another session: {other[0].as_py()}")
        counts = pc.value_counts(out["symbol"])
        twice = [v["values"].as_py() for v in counts if v["counts"].as_py() > 1]
        if twice:
            raise BarDataError(f"bars of {session}: symbol(s) {', '.join(sorted(twice)[:10])} appear more than once")
    return out.sort_by("symbol")
