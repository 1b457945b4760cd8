"""The district policy file: who may use which platform, when, and what happens then.

The catalogue says what a host *is*; this file decides. It is YAML, validated whole on load:
unknown keys, unknown platforms, categories, schools, bands or activities, a bad time zone or
school hours that end before they start are each rejected as ``file:line: where: message``.

Schema (``tests/data/policy_example.yaml`` is a complete example)::

    version: 1
    district: Example Unified School District
    contact: "Technology office, help@example.org"  # shown on block pages
    timezone: America/New_York         # IANA name; ages and school hours use local time
    dedupe_window: 15m                 # one incident per person + platform + window (s m h d)
    override_max_length: 1d            # the longest teacher override that may be granted
    unknown: {role: student, band: under13}   # people we cannot identify (fail safe)
    missing_birthdate_band: under13    # students without a birthDate
    closed: [2025-11-27, {from: 2025-12-22, to: 2026-01-02}]   # district-wide closed days
    schools:                           # sourcedId or identifier of each school
      - id: hs
        hours:                         # local times; quote them ("08:00")
          - {days: [mon-fri], start: "08:00", end: "15:00"}
        closed: [2025-10-13]           # this school only
    approved: [youtube]                # approved educational platforms (catalogue ids)
    rules:                             # in order; the first match wins
      - id: teen-approved
        match:                         # every condition given must hold; lists mean "any of"
          who: student                 # student | staff | unknown
          bands: [teen, adult]         # under13 | teen | adult (students only)
          schools: [ms, hs]
          platforms: [youtube]         # catalogue ids
          categories: [video]          # catalogue categories
          approved: true               # in the approved list
          designed_for_children: false
          bypass: false                # a bypass service (VPN, proxy, DoH, Tor)
          activities: [view, stream]   # view post upload message login stream live embed
          in_school_hours: true
        action: restrict               # allow | restrict | block
        restrict: {youtube_restrict: strict, safe_search: true}   # restrict only
        reason: Plain words shown on block pages and in incidents.
        incident: low                  # optional: low | medium | high
    default:                           # catalogue platforms that no rule matches
      action: block
      reason: ...

Who is who: a person whose role is a student role is ``student``, a staff role is ``staff``;
anybody else (no person, or a guardian's account) is ``unknown`` and is *treated as*
``unknown.role`` with band ``unknown.band``: a rule naming ``who: student`` matches them
when ``unknown.role`` is ``student``, and ``who: unknown`` matches only them. Staff have no
age band, so a rule with ``bands`` never matches staff. A rule without ``activities`` also
matches a decision made before any request is seen (activity ``None``).

Rules are compiled at load into a table keyed by (group, band, platform id, activity) whose
values are the few candidate rules left to check against school and school hours.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)
from pydantic_core import PydanticCustomError

from monitor.model import AGE_BANDS, AgeBand, Decision, School, Severity
from monitor.platforms.catalogue import ACTIVITIES, CATEGORIES, Activity, Catalogue, Platform
from monitor.yamlfile import ConfigError, LineDict, LineList, line_of, load_yaml, validate

if TYPE_CHECKING:
    from monitor.model import Device
    from monitor.rules.decide import Explanation, Who
    from monitor.rules.overrides import Override, OverrideSet

Group = Literal["student", "staff", "unknown"]
GROUPS: tuple[Group, ...] = ("student", "staff", "unknown")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RESERVED_RULE_IDS = frozenset({"default", "not-in-catalogue"})

_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TIME_RE = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TABLE_LIMIT = 100_000  # keys made of caller-supplied activities must not grow without bound


# ---------------------------------------------------------------- value parsers (pydantic)


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message.replace("{", "(").replace("}", ")"))


def parse_duration(value: object) -> timedelta:
    """``"15m"``, ``"1h30m"``, ``"1d"`` → timedelta (units d, h, m, s; at least one second)."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    m = _DURATION_RE.match(text) if text else None
    if m is None or not any(m.groups()):
        raise _invalid(f"'{value}' is not a duration: write e.g. 90s, 15m, 1h30m or 1d")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    out = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if out <= timedelta(0):
        raise _invalid("a duration must be longer than zero")
    return out


def format_duration(td: timedelta) -> str:
    """The inverse of :func:`parse_duration` (``timedelta(minutes=90)`` → ``"1h30m"``)."""
    secs = int(td.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            out += f"{secs // size}{unit}"
            secs %= size
    return out or "0s"


def _parse_time(value: object) -> int:
    """``"08:00"`` → minutes since midnight. YAML 1.1 reads an unquoted ``15:00`` as the
    sexagesimal integer 900, which is already hours*60+minutes, so that is accepted too."""
    if isinstance(value, bool):
        raise _invalid('a time of day is written HH:MM, e.g. "08:00"')
    if isinstance(value, int):
        if 0 <= value <= 1440:
            return value
        raise _invalid(f'{value} is not a time of day: write it as "HH:MM" in quotes')
    m = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise _invalid(f'\'{value}\' is not a time of day: write it as "HH:MM", e.g. "08:00"')
    minutes = int(m.group(1)) * 60 + int(m.group(2))
    if minutes > 1440:
        raise _invalid(f"'{value}' is later than 24:00")
    return minutes


_DAY_NAMES = {
    **{d: i for i, d in enumerate(DAYS)},
    **{
        d: i
        for i, d in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}


def _parse_days(value: object) -> list[int]:
    """``[mon-fri, sat]`` or ``"mon-fri"`` → weekday numbers (Monday 0)."""
    items = value if isinstance(value, list) else [value]
    out: set[int] = set()
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else ""
        first, dash, last = text.partition("-")
        i, j = _DAY_NAMES.get(first), _DAY_NAMES.get(last if dash else first)
        if i is None or j is None:
            raise _invalid(
                f"'{item}' is not a day: use mon tue wed thu fri sat sun or e.g. mon-fri"
            )
        if j < i:
            raise _invalid(f"day range '{item}' runs backwards: write e.g. mon-fri")
        out.update(range(i, j + 1))
    if not out:
        raise _invalid("name at least one day")
    return sorted(out)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(
            f"unknown time zone '{value}': use an IANA name such as America/New_York"
        ) from None
    return value


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[int, BeforeValidator(_parse_time)]
Days = Annotated[list[int], BeforeValidator(_parse_days)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]


# a list of one or more values; a single value may be written without brackets
WhoNames = Annotated[
    Annotated[list[Literal["student", "staff", "unknown"]], Field(min_length=1)] | None,
    BeforeValidator(_listify),
]
BandNames = Annotated[
    Annotated[list[AgeBand], Field(min_length=1)] | None, BeforeValidator(_listify)
]
Names = Annotated[Annotated[list[str], Field(min_length=1)] | None, BeforeValidator(_listify)]
ActivityNames = Annotated[
    Annotated[list[Activity], Field(min_length=1)] | None, BeforeValidator(_listify)
]


# ---------------------------------------------------------------- file schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClosedRangeModel(_Strict):
    from_: date = Field(alias="from")
    to: date


ClosedEntry = date | ClosedRangeModel


class HoursModel(_Strict):
    days: Days
    start: TimeOfDay
    end: TimeOfDay


class SchoolModel(_Strict):
    id: Annotated[str, Field(min_length=1)]
    hours: list[HoursModel] = Field(default_factory=list)
    closed: list[ClosedEntry] = Field(default_factory=list)


class UnknownModel(_Strict):
    role: Literal["student", "staff"] = "student"
    band: AgeBand = "under13"


class MatchModel(_Strict):
    who: WhoNames = None
    bands: BandNames = None
    schools: Names = None
    platforms: Names = None
    categories: Names = None
    approved: StrictBool | None = None
    designed_for_children: StrictBool | None = None
    bypass: StrictBool | None = None
    activities: ActivityNames = None
    in_school_hours: StrictBool | None = None


class RestrictModel(_Strict):
    youtube_restrict: Literal["strict", "moderate"] | None = None
    safe_search: StrictBool = False


class RuleModel(_Strict):
    id: str
    match: MatchModel = Field(default_factory=MatchModel)
    action: Literal["allow", "restrict", "block"]
    restrict: RestrictModel | None = None
    reason: Annotated[str, Field(min_length=1)]
    incident: Severity | None = None


class DefaultModel(_Strict):
    action: Literal["allow", "restrict", "block"]
    restrict: RestrictModel | None = None
    reason: Annotated[str, Field(min_length=1)]
    incident: Severity | None = None


class PolicyFileModel(_Strict):
    version: Literal[1] = 1
    district: Annotated[str, Field(min_length=1)]
    contact: Annotated[str, Field(min_length=1)]
    timezone: TimeZoneName
    dedupe_window: Duration = timedelta(minutes=15)
    override_max_length: Duration = timedelta(days=1)
    unknown: UnknownModel = Field(default_factory=UnknownModel)
    missing_birthdate_band: AgeBand = "under13"
    closed: list[ClosedEntry] = Field(default_factory=list)
    schools: list[Any] = Field(default_factory=list)  # validated one by one: errors name the school
    approved: list[str] = Field(default_factory=list)
    rules: Annotated[list[Any], Field(min_length=1)]  # validated one by one, as above
    default: DefaultModel


# ---------------------------------------------------------------- compiled policy


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
    ) -> None:
        self.district = district
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
        self._override_decisions: dict[int, tuple[Override, Decision]] = {}
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

    # ---- overrides

    def override_decision(self, ov: Override) -> Decision:
        """The allow decision an active override produces; names the granter's role, not name."""
        from monitor.rules.overrides import role_words

        # keyed by object identity (hashing a dataclass of datetimes costs more than the rest)
        hit = self._override_decisions.get(id(ov))
        if hit is not None and hit[0] is ov:
            return hit[1]
        s, e = ov.starts.astimezone(self.tz), ov.ends.astimezone(self.tz)
        if s.date() == e.date():
            window = f"{s:%H:%M}–{e:%H:%M} on {s:%a %d %b %Y}"
        else:
            window = f"{s:%a %d %b %Y %H:%M} to {e:%a %d %b %Y %H:%M}"
        reason = (
            f"Allowed for a limited time by {role_words(ov.granted_by_role)}'s override "
            f"({window}, {self.timezone} time)."
        )
        decision = Decision("allow", f"override:{ov.id}", reason)
        if len(self._override_decisions) > 4096:
            self._override_decisions.clear()
        self._override_decisions[id(ov)] = (ov, decision)
        return decision

    # ---- conveniences for the proxy and the CLI (see monitor.rules.decide)

    def needs_request(
        self,
        who: Who,
        device: Device | None,
        platform: Platform | None,
        when: datetime | float,
        overrides: OverrideSet | None = None,
    ) -> bool:
        """Whether the decision depends on the request (its activity) or injects headers."""
        from monitor.rules.decide import needs_request

        return needs_request(self, who, device, platform, when, overrides)

    def explain(
        self,
        who: Who,
        device: Device | None,
        platform: Platform | None,
        activity: str | None,
        when: datetime | float,
        overrides: OverrideSet | None = None,
    ) -> Explanation:
        """Every rule considered, why each did not match, and the decision."""
        from monitor.rules.decide import explain

        return explain(self, who, device, platform, activity, when, overrides)

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


# ---------------------------------------------------------------- loading


def _decision(rule_id: str, m: RuleModel | DefaultModel) -> Decision:
    headers: tuple[tuple[str, str], ...] = ()
    safe = False
    if m.restrict is not None:
        if m.restrict.youtube_restrict:
            headers = (("YouTube-Restrict", m.restrict.youtube_restrict.capitalize()),)
        safe = m.restrict.safe_search
    return Decision(m.action, rule_id, m.reason.strip(), m.incident, headers, safe)


class _Loader:
    """Turns the validated file into a Policy, checking what pydantic cannot know."""

    def __init__(
        self,
        path: str,
        raw: LineDict,
        catalogue: Catalogue,
        known_schools: Iterable[str | School] | None,
    ) -> None:
        self.path = path
        self.raw = raw
        self.catalogue = catalogue
        # every name of a known school → all names of that school
        self.school_names: dict[str, frozenset[str]] | None = None
        if known_schools is not None:
            self.school_names = {}
            for s in known_schools:
                if isinstance(s, School):
                    names = frozenset(n for n in (s.sourced_id, s.identifier) if n)
                else:
                    names = frozenset({s})
                for n in names:
                    self.school_names[n] = self.school_names.get(n, frozenset()) | names

    def fail(self, loc: tuple[str | int, ...], where: str, message: str) -> ConfigError:
        return ConfigError(self.path, line_of(self.raw, loc), where, message)

    def _field(self, base: str, field: str) -> str:
        return ": ".join(p for p in (base, f"field '{field}'") if p)

    def check_platforms(
        self, ids: list[str], loc: tuple[str | int, ...], where: str, field: str
    ) -> None:
        for i, pid in enumerate(ids):
            if self.catalogue.get(pid) is None:
                hint = difflib.get_close_matches(pid, sorted(self.catalogue.ids), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise self.fail(
                    (*loc, i),
                    self._field(where, f"{field}[{i}]"),
                    f"unknown platform '{pid}': not in the catalogue{extra}",
                )

    def check_categories(self, cats: list[str], loc: tuple[str | int, ...], where: str) -> None:
        for i, c in enumerate(cats):
            if c not in CATEGORIES:
                raise self.fail(
                    (*loc, i),
                    self._field(where, f"match.categories[{i}]"),
                    f"unknown category '{c}': use one of {', '.join(CATEGORIES)}",
                )

    def resolve_school(
        self, name: str, loc: tuple[str | int, ...], where: str, field: str
    ) -> frozenset[str]:
        if self.school_names is None:
            return frozenset({name})
        names = self.school_names.get(name)
        if names is None:
            hint = difflib.get_close_matches(name, sorted(self.school_names), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.fail(loc, self._field(where, field), f"unknown school '{name}'{extra}")
        return names

    def closed_dates(
        self,
        entries: list[date | ClosedRangeModel],
        loc: tuple[str | int, ...],
        where: str,
        field: str,
    ) -> set[date]:
        out: set[date] = set()
        for i, e in enumerate(entries):
            if isinstance(e, ClosedRangeModel):
                if e.to < e.from_:
                    raise self.fail(
                        (*loc, i, "to"),
                        self._field(where, f"{field}[{i}].to"),
                        f"closed range ends ({e.to}) before it starts ({e.from_})",
                    )
                n = (e.to - e.from_).days
                if n > 366:
                    raise self.fail(
                        (*loc, i),
                        self._field(where, f"{field}[{i}]"),
                        "closed range longer than a year",
                    )
                out.update(e.from_ + timedelta(days=k) for k in range(n + 1))
            else:
                out.add(e)
        return out

    def school(
        self, entry: Any, i: int, district_closed: set[date]
    ) -> tuple[frozenset[str], SchoolHours]:
        loc: tuple[str | int, ...] = ("schools", i)
        where = (
            f"school '{entry['id']}'"
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            else f"schools[{i}]"
        )
        m = validate(SchoolModel, entry, self.path, where=where, base_loc=loc, root=self.raw)
        names = self.resolve_school(m.id, (*loc, "id"), where, "id")
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for j, h in enumerate(m.hours):
            if h.end <= h.start:
                raise self.fail(
                    (*loc, "hours", j, "end"),
                    self._field(where, f"hours[{j}].end"),
                    f"school hours end ({_hhmm(h.end)}) before they start ({_hhmm(h.start)})",
                )
            for d in h.days:
                for s, e in week[d]:
                    if h.start < e and s < h.end:
                        raise self.fail(
                            (*loc, "hours", j),
                            self._field(where, f"hours[{j}]"),
                            f"hours on {DAYS[d]} overlap {_hhmm(s)}–{_hhmm(e)}",
                        )
                week[d].append((h.start, h.end))
        closed = self.closed_dates(m.closed, (*loc, "closed"), where, "closed") | district_closed
        hours = SchoolHours(
            name=m.id,
            week=tuple(tuple(sorted(w)) for w in week),
            closed=frozenset(closed),
        )
        return names, hours

    def rule(self, entry: Any, i: int, seen: dict[str, int]) -> Rule:
        loc: tuple[str | int, ...] = ("rules", i)
        where = (
            f"rule '{entry['id']}'"
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            else f"rules[{i}]"
        )
        m = validate(RuleModel, entry, self.path, where=where, base_loc=loc, root=self.raw)
        if not _RULE_ID_RE.match(m.id):
            raise self.fail(
                (*loc, "id"),
                self._field(where, "id"),
                "rule ids are 1-64 characters of a-z, 0-9, '.', '-' and '_'",
            )
        if m.id in RESERVED_RULE_IDS:
            raise self.fail((*loc, "id"), self._field(where, "id"), f"'{m.id}' is reserved")
        if m.id in seen:
            raise self.fail(
                (*loc, "id"),
                self._field(where, "id"),
                f"duplicate rule id (first at line {seen[m.id]})",
            )
        seen[m.id] = line_of(self.raw, (*loc,)) or 0
        self.check_restrict(m, loc, where)
        mm = m.match
        mloc = (*loc, "match")
        if mm.platforms:
            self.check_platforms(mm.platforms, (*mloc, "platforms"), where, "match.platforms")
        if mm.categories:
            self.check_categories(mm.categories, (*mloc, "categories"), where)
        schools: frozenset[str] | None = None
        if mm.schools:
            schools = frozenset()
            for j, name in enumerate(mm.schools):
                schools |= self.resolve_school(
                    name, (*mloc, "schools", j), where, f"match.schools[{j}]"
                )
        match = Match(
            who=frozenset(mm.who) if mm.who else None,
            bands=frozenset(mm.bands) if mm.bands else None,
            schools=schools,
            school_names=tuple(mm.schools or ()),
            platforms=frozenset(mm.platforms) if mm.platforms else None,
            categories=frozenset(mm.categories) if mm.categories else None,
            approved=mm.approved,
            designed_for_children=mm.designed_for_children,
            bypass=mm.bypass,
            activities=frozenset(mm.activities) if mm.activities else None,
            in_school_hours=mm.in_school_hours,
        )
        return Rule(m.id, match, _decision(m.id, m), line_of(self.raw, loc) or 0)

    def check_restrict(
        self, m: RuleModel | DefaultModel, loc: tuple[str | int, ...], where: str
    ) -> None:
        if m.action == "restrict":
            if m.restrict is None or (
                m.restrict.youtube_restrict is None and not m.restrict.safe_search
            ):
                raise self.fail(
                    (*loc, "restrict") if m.restrict is not None else (*loc, "action"),
                    self._field(where, "restrict"),
                    "a restrict rule needs youtube_restrict and/or safe_search: true",
                )
        elif m.restrict is not None:
            raise self.fail(
                (*loc, "restrict"),
                self._field(where, "restrict"),
                f"only restrict rules inject headers, this one is {m.action}",
            )

    def build(self) -> Policy:
        top = validate(PolicyFileModel, self.raw, self.path)
        if top.closed:
            district_closed = self.closed_dates(top.closed, ("closed",), "", "closed")
        else:
            district_closed = set()
        schools: dict[str, SchoolHours] = {}
        school_seen: dict[str, str] = {}
        for i, entry in enumerate(top.schools):
            names, hours = self.school(entry, i, district_closed)
            for n in names:
                if n in school_seen:
                    raise self.fail(
                        ("schools", i, "id"),
                        self._field(f"school '{hours.name}'", "id"),
                        f"school listed twice (also as '{school_seen[n]}')",
                    )
            for n in names:
                school_seen[n] = hours.name
                schools[n] = hours
        self.check_platforms(top.approved, ("approved",), "", "approved")
        approved = frozenset(top.approved)
        seen: dict[str, int] = {}
        rules = tuple(self.rule(e, i, seen) for i, e in enumerate(top.rules))
        self.check_restrict(top.default, ("default",), "default")
        default = Rule(
            "default",
            Match(),
            _decision("default", top.default),
            line_of(self.raw, ("default",)) or 0,
        )
        return Policy(
            district=top.district.strip(),
            contact=top.contact.strip(),
            timezone=top.timezone,
            rules=rules,
            default=default,
            approved=approved,
            schools=schools,
            dedupe_window=top.dedupe_window,
            override_max_length=top.override_max_length,
            unknown_role=top.unknown.role,
            unknown_band=top.unknown.band,
            missing_birthdate_band=top.missing_birthdate_band,
            catalogue=self.catalogue,
            source=self.path,
        )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load_policy(
    path: str | Path,
    catalogue: Catalogue,
    known_schools: Iterable[str | School] | None = None,
    *,
    text: str | None = None,
) -> Policy:
    """Read, validate and compile a policy file; raise ConfigError on the first problem.

    ``known_schools``: when given (sourcedIds and identifiers, or School objects), every school
    the policy names must be one of them; School objects also let a policy written with
    identifiers (``hs``) match people whose schools are sourcedIds.
    """
    spath = str(path)
    raw = load_yaml(spath, text)
    if not isinstance(raw, LineDict):
        line = raw.line if isinstance(raw, LineList) else 1
        raise ConfigError(spath, line, "", "the policy must be a YAML mapping")
    return _Loader(spath, raw, catalogue, known_schools).build()
