"""The roster as the rest of the monitor sees it, and the problems found reading one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Literal

from monitor.model import (
    AGE_BANDS,
    STUDENT_ROLES,
    ClassSection,
    Person,
    School,
    age_band_for,
    age_on,
)

ProblemKind = Literal["error", "warning", "skipped"]

# What a deviation from the OneRoster CSV binding was, for the one-line-per-kind summary of
# ``monitor roster check``. A problem without a topic is one of the long-standing ones (a bad
# value, an unknown reference, a structural error).
TOPICS: dict[str, str] = {
    "manifest": "manifest value missing: assumed from the files present",
    "column": "column name read as a OneRoster column (case or alternate name)",
    "boolean": "true/false written another way (TRUE, 1, 0)",
    "status": "status written another way (Active, TOBEDELETED)",
    "date": "date written another way (time part, M/D/YYYY, YYYYMMDD)",
    "ambiguous date": "date that reads two ways (D/M or M/D): left unknown",
    "delta": "delta export applied over the roster in force",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the roster. ``str()`` is ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str
    kind: ProblemKind = "error"
    topic: str = ""  # a key of TOPICS, or "" for everything else
    count: int = 1  # rows alike, reported once on the first one's line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return ": ".join(p for p in (where, self.field, self.message) if p)


class RosterError(ValueError):
    """The roster is rejected whole. ``problems`` lists every error found (and the warnings)."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        errors = [p for p in problems if p.kind == "error"]
        shown = "\n".join(f"  {p}" for p in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        plural = "s" if len(errors) != 1 else ""
        super().__init__(f"roster {source} rejected ({len(errors)} error{plural}):\n{shown}{more}")


@dataclass(frozen=True, slots=True)
class RosterCounts:
    """A summary of a roster on one day. Age bands count students only ('unknown': no birthDate)."""

    day: date
    people: int
    disabled: int
    by_role: dict[str, int]
    by_school: dict[str, int]  # school sourcedId → people who belong to it
    by_age_band: dict[str, int]


@dataclass(frozen=True, slots=True)
class Roster:
    """The enabled people of a district, their schools and classes."""

    people: dict[str, Person]  # by sourcedId
    by_username: dict[str, Person]  # lowercased username (and 1.2 userProfiles usernames)
    schools: dict[str, School]
    classes: dict[str, ClassSection]
    version: str  # short content hash of the files read
    source: str  # the directory
    oneroster_version: str = "1.1"
    disabled: int = 0  # users left out: enabledUser false or status tobedeleted

    def find_username(self, username: str) -> Person | None:
        return self.by_username.get(username.strip().lower())

    def counts(self, day: date) -> RosterCounts:
        by_role: Counter[str] = Counter()
        by_school: Counter[str] = Counter()
        bands: dict[str, int] = dict.fromkeys((*AGE_BANDS, "unknown"), 0)
        for person in self.people.values():
            by_role[person.role] += 1
            by_school.update(person.schools)
            if person.role in STUDENT_ROLES:
                birth = person.birth_date
                band = "unknown" if birth is None else age_band_for(age_on(birth, day))
                bands[band] += 1
        return RosterCounts(
            day=day,
            people=len(self.people),
            disabled=self.disabled,
            by_role=dict(sorted(by_role.items())),
            by_school=dict(sorted(by_school.items())),
            by_age_band=bands,
        )


@dataclass(frozen=True, slots=True)
class DeltaApplied:
    """One delta export applied to a roster: where it was, and what it changed."""

    source: str  # the export's directory
    newest: str  # its latest dateLastModified, as written ("" when it has none)
    changed: int  # records added or replaced
    deleted: int  # records marked tobedeleted
    stale: int  # changes older than the record in force, ignored


@dataclass(frozen=True, slots=True)
class RosterLoad:
    roster: Roster
    problems: list[Problem]
    deltas: tuple[DeltaApplied, ...] = ()  # applied by this load, in the order applied
    kept: str = ""  # the directory of the merged roster kept in the state directory, if any
