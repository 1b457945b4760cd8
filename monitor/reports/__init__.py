"""Reports for principals and counselors, built with pandas from the store: the daily activity
aggregates, the incidents, their review history and the teacher overrides, as tables and
charts in HTML, CSV, XLSX or JSON.

Sits beside ``monitor.flow``: it may import ``monitor.district``, ``monitor.incidents``,
``monitor.rules``, ``monitor.platforms``, ``monitor.people`` and the model; the CLI, the review
app and the notifications call :func:`build`.
"""

from __future__ import annotations

from monitor.reports.period import Period
from monitor.reports.report import Report, build

__all__ = ["Period", "Report", "build"]
