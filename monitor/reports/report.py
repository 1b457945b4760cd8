"""A report: the store read for one period and scope, its tables built with pandas, and the
formats it is written in (HTML with charts, CSV, XLSX, JSON), which carry the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from monitor.district import District
from monitor.reports import queries, tables
from monitor.reports.period import Period
from monitor.reports.render import Section, to_csv, to_html, to_json, to_xlsx

TOP_STUDENTS = 10


@dataclass(frozen=True)
class Report:
    """A built report; :meth:`to_html`, :meth:`to_csv`, :meth:`to_xlsx`, :meth:`to_json`."""

    district: str
    period: Period
    schools: tuple[str, ...] | None
    school_names: dict[str, str]
    generated: datetime
    sections: tuple[Section, ...]
    empty: bool
    timezone: str = "UTC"

    @property
    def title(self) -> str:
        where = ", ".join(self.schools) if self.schools is not None else "all schools"
        return f"Activity report · {where} · {self.period.describe()}"

    @property
    def students(self) -> tuple[str, ...]:
        """The pseudonyms the report shows (to be written to the record of access)."""
        return tuple(str(p) for s in self.sections if s.students for p in s.table.index if str(p))

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def to_csv(self) -> str:
        return to_csv(self)

    def to_json(self) -> str:
        return to_json(self)

    def to_xlsx(self) -> bytes:
        return to_xlsx(self)

    def to_html(self, *, inline_svg: bool = False) -> str:
        """One self-contained HTML file (charts as SVG ``data:`` images); ``inline_svg``:
        charts as ``<svg>`` elements instead, for a page whose CSP allows no data: images."""
        return to_html(self, inline_svg=inline_svg)


def _engine(store: Any) -> Engine:
    engine = getattr(store, "engine", store)
    if not isinstance(engine, Engine):
        raise TypeError(f"expected a store or an engine, got {type(store).__name__}")
    return engine


def build(
    store: Any,
    period: Period,
    schools: Sequence[str] | None,
    *,
    district: District,
    link_base: str = "",
    top: int = TOP_STUDENTS,
    now: datetime | None = None,
) -> Report:
    """The report of ``period`` for ``schools`` (school identifiers; None: the district) from
    ``store`` (a store or its engine). Links to students point at ``link_base`` + /students/…"""
    engine = _engine(store)
    tz = district.policy.tz
    since, until = period.bounds(tz)
    scope_schools = tuple(dict.fromkeys(schools)) if schools is not None else None
    scope = queries.Scope(period.start, period.end, since, until, scope_schools)
    catalogue = district.catalogue
    names = {p.id: p.name for p in catalogue}
    bypass_kinds = {p.id: p.bypass_kind or "proxy" for p in catalogue if p.is_bypass}
    for_adults = [p.id for p in catalogue if not p.designed_for_children and not p.is_bypass]
    weeks = period.weeks()

    activity = queries.activity_by_school(engine, scope)
    blocked = queries.blocked_by_day(engine, scope)
    under13 = queries.band_by_day(engine, scope, "under13", for_adults)
    bypass = queries.by_school_on(engine, scope, sorted(bypass_kinds))
    counts = queries.incident_counts(engine, scope)
    top_rows = queries.top_students(engine, scope, top)
    reviews = queries.reviews(engine, scope)
    grants = queries.override_grants(engine, scope)
    use = queries.override_use(engine, scope)

    roster = district.roster

    def school_of(class_id: str | None, students: Sequence[str]) -> tuple[str, ...]:
        ids: list[str] = []
        if class_id and class_id in roster.classes:
            ids.append(roster.classes[class_id].school)
        for sid in students:
            person = roster.people.get(sid)
            if person is not None:
                ids.extend(person.schools[:1])
        return tuple(sorted({district.school_label(i) for i in ids}))

    base = link_base.rstrip("/")
    under13_weekly = tables.band_by_week(under13, weeks)
    override_rows = tables.override_table(grants, use, school_of, scope_schools, tz)
    sections = (
        Section("overview", "Overview by school", tables.overview(activity, counts, bypass)),
        Section(
            "blocked_by_platform",
            "Blocked attempts by platform",
            tables.blocked_by_platform(blocked),
            "Requests blocked by policy; a connection refused without decrypting counts as one.",
            chart="barh",
        ),
        Section(
            "blocked_by_week",
            "Blocked attempts by week",
            tables.blocked_by_week(blocked, weeks),
            "Weeks start on Monday; the first and last may be partial.",
            chart="stacked",
        ),
        Section(
            "under13_by_week",
            "Under-13 attempts on platforms not made for children, by week",
            under13_weekly,
            "Students 12 and under (COPPA) on platforms the catalogue does not mark as made "
            "for children.",
            chart="line",
        ),
        Section("under13_trend", "Under-13 attempts: trend", tables.trend(under13_weekly.attempts)),
        Section(
            "under13_by_platform",
            "Under-13 attempts by platform",
            tables.by_platform(under13, names),
        ),
        Section(
            "bypass_by_school",
            "Bypass attempts by school (VPN, DoH, proxy, Tor)",
            tables.bypass_by_school(bypass, bypass_kinds),
            chart="stacked",
        ),
        Section(
            "incidents_by_severity",
            "Incidents by severity and review status",
            tables.incidents_by_severity(counts),
            "Incidents last seen in the period.",
            chart="stacked",
        ),
        Section(
            "response_times",
            "Time to acknowledge and resolve, per school and counselor",
            tables.response_times(reviews),
            "Hours from an incident's first event to its first acknowledgement and resolution "
            "in the review app.",
        ),
        Section(
            "overrides_by_platform",
            "Teacher overrides granted and used, by platform",
            tables.override_summary(override_rows),
            "Overrides in force during the period; used: allowed at least one request.",
        ),
        Section("overrides", "Teacher overrides in force", override_rows),
        Section(
            "top_students",
            "Students with most incidents",
            tables.students_table(top_rows, lambda p: f"{base}/students/{p}"),
            "Pseudonyms only; a counselor may reveal a name in the review app, which records "
            "who did and why.",
            students=True,
        ),
    )
    empty = activity.empty and counts.empty and override_rows.empty
    school_names = {s.identifier or sid: s.name for sid, s in roster.schools.items()}
    return Report(
        district=district.policy.district,
        period=period,
        schools=scope_schools,
        school_names=school_names,
        generated=now or datetime.now(UTC),
        sections=sections,
        empty=empty,
        timezone=district.policy.timezone,
    )
