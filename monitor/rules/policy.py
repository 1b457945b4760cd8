"""The compiled policy: rules as a lookup table, school hours and the district's local time.

A :class:`Policy` is built by :func:`monitor.rules.loader.load_policy` from a validated file and
never changes. Rules are compiled at load into a table keyed by (group, band, platform id,
activity) whose values are the few candidate rules left to check against school and school
hours; :func:`monitor.rules.decide.decide` walks those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.model import AGE_BANDS, AgeBand, Decision
from monitor.platforms.catalogue import ACTIVITIES, Catalogue, Platform
from monitor.rules.schema import format_duration

Group = Literal["student", "staff", "unknown"]
GROUPS: tuple[Group, ...] = ("student", "staff", "unknown")

_TABLE_LIMIT = 100_000  # keys made of caller-supplied activities must not grow without bound


@dataclass(frozen=True, slots=True)
class SchoolHours:
    """When one school is in session: intervals of minutes per weekday, and closed dates."""

    name: str
    week: tuple[tuple[tuple[int, int], ...], ...]  # 7 entries, Monday first; [start, end)
    closed: frozenset[date]

    def open_at(self, day: date, weekday: int, minute: int) -> bool:
        if day in self.closed:
            return False
        for start, end in self.week[weekday]:  # a loop, not any(): this is on the hot path
            if start <= minute < end:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Match:
    """A rule's conditions; None means "any"."""

    who: frozenset[str] | None = None
    bands: frozenset[str] | None = None
    schools: frozenset[str] | None = None  # every name of each school (sourcedId, identifier)
    school_names: tuple[str, ...] = ()  # as written, for messages
    platforms: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    approved: bool | None = None
    designed_for_children: bool | None = None
    bypass: bool | None = None
    activities: frozenset[str] | None = None
    in_school_hours: bool | None = None

    def static_failures(
        self,
        group: Group,
        treated_as: str,
        band: AgeBand | None,
        platform: Platform,
        approved: bool,
        activity: str | None,
    ) -> list[str]:
        """The conditions that fail regardless of school and clock (empty: a candidate)."""
        out: list[str] = []
        if self.who is not None and group not in self.who and treated_as not in self.who:
            as_ = f" (treated as {treated_as})" if group == "unknown" else ""
            out.append(f"who is {_words(self.who)}, not {group}{as_}")
        if self.bands is not None and (band is None or band not in self.bands):
            out.append(f"band is {_words(self.bands)}, not {band or 'none (staff)'}")
        if self.platforms is not None and platform.id not in self.platforms:
            out.append(f"platform is {_words(self.platforms)}, not {platform.id}")
        if self.categories is not None and platform.category not in self.categories:
            out.append(f"category is {_words(self.categories)}, not {platform.category}")
        if self.approved is not None and approved != self.approved:
            out.append(f"{platform.id} is {'' if approved else 'not '}approved")
        dfc = platform.designed_for_children
        if self.designed_for_children is not None and dfc != self.designed_for_children:
            out.append(f"{platform.id} is {'' if dfc else 'not '}designed for children")
        if self.bypass is not None and platform.is_bypass != self.bypass:
            out.append(f"{platform.id} is {'' if platform.is_bypass else 'not '}a bypass service")
        if self.activities is not None and activity not in self.activities:
            seen = activity or "not known yet (no request seen)"
            out.append(f"activity is {_words(self.activities)}, not {seen}")
        return out

    def dynamic_failures(self, schools: tuple[str, ...], in_hours: bool) -> list[str]:
        """The conditions on the person's school and the clock."""
        out: list[str] = []
        if self.schools is not None and not any(s in self.schools for s in schools):
            out.append(
                f"school is {', '.join(self.school_names)}, not {', '.join(schools) or 'none'}"
            )
        if self.in_school_hours is not None and in_hours != self.in_school_hours:
            out.append("outside school hours" if self.in_school_hours else "during school hours")
        return out

    def describe(self) -> str:
        parts: list[str] = []
        for name in ("who", "bands", "schools", "platforms", "categories", "activities"):
            value = self.school_names if name == "schools" else getattr(self, name)
            if value:
                parts.append(f"{name}={_words(value, ',')}")
        for name in ("approved", "designed_for_children", "bypass", "in_school_hours"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={'yes' if value else 'no'}")
        return " ".join(parts) or "everything"


def _words(values: Iterable[str], sep: str = " or ") -> str:
    vals = list(values)
    return sep.join(vals if isinstance(values, tuple) else sorted(vals))


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    match: Match
    decision: Decision
    line: int = 0

    def describe(self) -> str:
        d = self.decision
        extra = ""
        if d.headers or d.safe_search:
            bits = [f"{k}: {v}" for k, v in d.headers] + (["SafeSearch"] if d.safe_search else [])
            extra = f" ({', '.join(bits)})"
        incident = f", incident {d.incident}" if d.incident else ""
        return f"{self.id}: {self.match.describe()} → {d.action}{extra}{incident}"


# (schools condition, in_school_hours condition, decision) in rule order, default last
Candidate = tuple[frozenset[str] | None, bool | None, Decision]


class Policy:
    """A validated, compiled district policy. Immutable once built; caches are internal."""

    def __init__(
        self,
        *,
        district: str,
        contact: str,
        timezone: str,
        rules: tuple[Rule, ...],
        default: Rule,
        approved: frozenset[str] = frozenset(),
        schools: Mapping[str, SchoolHours] | None = None,
        dedupe_window: timedelta = timedelta(minutes=15),
        override_max_length: timedelta = timedelta(days=1),
        unknown_role: Literal["student", "staff"] = "student",
        unknown_band: AgeBand = "under13",
        missing_birthdate_band: AgeBand = "under13",
        catalogue: Catalogue | None = None,
        source: str = "",
        ask_teacher: str = "",
    ) -> None:
        self.district = district
        # the block page's words when a teacher's override could allow what was blocked
        self.ask_teacher = ask_teacher
        self.contact = contact
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.rules = rules
        self.default = default
        self.approved = approved
        self.schools: Mapping[str, SchoolHours] = dict(schools or {})
        self.dedupe_window = dedupe_window
        self.override_max_length = override_max_length
        self.unknown_role: Literal["student", "staff"] = unknown_role
        self.unknown_band: AgeBand = unknown_band
        self.missing_birthdate_band: AgeBand = missing_birthdate_band
        # the band an unknown person is matched with; staff have none
        self.unknown_band_key: AgeBand | None = unknown_band if unknown_role == "student" else None
        self.source = source
        self.table: dict[
            tuple[str, AgeBand | None, str, str | None], tuple[Platform, tuple[Candidate, ...]]
        ] = {}
        self.clock: dict[int, tuple[date, int, int, float]] = {}  # see local()
        # override id → (override, its allow decision), filled by monitor.rules.decide
        self.override_memo: dict[int, tuple[object, Decision]] = {}
        if catalogue is not None:
            self._compile(catalogue)

    # ---- compiled lookup

    def _compile(self, catalogue: Catalogue) -> None:
        """Fill the lookup table for every key the catalogue can produce."""
        keys: list[tuple[Group, AgeBand | None]] = [("student", b) for b in AGE_BANDS]
        keys += [("staff", None), ("unknown", self.unknown_band_key)]
        for platform in catalogue:
            for group, band in keys:
                for activity in (*ACTIVITIES, None):
                    self.candidates(group, band, platform, activity)

    def treated_as(self, group: Group) -> str:
        return self.unknown_role if group == "unknown" else group

    def candidates(
        self, group: Group, band: AgeBand | None, platform: Platform, activity: str | None
    ) -> tuple[Candidate, ...]:
        """The rules that can still match this key, in order, ending with the default."""
        key = (group, band, platform.id, activity)
        hit = self.table.get(key)
        # the identity check catches a platform object from a reloaded catalogue
        if hit is not None and hit[0] is platform:
            return hit[1]
        approved = platform.id in self.approved
        treated = self.treated_as(group)
        out: list[Candidate] = []
        for rule in self.rules:
            m = rule.match
            if m.static_failures(group, treated, band, platform, approved, activity):
                continue
            out.append((m.schools, m.in_school_hours, rule.decision))
            if m.schools is None and m.in_school_hours is None:
                break  # nothing after an unconditional match can be reached
        else:
            out.append((None, None, self.default.decision))
        cands = tuple(out)
        if len(self.table) < _TABLE_LIMIT:
            self.table[key] = (platform, cands)
        return cands

    # ---- local time

    def local(self, ts: float) -> tuple[date, int, int]:
        """Local (date, weekday, minute of day) at a POSIX timestamp, in the district's zone.

        Cached per 15-minute UTC bucket: UTC offsets are whole quarter hours, so no bucket
        straddles local midnight or a DST change; buckets where that does not hold (checked
        on fill) are computed every time.
        """
        bucket = int(ts // 900)
        hit = self.clock.get(bucket)
        if hit is None:
            hit = self._fill_clock(bucket)
        day, weekday, minute0, base = hit
        if minute0 < 0:
            dt = datetime.fromtimestamp(ts, self.tz)
            return dt.date(), dt.weekday(), dt.hour * 60 + dt.minute
        return day, weekday, minute0 + int((ts - base) // 60)

    def _fill_clock(self, bucket: int) -> tuple[date, int, int, float]:
        base = bucket * 900.0
        first = datetime.fromtimestamp(base, self.tz)
        last = datetime.fromtimestamp(base + 899.0, self.tz)
        ok = (
            first.utcoffset() == last.utcoffset()
            and first.date() == last.date()
            and first.second == 0
        )
        minute0 = first.hour * 60 + first.minute if ok else -1
        hit = (first.date(), first.weekday(), minute0, base)
        if len(self.clock) > 4096:
            self.clock.clear()
        self.clock[bucket] = hit
        return hit

    def in_school_hours(self, school: str | None, day: date, weekday: int, minute: int) -> bool:
        """Whether ``school`` (any of its names) is in session; no school or no hours: no."""
        hours = self.schools.get(school) if school is not None else None
        return hours is not None and hours.open_at(day, weekday, minute)

    def summary(self) -> list[str]:
        """Human-readable lines for ``monitor policy check``."""
        names = sorted({h.name for h in self.schools.values()})
        lines = [
            f"district: {self.district}",
            f"timezone: {self.timezone}",
            f"schools with hours: {', '.join(names) or 'none'}",
            f"approved platforms: {', '.join(sorted(self.approved)) or 'none'}",
            f"unknown people: treated as {self.unknown_role}"
            + (f", {self.unknown_band}" if self.unknown_role == "student" else ""),
            f"students without birthDate: {self.missing_birthdate_band}",
            f"incident dedupe window: {format_duration(self.dedupe_window)}; "
            f"longest override: {format_duration(self.override_max_length)}",
            f"{len(self.rules)} rules (first match wins):",
        ]
        lines += [f"  {i}. {r.describe()}" for i, r in enumerate(self.rules, 1)]
        lines.append(f"  default: {self.default.decision.action}")
        return lines
