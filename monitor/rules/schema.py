"""The policy file's schema: pydantic models and value parsers for ``policy.yaml``.

The catalogue says what a host *is*; the policy file decides. It is YAML, validated whole on load:
unknown keys, unknown platforms, categories, schools, bands or activities, a bad time zone or
school hours that end before they start are each rejected as ``file:line: where: message``
(:mod:`monitor.rules.loader` checks what the models alone cannot know).

Schema (``tests/data/policy_example.yaml`` is a complete example)::

    version: 1
    district: Example Unified School District
    contact: "Technology office, help@example.org"  # shown on block pages
    timezone: America/New_York         # IANA name; ages and school hours use local time
    dedupe_window: 15m                 # one incident per person + platform + window (s m h d)
    override_max_length: 1d            # the longest teacher override that may be granted
    block_page:                        # optional: words on the block page
      ask_teacher: "Need it for class? Ask your teacher: they can open it for a while."
                                       # shown when a teacher's override could allow it
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

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal
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

from monitor.model import AgeBand, Severity
from monitor.platforms.catalogue import Activity

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TIME_RE = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

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


ASK_TEACHER = (
    "If you need this for schoolwork, ask your teacher: they can open it for your class for "
    "a while."
)


class BlockPageModel(_Strict):
    ask_teacher: Annotated[str, Field(min_length=1, max_length=500)] = ASK_TEACHER


class PolicyFileModel(_Strict):
    version: Literal[1] = 1
    district: Annotated[str, Field(min_length=1)]
    contact: Annotated[str, Field(min_length=1)]
    timezone: TimeZoneName
    dedupe_window: Duration = timedelta(minutes=15)
    override_max_length: Duration = timedelta(days=1)
    block_page: BlockPageModel = Field(default_factory=BlockPageModel)
    unknown: UnknownModel = Field(default_factory=UnknownModel)
    missing_birthdate_band: AgeBand = "under13"
    closed: list[ClosedEntry] = Field(default_factory=list)
    schools: list[Any] = Field(default_factory=list)  # validated one by one: errors name the school
    approved: list[str] = Field(default_factory=list)
    rules: Annotated[list[Any], Field(min_length=1)]  # validated one by one, as above
    default: DefaultModel
