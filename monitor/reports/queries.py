"""The store queries behind a report: each groups in SQL what pandas would otherwise read row
by row (a year of aggregates, a million incidents), and returns a small DataFrame.

Every query takes the period's bounds and the schools in scope (None: the whole district).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Select, and_, case, func, literal, or_, select

from monitor.incidents.events import UNKNOWN_PERSON
from monitor.incidents.store.accessschema import access_log
from monitor.incidents.store.aggregateschema import daily_activity
from monitor.incidents.store.schema import incidents
from monitor.incidents.store.sharedschema import overrides

_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report reads: days (aggregates), instants (incidents, reviews), schools."""

    first_day: date
    last_day: date
    since: datetime
    until: datetime
    schools: tuple[str, ...] | None = None


def _frame(engine: Engine, q: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _activity_where(s: Scope) -> list[ColumnElement[bool]]:
    c = daily_activity.c
    out = [c.day >= s.first_day, c.day <= s.last_day]
    if s.schools is not None:
        out.append(c.school.in_(s.schools))
    return out


def _incident_where(s: Scope) -> list[ColumnElement[bool]]:
    c = incidents.c
    out = [c.last_seen >= s.since, c.last_seen < s.until]
    if s.schools is not None:
        out.append(c.school.in_(s.schools))
    return out


def activity_by_school(engine: Engine, s: Scope) -> pd.DataFrame:
    """school, decision → requests, refused."""
    c = daily_activity.c
    q = (
        select(c.school, c.decision, func.sum(c.requests), func.sum(c.refused))
        .where(*_activity_where(s))
        .group_by(c.school, c.decision)
    )
    return _frame(engine, q, ["school", "decision", "requests", "refused"])


def blocked_by_day(engine: Engine, s: Scope) -> pd.DataFrame:
    """day, platform → blocked requests (refused connections included)."""
    c = daily_activity.c
    q = (
        select(c.day, c.platform, func.sum(c.requests))
        .where(*_activity_where(s), c.decision == "block")
        .group_by(c.day, c.platform)
    )
    return _frame(engine, q, ["day", "platform", "requests"])


def band_by_day(engine: Engine, s: Scope, band: str, platforms: Sequence[str]) -> pd.DataFrame:
    """day, platform, decision → requests of one age band on ``platforms``."""
    c = daily_activity.c
    if not platforms:
        return pd.DataFrame(columns=["day", "platform", "decision", "requests"])
    q = (
        select(c.day, c.platform, c.decision, func.sum(c.requests))
        .where(*_activity_where(s), c.age_band == band, c.platform.in_(list(platforms)))
        .group_by(c.day, c.platform, c.decision)
    )
    return _frame(engine, q, ["day", "platform", "decision", "requests"])


def by_school_on(engine: Engine, s: Scope, platforms: Sequence[str]) -> pd.DataFrame:
    """school, platform, decision → requests on ``platforms`` (the bypass services)."""
    c = daily_activity.c
    if not platforms:
        return pd.DataFrame(columns=["school", "platform", "decision", "requests"])
    q = (
        select(c.school, c.platform, c.decision, func.sum(c.requests))
        .where(*_activity_where(s), c.platform.in_(list(platforms)))
        .group_by(c.school, c.platform, c.decision)
    )
    return _frame(engine, q, ["school", "platform", "decision", "requests"])


def override_use(engine: Engine, s: Scope) -> pd.DataFrame:
    """rule (override:<id>), school, platform → requests allowed by a teacher override."""
    c = daily_activity.c
    q = (
        select(c.rule_id, c.school, c.platform, func.sum(c.requests))
        .where(*_activity_where(s), c.rule_id.like("override:%"))
        .group_by(c.rule_id, c.school, c.platform)
    )
    return _frame(engine, q, ["rule_id", "school", "platform", "requests"])


def incident_counts(engine: Engine, s: Scope) -> pd.DataFrame:
    """school, severity, status → incidents, events (incidents last seen in the period)."""
    c = incidents.c
    q = (
        select(c.school, c.severity, c.status, func.count(), func.sum(c["count"]))
        .where(*_incident_where(s))
        .group_by(c.school, c.severity, c.status)
    )
    return _frame(engine, q, ["school", "severity", "status", "incidents", "events"])


def top_students(engine: Engine, s: Scope, limit: int) -> pd.DataFrame:
    """The ``limit`` pseudonyms with most incidents: person, school, incidents, events, rank
    of the highest severity (3 high … 1 low)."""
    c = incidents.c
    rank = case(_RANK, value=c.severity, else_=0)
    n = func.count().label("n")
    q = (
        select(c.person, func.min(c.school), n, func.sum(c["count"]), func.max(rank))
        .where(*_incident_where(s), c.person != UNKNOWN_PERSON, c.person != "")
        .group_by(c.person)
        .order_by(n.desc(), func.sum(c["count"]).desc(), c.person)
        .limit(limit)
    )
    return _frame(engine, q, ["person", "school", "incidents", "events", "rank"])


def reviews(engine: Engine, s: Scope) -> pd.DataFrame:
    """Status changes to acknowledged or resolved of the incidents in the report, from the
    record of access: incident, school, first_seen, at, account, to (acknowledged|resolved)."""
    a, c = access_log.c, incidents.c
    to = case(
        (a.detail.like("%→ acknowledged%"), literal("acknowledged")), else_=literal("resolved")
    )
    q = (
        select(c.id, c.school, c.first_seen, a.at, a.account, to)
        .select_from(access_log.join(incidents, incidents.c.id == a.incident_id))
        .where(
            a.action == "review",
            or_(a.detail.like("%→ acknowledged%"), a.detail.like("%→ resolved%")),
            and_(*_incident_where(s)),
        )
    )
    return _frame(engine, q, ["incident", "school", "first_seen", "at", "account", "to"])


def override_grants(engine: Engine, s: Scope) -> pd.DataFrame:
    """Teacher overrides in force at some time in the period (starts before its end, ends
    after its start): id, platform, role of the granter, class, students (JSON), starts,
    ends, revoked_at."""
    o = overrides.c
    q = (
        select(
            o.id,
            o.platform,
            o.granted_by_role,
            o.class_id,
            o.students,
            o.starts,
            o.ends,
            o.revoked_at,
        )  # fmt: skip
        .where(o.starts < s.until, o.ends > s.since)
        .order_by(o.starts, o.id)
    )
    cols = ["id", "platform", "role", "class_id", "students", "starts", "ends", "revoked_at"]
    return _frame(engine, q, cols)
