"""A vendor's day as a one-page PDF: files, rows in / out / rejected, rejects by rule, a chart.

Everything is counted from what the day's outputs hold (staged Parquet, rejects JSON lines,
quarantine), not from run metadata, so the report says what actually went out.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from fpdf import FPDF

from batch_assets.lib.engine import layout
from batch_assets.lib.engine.dead_letters import list_dead_letters
from batch_assets.lib.specs.model import VendorSpec
from batch_assets.lib.storage import FileStore


@dataclass
class FileLine:
    name: str
    rows_out: int
    rows_rejected: int

    @property
    def rows_in(self) -> int:
        return self.rows_out + self.rows_rejected


@dataclass
class DaySummary:
    vendor_id: str
    vendor_name: str
    day: str
    files: list[FileLine] = field(default_factory=list)
    rejects_by_rule: Counter = field(default_factory=Counter)
    quarantined: list[str] = field(default_factory=list)
    outbound: list[str] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)


def summarize_day(store: FileStore, spec: VendorSpec, day: str) -> DaySummary:
    summary = DaySummary(vendor_id=spec.vendor_id, vendor_name=spec.name, day=day)
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        local = Path(tmp) / "f"
        for obj in store.list(layout.day_prefix(layout.STAGED, spec.vendor_id, day)):
            name = obj.key.rsplit("/", 1)[-1].removesuffix(".parquet")
            store.download(obj.key, local)
            rows_out = pq.ParquetFile(local).metadata.num_rows
            rejects = layout.rejects_key(spec.vendor_id, day, name)
            rejected = 0
            if store.stat(rejects) is not None:
                for line in store.read_bytes(rejects).splitlines():
                    summary.rejects_by_rule[json.loads(line)["_reject_rule"]] += 1
                    rejected += 1
            summary.files.append(FileLine(name, rows_out, rejected))
    summary.quarantined = [
        letter.key.rsplit("/", 1)[-1] for letter in list_dead_letters(store, spec.vendor_id) if f"/{day}/" in letter.key
    ]
    summary.outbound = [
        o.key.rsplit("/", 1)[-1]
        for o in store.list(layout.day_prefix(layout.OUTBOUND, spec.vendor_id, day))
        if not layout.is_report(o.key)
    ]
    return summary


def _latin1(text: str) -> str:
    # The core PDF fonts are Latin-1; anything else is shown as '?' rather than failing the report.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(summary: DaySummary, path: Path) -> None:
    pdf = FPDF(format="A4")
    # Same day, same outputs, same bytes: a rerun must not change the report.
    pdf.set_creation_date(dt.datetime.fromisoformat(summary.day).replace(tzinfo=dt.UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"{summary.vendor_name} - daily report {summary.day}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 6, f"vendor {summary.vendor_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font("Helvetica", "B", 11)
    rows_in, rows_out, rejected = (summary.total(a) for a in ("rows_in", "rows_out", "rows_rejected"))
    rate = f"{rejected / rows_in:.2%}" if rows_in else "n/a"
    pdf.cell(
        0,
        7,
        f"Files {len(summary.files)}   Rows in {rows_in}   Rows out {rows_out}   Rows rejected {rejected} ({rate})",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)

    pdf.set_font("Helvetica", size=9)
    with pdf.table(col_widths=(90, 30, 30, 30), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT")) as table:
        table.row(["File", "Rows in", "Rows out", "Rejected"])
        for f in summary.files:
            table.row([_latin1(f.name), str(f.rows_in), str(f.rows_out), str(f.rows_rejected)])
    pdf.ln(4)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Rejects by rule", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    rules = summary.rejects_by_rule.most_common(12)
    if not rules:
        pdf.cell(0, 6, "no rejected records", new_x="LMARGIN", new_y="NEXT")
    most = rules[0][1] if rules else 1
    for rule, count in rules:
        y = pdf.get_y()
        pdf.cell(60, 6, _latin1(rule))
        pdf.set_fill_color(200, 60, 60)
        pdf.rect(pdf.l_margin + 62, y + 1, max(1.0, 100 * count / most), 4, style="F")
        pdf.set_xy(pdf.l_margin + 166, y)
        pdf.cell(20, 6, str(count), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Outbound files", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    for name in summary.outbound or ["none yet"]:
        pdf.cell(0, 5, _latin1(name), new_x="LMARGIN", new_y="NEXT")
    if summary.quarantined:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, "Quarantined files", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        for name in summary.quarantined:
            pdf.cell(0, 5, _latin1(name), new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def write_daily_report(store: FileStore, spec: VendorSpec, day: str) -> tuple[str, DaySummary]:
    """Publish the day's report beside its outbound files; returns its key and the numbers in it."""
    summary = summarize_day(store, spec, day)
    key = layout.report_key(spec.vendor_id, day)
    with store.publish(key) as path:
        render_pdf(summary, path)
    return key, summary
