"""A chart of a table with rows but no series (incidents in a period without blocked requests)
draws axes without a legend instead of failing (the review app answered 500)."""

from __future__ import annotations

import pandas as pd
import pytest

from monitor.reports import charts


@pytest.mark.parametrize("kind", ["stacked", "line"])
def test_a_table_without_series_draws_without_a_legend(kind: str) -> None:
    table = pd.DataFrame(index=pd.Index(["2026-W48", "2026-W49"], name="week"))
    svg = charts.draw(kind, table, "nothing blocked")
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "nothing blocked" in svg and "legend" not in svg
