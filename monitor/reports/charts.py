"""The report's charts, drawn with matplotlib from the report's tables as SVG text (no
pyplot: figures are objects of their own, safe in the review app's threads)."""

from __future__ import annotations

import io
import re

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from monitor.reports.tables import TOTAL

# Text as <text> elements, not glyph paths: smaller and faster. Set once for the process (an
# rc_context per chart would race between the review app's threads); nothing else here draws.
matplotlib.rcParams["svg.fonttype"] = "none"
_WIDTH = 7.5
_COLORS = ("#3b6ea8", "#d9822b", "#5a9e5a", "#b94a48", "#8064a2", "#4bacc6", "#9a9a9a", "#c0b283")


def _svg(fig: Figure, left: float = 0.08) -> str:
    # Fixed margins rather than bbox_inches="tight", which lays every text out twice (half the
    # drawing time); text as <text> elements rather than glyph paths (smaller, faster).
    height = fig.get_figheight()  # margins in inches: tick labels and the axis label fit
    fig.subplots_adjust(left=left, right=0.82, top=1 - 0.1 / height, bottom=0.65 / height)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _body(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its total row and column, as numbers."""
    t = table.drop(index=[TOTAL], columns=[TOTAL], errors="ignore")
    return t.apply(pd.to_numeric, errors="coerce").fillna(0)


def barh(table: pd.DataFrame, title: str) -> str:
    """Horizontal bars of the first column (at most 15 rows)."""
    t = _body(table).iloc[:15, :1]
    fig = Figure(figsize=(_WIDTH, 0.3 * len(t) + 1.2))
    ax = fig.subplots()
    ax.barh([str(i) for i in t.index][::-1], t.iloc[:, 0].to_numpy()[::-1], color=_COLORS[0])
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(str(t.columns[0]))
    ax.spines[["top", "right"]].set_visible(False)
    longest = max((len(str(i)) for i in t.index), default=4)
    return _svg(fig, left=min(0.4, 0.03 + 0.012 * longest))


def _legend(ax: Axes, t: pd.DataFrame) -> None:
    """A legend of the series, when there are any (a table with rows but no series column,
    e.g. incidents in a period with no blocked requests, has nothing to label)."""
    if len(t.columns):
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def stacked(table: pd.DataFrame, title: str) -> str:
    """Bars per row, stacked by column (totals left out)."""
    t = _body(table)
    fig = Figure(figsize=(_WIDTH, 3.0))
    ax = fig.subplots()
    bottom = pd.Series(0.0, index=t.index)
    labels = [str(i) for i in t.index]
    for i, col in enumerate(t.columns):
        ax.bar(labels, t[col].to_numpy(), bottom=bottom.to_numpy(), label=str(col),
               color=_COLORS[i % len(_COLORS)])  # fmt: skip
        bottom += t[col]
    ax.set_title(title, fontsize=10, loc="left")
    _legend(ax, t)
    ax.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0, labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def line(table: pd.DataFrame, title: str) -> str:
    """One line per column over the rows (weeks)."""
    t = _body(table)
    fig = Figure(figsize=(_WIDTH, 2.8))
    ax = fig.subplots()
    labels = [str(i) for i in t.index]
    for i, col in enumerate(t.columns):
        ax.plot(labels, t[col].to_numpy(), marker="o", markersize=3, label=str(col),
                color=_COLORS[i % len(_COLORS)])  # fmt: skip
    ax.set_title(title, fontsize=10, loc="left")
    _legend(ax, t)
    ax.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0, labelsize=7)
    ax.set_ylim(bottom=0)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


CHARTS = {"barh": barh, "stacked": stacked, "line": line}


def draw(kind: str, table: pd.DataFrame, title: str) -> str:
    """The SVG of chart ``kind`` drawn from ``table``."""
    return CHARTS[kind](table, title)


def _attributes(m: re.Match[str]) -> str:
    parts = (p.split(":", 1) for p in m.group(1).split(";") if ":" in p)
    return " ".join(f'{k.strip()}="{v.strip()}"' for k, v in parts)


def inline(svg: str) -> str:
    """An SVG document as an element to put in a page: no XML prolog or doctype, and no
    inline CSS (the review app's Content-Security-Policy allows none): the <style> element
    dropped, ``style`` attributes written as SVG presentation attributes (matplotlib uses
    only fill, stroke and stroke-* there)."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    return re.sub(r'style="([^"]*)"', _attributes, svg)
