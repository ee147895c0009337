"""A few rows as a Markdown table, for materialization metadata."""

from __future__ import annotations


def markdown_table(rows: list[dict], digits: int = 4) -> str:
    if not rows:
        return "_no rows_"
    columns = list(rows[0])

    def cell(value: object) -> str:
        if isinstance(value, float):
            value = round(value, digits)
        if value is None:
            return ""
        return str(value.isoformat() if hasattr(value, "isoformat") else value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
