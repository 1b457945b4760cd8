"""The daily activity aggregates table, in the incident store's MetaData: counts of requests
and refused connections per day, school, age band, grade, platform, activity, decision, rule
and source, with nothing about a person in a row.

Every proxy worker and sensor adds its counts with one upsert per flush (``requests =
requests + excluded.requests``), so many writers merge exactly. ``monitor.incidents.store.schema``
imports this module, so its ``metadata`` holds the table.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, String, Table

from monitor.incidents.store.columns import metadata

# The dimensions of a row, in primary key order (day first: new rows land at the end).
DIMENSIONS = (
    "day", "school", "age_band", "grade", "platform", "activity", "decision", "rule_id", "source",
)  # fmt: skip

daily_activity = Table(
    "daily_activity",
    metadata,
    # The day in the district's time zone (a school day, not a UTC day).
    Column("day", Date(), primary_key=True),
    Column("school", String(64), primary_key=True),  # the school label ("unknown" when none)
    Column("age_band", String(16), primary_key=True),  # under13, teen, adult, staff, unknown
    Column("grade", String(16), primary_key=True),  # the roster's grade(s), "" for none
    Column("platform", String(64), primary_key=True),
    Column("activity", String(32), primary_key=True),
    Column("decision", String(16), primary_key=True),
    Column("rule_id", String(128), primary_key=True),
    Column("source", String(16), primary_key=True),  # proxy, sensor
    # Decisions on requests; a connection refused without decrypting counts as one request
    # (as in the monitor_requests metric) and as one refused connection.
    Column("requests", BigInteger(), nullable=False),
    Column("refused", BigInteger(), nullable=False),
    CheckConstraint("requests >= 0 AND refused >= 0", name="counts"),
    # No other index: every report reads a period, which is a range of the key (day first).
    # A (school, day) index made SQLite walk it with a lookup per row even for the whole
    # district (twice as slow), and a school's month is a small range anyway. SQLite: the rows
    # are stored in key order, so a period is one sequential range.
    sqlite_with_rowid=False,
)
