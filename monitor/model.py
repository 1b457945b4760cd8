"""Shared value types of the core: people, schools, classes, devices, age bands, decisions.

Pure data, no I/O. Every module of the core speaks these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

AgeBand = Literal["under13", "teen", "adult"]
AGE_BANDS: tuple[AgeBand, ...] = ("under13", "teen", "adult")
Action = Literal["allow", "restrict", "block"]
ACTIONS: tuple[Action, ...] = ("allow", "restrict", "block")
Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")

# OneRoster 1.1/1.2 role vocabulary (roleType/role). Students are the only learners;
# every other role is staff, family or a proctor.
STUDENT_ROLES = frozenset({"student"})
STAFF_ROLES = frozenset(
    {
        "teacher",
        "administrator",
        "aide",
        "proctor",
        "districtAdministrator",
        "siteAdministrator",
        "systemAdministrator",
        "principal",
        "counselor",
        "teacherAide",
    }
)
FAMILY_ROLES = frozenset({"guardian", "parent", "relative"})
KNOWN_ROLES = STUDENT_ROLES | STAFF_ROLES | FAMILY_ROLES


def age_on(birth: date, day: date) -> int:
    """Whole years of age on ``day`` (a 29 February birthday counts on 1 March in other years)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def age_band_for(age: int) -> AgeBand:
    if age <= 12:
        return "under13"
    if age <= 17:
        return "teen"
    return "adult"


@dataclass(frozen=True, slots=True)
class School:
    sourced_id: str
    name: str
    identifier: str = ""  # the district's short code, used as the metric label
    type: str = "school"


@dataclass(frozen=True, slots=True)
class ClassSection:
    sourced_id: str
    title: str
    school: str  # school sourcedId
    teachers: tuple[str, ...] = ()  # person sourcedIds
    students: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Person:
    """One enabled user from the roster. Names are kept for the counselors' reveal only: they
    never reach logs or metrics."""

    sourced_id: str
    username: str
    role: str
    schools: tuple[str, ...] = ()  # school sourcedIds
    grades: tuple[str, ...] = ()
    birth_date: date | None = None
    given_name: str = ""
    family_name: str = ""
    classes: tuple[str, ...] = ()  # class sourcedIds
    email: str = ""  # for sign-in through the district's identity provider only

    @property
    def is_student(self) -> bool:
        return self.role in STUDENT_ROLES

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def school(self) -> str | None:
        return self.schools[0] if self.schools else None

    def age_on(self, day: date) -> int | None:
        return None if self.birth_date is None else age_on(self.birth_date, day)


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    mac: str | None = None  # lowercase aa:bb:cc:dd:ee:ff
    user: str | None = None  # person sourcedId
    school: str | None = None
    kind: str = ""  # chromebook, laptop, tablet, …


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is behind a request, and how we know."""

    person: Person | None
    device: Device | None
    source: str  # which identity source answered: proxy_auth, static, device, dhcp, unknown
    network: str | None = None  # name of a static address map entry (e.g. "guest")


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule_id: str
    reason: str  # the policy clause in plain words, shown on block pages and in incidents
    incident: Severity | None = None  # None: not worth a counselor's attention
    # header injections for restrict decisions, e.g. (("YouTube-Restrict", "Strict"),)
    headers: tuple[tuple[str, str], ...] = field(default=())
    safe_search: bool = False
