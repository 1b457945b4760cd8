"""Writing a report: one self-contained HTML file (Jinja, charts as SVG, print CSS), CSV (one
row per table cell: section, row, column, value), XLSX (a sheet per table) and JSON. Every
format writes each cell through :func:`cell`, so they carry the same numbers."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2
import numpy as np
import pandas as pd

from monitor.reports.period import Period

TEMPLATES = Path(__file__).resolve().parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Section:
    """One table of the report; ``chart`` names the chart drawn from it (or "")."""

    name: str
    title: str
    table: pd.DataFrame
    note: str = ""
    chart: str = ""
    students: bool = False  # rows about single students (pseudonyms)


class Report(Protocol):
    """What a report is to the writers below (:class:`monitor.reports.report.Report`)."""

    @property
    def district(self) -> str: ...

    @property
    def period(self) -> Period: ...

    @property
    def schools(self) -> tuple[str, ...] | None: ...

    @property
    def school_names(self) -> dict[str, str]: ...

    @property
    def generated(self) -> datetime: ...

    @property
    def sections(self) -> tuple[Section, ...]: ...

    @property
    def empty(self) -> bool: ...

    @property
    def timezone(self) -> str: ...

    @property
    def title(self) -> str: ...


def value(v: Any) -> Any:
    """A cell as a plain JSON value: int, float or str (missing: "")."""
    if isinstance(v, bool | np.bool_ | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return "" if math.isnan(f) else f
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, int | str):
        return v
    return str(v)


def cell(v: Any) -> str:
    """A cell as text, the same in every format."""
    x = value(v)
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() else f"{x:.1f}"
    return str(x)


def rows(section: Section) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(row label, [(column, value)]) of a section's table."""
    t = section.table
    return [
        (str(label), [(str(c), value(v)) for c, v in zip(t.columns, row, strict=True)])
        for label, row in zip(t.index, t.itertuples(index=False, name=None), strict=True)
    ]


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "row", "column", "value"])
    for s in report.sections:
        for label, cells in rows(s):
            for col, v in cells:
                w.writerow([s.name, label, col, cell(v)])
    return buf.getvalue()


def _meta(report: Report) -> dict[str, Any]:
    return {
        "title": report.title,
        "district": report.district,
        "from": report.period.start.isoformat(),
        "to": report.period.end.isoformat(),
        "schools": list(report.schools) if report.schools is not None else None,
        "timezone": report.timezone,
        "generated": report.generated.isoformat(timespec="seconds"),
        "empty": report.empty,
    }


def to_json(report: Report) -> str:
    out = _meta(report)
    out["sections"] = [
        {
            "name": s.name,
            "title": s.title,
            "row_label": s.table.index.name or "",
            "columns": [str(c) for c in s.table.columns],
            "rows": [{"row": label, **dict(cells)} for label, cells in rows(s)],
        }
        for s in report.sections
    ]
    return json.dumps(out, indent=1, ensure_ascii=False)


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "report"
    for k, v in _meta(report).items():
        ws.append([k, ", ".join(v) if isinstance(v, list) else str(v)])
    bold = Font(bold=True)
    for s in report.sections:
        sheet = wb.create_sheet(s.name[:31])
        sheet.append([s.title])
        sheet["A1"].font = bold
        sheet.append([s.table.index.name or "", *(str(c) for c in s.table.columns)])
        for label, cells in rows(s):
            sheet.append([label, *(v for _c, v in cells)])
        sheet.column_dimensions["A"].width = 28
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_html(report: Report, *, inline_svg: bool = False) -> str:
    from monitor.reports.charts import draw, inline  # matplotlib: only when drawing

    charts: dict[str, str] = {}
    if not report.empty:
        for s in report.sections:
            if s.chart and not s.table.empty:
                svg = draw(s.chart, s.table, "")  # the section's heading names it
                if inline_svg:
                    charts[s.name] = inline(svg)
                else:
                    data = base64.b64encode(svg.encode()).decode()
                    charts[s.name] = f"data:image/svg+xml;base64,{data}"
    template = "_body.html" if inline_svg else "report.html"
    return _env.get_template(template).render(
        report=report,
        meta=_meta(report),
        sections=[(s, rows(s)) for s in report.sections],
        charts=charts,
        inline_svg=inline_svg,
        cell=cell,
        standalone=not inline_svg,
    )
