#!/usr/bin/env python3
"""Write the example district: a synthetic OneRoster 1.2 roster, devices, DHCP leases, the
district policy, the district configuration file and DEMO.md.

    python examples/generate_district.py                       # into examples/district
    python examples/generate_district.py --out /tmp/d --today 2026-11-28 --seed 1

Everything is fake and obviously so: given names from a short list joined to made-up family
names ("Avery Testperson"), domains ``district.example`` and ``example.test``, MAC addresses
from a locally administered range (``02:d1:57:…``), DHCP addresses in 10.0.0.0/8 and demo
addresses on loopback.

The output is a pure function of the seed, the school year of ``--today`` and ``--today``
itself: birthdates are fixed (seeded) within a school year, except those of the two students
on either side of their 13th birthday, which are set relative to ``--today``. Regenerating on
another day of the same school year therefore changes only those two demographics rows,
DEMO.md and GENERATED_ON.

Ages and grades: a school year runs 1 August – 31 July, and a student is in grade g (K = 0)
when aged g+5 on 1 August (an Aug 1 kindergarten cut-off), so every student is g+5 or g+6 on
any day of the year. The demo students whose age must not change during the year are born on
1 August.

Standard library and the ``monitor`` package only (the policy is validated and DEMO.md's
decisions are computed with ``monitor.rules``).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.model import Device, Identity, Person, School, age_on
from monitor.platforms import catalogue as catalogue_mod
from monitor.rules.decide import decide
from monitor.rules.loader import load_policy
from monitor.rules.policy import Policy

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "examples" / "district"
DEFAULT_STATE_DIR = "../../var/example-district"  # relative to examples/district
TIMEZONE = "America/New_York"
DISTRICT_NAME = "Example Unified School District"
STAFF_DOMAIN = "district.example"
LMS_DOMAIN = "lms.example.test"

# Short fixed lists. Given names are common-sounding but generic; every family name is
# invented, so no combination can be a real person's full name.
GIVEN_NAMES = (
    "Avery", "Jordan", "Riley", "Casey", "Morgan", "Quinn", "Rowan", "Skyler", "Emerson",
    "Finley", "Harper", "Hayden", "Jesse", "Kai", "Logan", "Parker", "Reese", "Sage", "Dakota",
    "Ellis", "Frankie", "Jamie", "Kendall", "Lane", "Marlowe", "Nico", "Oakley", "Peyton",
    "River", "Sawyer", "Shiloh", "Tatum", "Arden", "Blair", "Cameron", "Devon", "Eden", "Remy",
)  # fmt: skip
FAMILY_NAMES = (
    "Testperson", "Sampleton", "Exampleby", "Placeholder", "Mockwell", "Fakerson",
    "Dummyfield", "Fixtureton", "Stubbington", "Demoford", "Testwood", "Samplebrook",
    "Mockridge", "Placeworth", "Fauxley", "Pretendale", "Notreal", "Fictionson", "Madeupton",
    "Specimenson",
)  # fmt: skip

GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
DISTRICT_ID = "org-district"


@dataclass(frozen=True)
class SchoolSpec:
    sourced_id: str
    name: str
    identifier: str
    grades: range  # grade numbers, K = 0
    subnet: int  # second octet of the school's 10.x.0.0/16 student network


SCHOOLS = (
    SchoolSpec("sch-101", "Example Elementary School", "es", range(0, 6), 10),
    SchoolSpec("sch-201", "Example Middle School", "ms", range(6, 9), 20),
    SchoolSpec("sch-301", "Example High School", "hs", range(9, 13), 30),
)
STAFF_SUBNET = 40
GUEST_SUBNET = 99

# subject key → (course title per grade, subject)
Subjects = dict[str, tuple[dict[int, str], str]]
MS_SUBJECTS: Subjects = {
    key: ({g: f"{subject} {g}" for g in range(6, 9)}, subject)
    for key, subject in (
        ("math", "Mathematics"),
        ("ela", "English Language Arts"),
        ("sci", "Science"),
        ("soc", "Social Studies"),
        ("art", "Art"),
    )
}
HS_SUBJECTS: Subjects = {
    "math": ({9: "Algebra I", 10: "Geometry", 11: "Algebra II", 12: "Precalculus"}, "Mathematics"),
    "eng": ({9: "English 9", 10: "English 10", 11: "English 11", 12: "English 12"}, "English"),
    "sci": (
        {9: "Biology", 10: "Chemistry", 11: "Physics", 12: "Environmental Science"},
        "Science",
    ),
    "soc": (
        {9: "World Geography", 10: "World History", 11: "U.S. History", 12: "Government"},
        "Social Studies",
    ),
    "hpe": (
        {g: f"Health and Physical Education {g}" for g in range(9, 13)},
        "Health and Physical Education",
    ),
}
TEACHERS_PER_SUBJECT = {"ms": 3, "hs": 4}
ES_SPECIALISTS = 3  # art, music, PE: teachers with no homeroom
ES_CLASS_SIZE = 25
SECTION_SIZE = 28

# (role, school identifier or "" for the district office, how many)
OTHER_STAFF = (
    ("districtAdministrator", "", 1),
    ("systemAdministrator", "", 1),
    ("principal", "es", 1),
    ("principal", "ms", 1),
    ("principal", "hs", 1),
    ("counselor", "es", 1),
    ("counselor", "ms", 1),
    ("counselor", "hs", 2),
    ("aide", "es", 4),
)
NO_LAPTOP_ROLES = frozenset({"aide"})

# The demo people, by key: (address, mapped by "device" or "person", what to say).
DEMO_ADDRESSES = (
    ("127.0.0.11", "age11", "device"),
    ("127.0.0.12", "turns13", "person"),
    ("127.0.0.13", "turned13", "person"),
    ("127.0.0.15", "age15", "device"),
    ("127.0.0.16", "nobirth", "person"),
    ("127.0.0.17", "age17", "device"),
    ("127.0.0.50", "teacher", "device"),
    ("127.0.0.51", "counselor", "person"),
    ("127.0.0.99", "spare", "device"),
)
DEMO_NOTES = {
    "age11": "demo: an 11-year-old's Chromebook (grade 6, ms)",
    "turns13": "demo: a student who turns 13 tomorrow (grade 7, ms)",
    "turned13": "demo: a student who turned 13 yesterday (grade 7, ms)",
    "age15": "demo: a 15-year-old's Chromebook (grade 10, hs)",
    "nobirth": "demo: a student with no birthDate (grade 9, hs)",
    "age17": "demo: a 17-year-old's Chromebook (grade 12, hs)",
    "teacher": "demo: a teacher's laptop (hs)",
    "counselor": "demo: a counselor (hs)",
    "spare": "demo: a spare Chromebook with no user (ms)",
}
DEMO_PLATFORMS = (("tiktok", "TikTok"), ("youtube", "YouTube"), ("youtube-kids", "YouTube Kids"))


# ---------------------------------------------------------------- the district in memory


@dataclass
class FakePerson:
    sourced_id: str
    role: str
    school: str  # an org sourcedId (the district org for district staff)
    given: str
    family: str
    grade: int | None = None  # students only, K = 0
    birth: date | None = None
    sex: str = ""
    identifier: str = ""
    username: str = ""
    enabled: bool = True
    demographics: str = "row"  # row | blank (a row with no birthDate) | none (no row)
    classes: list[str] = field(default_factory=list)

    @property
    def grade_code(self) -> str:
        return "" if self.grade is None else GRADES[self.grade]


@dataclass
class FakeClass:
    sourced_id: str
    title: str
    school: str
    course: str
    grade: int
    subject: str
    code: str
    period: str
    room: str
    teacher: str = ""
    students: list[str] = field(default_factory=list)


@dataclass
class FakeDevice:
    device_id: str
    mac: str
    user: str  # sourcedId, "" for none
    school: str
    kind: str


@dataclass
class District:
    today: date
    year: int  # the school year starts on 1 August of this year
    people: list[FakePerson]
    classes: list[FakeClass]
    courses: dict[str, tuple[str, str, int, str]]  # id → (title, school, grade, subject)
    devices: list[FakeDevice]
    demo: dict[str, FakePerson | FakeDevice]  # key of DEMO_ADDRESSES → person or device
    leases: dict[str, list[tuple[str, str, str]]]  # format → (address, mac, hostname)
    stale_leases: dict[str, list[tuple[str, str, str]]]  # released or expired records


def school_year_of(day: date) -> int:
    return day.year if (day.month, day.day) >= (8, 1) else day.year - 1


def _birthday(year: int, month: int, day: int) -> date:
    """A date, with 29 February moved to 1 March in other years (as ``age_on`` counts it)."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, 3, 1)


def _names(rng: random.Random) -> tuple[str, str]:
    return rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)


def _mac(prefix: int, n: int) -> str:
    """A locally administered unicast MAC address: 02:PP:57:nn:nn:nn."""
    return f"02:{prefix:02x}:57:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"


def _address(subnet: int, i: int) -> str:
    return f"10.{subnet}.{1 + i // 240}.{10 + i % 240}"  # hosts .10-.249


def build(today: date, seed: int) -> District:
    """The whole district as data. The random stream does not depend on ``today`` within a
    school year; the 12/13 edge students' birthdates are set afterwards."""
    rng = random.Random(seed)
    year = school_year_of(today)
    by_ident = {s.identifier: s for s in SCHOOLS}
    school_of_grade = {g: s for s in SCHOOLS for g in s.grades}
    people: list[FakePerson] = []

    # -- students: a cohort of 70-85 per grade
    students_by_grade: dict[int, list[FakePerson]] = {}
    n = 0
    for grade in range(13):
        cohort_end = date(year - 5 - grade, 8, 1)  # aged grade+5 on 1 August of the year
        cohort_start = date(year - 6 - grade, 8, 2)
        span = (cohort_end - cohort_start).days + 1
        cohort = []
        for _ in range(70 + rng.randrange(16)):
            n += 1
            given, family = _names(rng)
            person = FakePerson(
                sourced_id=f"stu-{n:05d}",
                role="student",
                school=school_of_grade[grade].sourced_id,
                given=given,
                family=family,
                grade=grade,
                birth=cohort_start + timedelta(days=rng.randrange(span)),
                sex=rng.choice(("female", "male", "female", "male", "unspecified")),
                identifier=f"S{100000 + n}",
            )
            cohort.append(person)
            people.append(person)
        students_by_grade[grade] = cohort

    # -- teachers and classes
    classes: list[FakeClass] = []
    courses: dict[str, tuple[str, str, int, str]] = {}
    teachers: list[FakePerson] = []

    def teacher(school: SchoolSpec) -> FakePerson:
        given, family = _names(rng)
        t = FakePerson(
            sourced_id=f"tch-{len(teachers) + 1:04d}",
            role="teacher",
            school=school.sourced_id,
            given=given,
            family=family,
            identifier=f"E{20000 + len(teachers) + 1}",
        )
        teachers.append(t)
        people.append(t)
        return t

    es = by_ident["es"]
    for grade in es.grades:
        pupils = list(students_by_grade[grade])
        rng.shuffle(pupils)
        rooms = -(-len(pupils) // ES_CLASS_SIZE)
        label = "Kindergarten" if grade == 0 else f"Grade {grade}"
        course = f"crs-es-hr-{GRADES[grade].lower()}"
        courses[course] = (f"{label} Homeroom", es.sourced_id, grade, "Homeroom")
        for r in range(rooms):
            letter = "ABCDEFGH"[r]
            c = FakeClass(
                sourced_id=f"cls-es-{GRADES[grade].lower()}-{letter.lower()}",
                title=f"{label} Homeroom {letter}",
                school=es.sourced_id,
                course=course,
                grade=grade,
                subject="Homeroom",
                code=f"HR-{GRADES[grade]}{letter}",
                period="1",
                room=f"Room {100 + grade * 10 + r}",
            )
            c.teacher = teacher(es).sourced_id
            c.students = [p.sourced_id for p in pupils[r::rooms]]
            classes.append(c)
    for _ in range(ES_SPECIALISTS):
        teacher(es)

    for ident, subjects in (("ms", MS_SUBJECTS), ("hs", HS_SUBJECTS)):
        school = by_ident[ident]
        pools = {
            key: [teacher(school) for _ in range(TEACHERS_PER_SUBJECT[ident])] for key in subjects
        }
        turn = dict.fromkeys(subjects, 0)
        for grade in school.grades:
            for period, (key, (titles, subject)) in enumerate(subjects.items(), 1):
                title = titles[grade]
                course = f"crs-{ident}-{key}-{GRADES[grade]}"
                courses[course] = (title, school.sourced_id, grade, subject)
                pupils = list(students_by_grade[grade])
                rng.shuffle(pupils)
                sections = -(-len(pupils) // SECTION_SIZE)
                for s in range(sections):
                    pool = pools[key]
                    t = pool[turn[key] % len(pool)]
                    turn[key] += 1
                    c = FakeClass(
                        sourced_id=f"cls-{ident}-{key}-{GRADES[grade]}-{s + 1}",
                        title=f"{title} (section {s + 1})",
                        school=school.sourced_id,
                        course=course,
                        grade=grade,
                        subject=subject,
                        code=f"{key.upper()}{GRADES[grade]}-{s + 1:02d}",
                        period=str((period + s) % 7 + 1),
                        room=f"Room {school.subnet * 10 + len(classes) % 40}",
                        teacher=t.sourced_id,
                        students=[p.sourced_id for p in pupils[s::sections]],
                    )
                    classes.append(c)

    # -- other staff
    others: list[FakePerson] = []
    for role, ident, count in OTHER_STAFF:
        for _ in range(count):
            given, family = _names(rng)
            p = FakePerson(
                sourced_id=f"stf-{len(others) + 1:04d}",
                role=role,
                school=by_ident[ident].sourced_id if ident else DISTRICT_ID,
                given=given,
                family=family,
                identifier=f"E{30000 + len(others) + 1}",
            )
            others.append(p)
            people.append(p)

    # -- a couple of disabled accounts: a withdrawn student, a teacher on leave
    given, family = _names(rng)
    n += 1
    people.append(
        FakePerson(
            f"stu-{n:05d}",
            "student",
            es.sourced_id,
            given,
            family,
            grade=4,
            birth=date(year - 9, 3, 14),  # grade 4: aged 9 on 1 August
            sex="unspecified",
            identifier=f"S{100000 + n}",
            enabled=False,
        )
    )
    given, family = _names(rng)
    people.append(
        FakePerson(
            f"tch-{len(teachers) + 1:04d}",
            "teacher",
            by_ident["ms"].sourced_id,
            given,
            family,
            identifier=f"E{20000 + len(teachers) + 1}",
            enabled=False,
        )
    )

    by_sid = {p.sourced_id: p for p in people}
    for c in classes:
        by_sid[c.teacher].classes.append(c.sourced_id)
        for sid in c.students:
            by_sid[sid].classes.append(c.sourced_id)

    # -- usernames: first.last (+ graduation year for students), numbered when taken
    taken: set[str] = set()
    for p in people:
        base = f"{p.given}.{p.family}".lower()
        if p.grade is not None:
            base += f"{(year + 1 + 12 - p.grade) % 100:02d}"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name)
        p.username = name

    # -- demo people: fixed positions in their cohorts; only the 12/13 pair depends on today
    def pick(grade: int, i: int) -> FakePerson:
        return students_by_grade[grade][i]

    hs_id = by_ident["hs"].sourced_id
    who: dict[str, FakePerson] = {
        "age11": pick(6, 3),
        "turns13": pick(7, 5),
        "turned13": pick(7, 8),
        "age15": pick(10, 2),
        "nobirth": pick(9, 4),
        "age17": pick(12, 6),
        "teacher": [t for t in teachers if t.school == hs_id][8],
        "counselor": next(p for p in others if p.role == "counselor" and p.school == hs_id),
    }
    for key, age in (("age11", 11), ("age15", 15), ("age17", 17)):
        who[key].birth = date(year - age, 8, 1)  # that age for the whole school year
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    who["turns13"].birth = _birthday(tomorrow.year - 13, tomorrow.month, tomorrow.day)
    who["turned13"].birth = _birthday(yesterday.year - 13, yesterday.month, yesterday.day)
    who["nobirth"].birth, who["nobirth"].demographics = None, "blank"
    other_nobirth = pick(4, 7)  # and one with no demographics row at all
    other_nobirth.birth, other_nobirth.demographics = None, "none"

    # -- devices: a Chromebook per student in grades 3-12, laptops for staff, spares, carts
    devices: list[FakeDevice] = []

    def device(prefix: str, user: str, school: str, kind: str) -> FakeDevice:
        d = FakeDevice(
            f"{prefix}-{len(devices) + 1:05d}", _mac(0xD1, len(devices) + 1), user, school, kind
        )
        devices.append(d)
        return d

    device_of: dict[str, FakeDevice] = {}
    for p in people:
        if not p.enabled:
            continue
        if p.role == "student" and p.grade is not None and p.grade >= 3:
            device_of[p.sourced_id] = device("cb", p.sourced_id, p.school, "chromebook")
        elif p.role != "student" and p.role not in NO_LAPTOP_ROLES:
            org = p.school if p.school != DISTRICT_ID else ""
            device_of[p.sourced_id] = device("lt", p.sourced_id, org, "laptop")
    spares: dict[str, list[FakeDevice]] = {}
    for spec in SCHOOLS:
        spares[spec.identifier] = [
            device("cb", "", spec.sourced_id, "chromebook") for _ in range(8)
        ]
    for _ in range(12):  # K-2 tablet carts: shared, no user
        device("tb", "", es.sourced_id, "tablet")
    demo: dict[str, FakePerson | FakeDevice] = dict(who)
    for _, key, how in DEMO_ADDRESSES:
        if how == "device" and key in who:
            demo[key] = device_of[who[key].sourced_id]
    demo["spare"] = spares["ms"][0]

    # -- leases: most devices, on their school's network; staff on the staff network
    subnet_of = {s.sourced_id: s.subnet for s in SCHOOLS}
    fmt_of = {10: "dhcpd", STAFF_SUBNET: "dhcpd", 20: "dnsmasq", 30: "kea"}
    leases: dict[str, list[tuple[str, str, str]]] = {"dhcpd": [], "dnsmasq": [], "kea": []}
    used: dict[int, int] = {}
    for d in devices:
        # a few devices are off or at home: no lease; half the spares sit in a cupboard
        if rng.random() >= (0.95 if d.user else 0.5):
            continue
        subnet = STAFF_SUBNET if d.kind == "laptop" else subnet_of[d.school]
        i = used.get(subnet, 0)
        used[subnet] = i + 1
        leases[fmt_of[subnet]].append((_address(subnet, i), d.mac, d.device_id))
    for i in range(14):  # visitors' phones on the guest Wi-Fi: not district devices
        leases["dnsmasq"].append((_address(GUEST_SUBNET, i), _mac(0x9E, i + 1), f"guest-{i + 1}"))
    stale: dict[str, list[tuple[str, str, str]]] = {"dhcpd": [], "dnsmasq": [], "kea": []}
    for fmt, subnet in (("dhcpd", 10), ("kea", 30)):
        for i in range(3):  # released addresses: recorded, no longer active
            stale[fmt].append((_address(subnet, used[subnet] + i), _mac(0xAE, subnet * 10 + i), ""))

    return District(today, year, people, classes, courses, devices, demo, leases, stale)


# ---------------------------------------------------------------- writers


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


COMMON = ["sourcedId", "status", "dateLastModified"]
HEADERS = {
    "orgs.csv": COMMON + ["name", "type", "identifier", "parentSourcedId"],
    "academicSessions.csv": COMMON
    + ["title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"],
    "courses.csv": COMMON
    + ["schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects"]
    + ["subjectCodes", "resourceSourcedIds"],
    "classes.csv": COMMON
    + ["title", "grades", "courseSourcedId", "classCode", "classType", "location"]
    + ["schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"],
    "users.csv": COMMON
    + ["enabledUser", "username", "userIds", "givenName", "familyName", "middleName"]
    + ["identifier", "email", "sms", "phone", "agentSourcedIds", "grades", "password"]
    + ["userMasterIdentifier", "resourceSourcedIds", "preferredGivenName"]
    + ["preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns"],
    "roles.csv": COMMON
    + ["userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId"]
    + ["userProfileSourcedId"],
    "userProfiles.csv": COMMON
    + ["userSourcedId", "profileType", "vendorId", "applicationId", "description"]
    + ["credentialType", "username", "password"],
    "demographics.csv": COMMON
    + ["birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican"]
    + ["nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces"]
    + ["hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation"]
    + ["cityOfBirth", "publicSchoolResidenceStatus"],
    "enrollments.csv": COMMON
    + ["classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary"]
    + ["beginDate", "endDate"],
}
MANIFEST_FILES = (
    "academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
    "demographics", "enrollments", "lineItems", "orgs", "resources", "results", "roles",
    "userProfiles", "users",
)  # fmt: skip


def roster_files(d: District) -> dict[str, str]:
    """OneRoster 1.2 bulk CSV files, by name."""
    y = d.year
    modified = f"{y}-07-15T12:00:00.000Z"
    first_day, last_day = school_days(y)
    year_id = f"ay-{y}"
    tables: dict[str, list[list[str]]] = {}

    def row(file: str, **values: str) -> list[str]:
        values.setdefault("dateLastModified", modified)
        values.setdefault("status", "active")
        return [values.get(col, "") for col in HEADERS[file]]

    tables["orgs.csv"] = [
        row("orgs.csv", sourcedId=DISTRICT_ID, name=DISTRICT_NAME, type="district",
            identifier="eusd"),
        *(
            row("orgs.csv", sourcedId=s.sourced_id, name=s.name, type="school",
                identifier=s.identifier, parentSourcedId=DISTRICT_ID)
            for s in SCHOOLS
        ),
    ]  # fmt: skip
    winter = date(y + 1, 1, 15)
    tables["academicSessions.csv"] = [
        row("academicSessions.csv", sourcedId=year_id, title=f"{y}-{y + 1}", type="schoolYear",
            startDate=first_day.isoformat(), endDate=last_day.isoformat(),
            schoolYear=str(y + 1)),
        row("academicSessions.csv", sourcedId=f"{year_id}-s1", title=f"Fall {y}",
            type="semester", startDate=first_day.isoformat(),
            endDate=(winter - timedelta(days=1)).isoformat(), parentSourcedId=year_id,
            schoolYear=str(y + 1)),
        row("academicSessions.csv", sourcedId=f"{year_id}-s2", title=f"Spring {y + 1}",
            type="semester", startDate=winter.isoformat(), endDate=last_day.isoformat(),
            parentSourcedId=year_id, schoolYear=str(y + 1)),
    ]  # fmt: skip
    tables["courses.csv"] = [
        row("courses.csv", sourcedId=cid, schoolYearSourcedId=year_id, title=title,
            courseCode=cid.removeprefix("crs-").upper(), grades=GRADES[grade], orgSourcedId=school,
            subjects=subject)
        for cid, (title, school, grade, subject) in d.courses.items()
    ]  # fmt: skip
    tables["classes.csv"] = [
        row("classes.csv", sourcedId=c.sourced_id, title=c.title, grades=GRADES[c.grade],
            courseSourcedId=c.course, classCode=c.code,
            classType="homeroom" if c.subject == "Homeroom" else "scheduled", location=c.room,
            schoolSourcedId=c.school, termSourcedIds=year_id, subjects=c.subject,
            periods=c.period)
        for c in d.classes
    ]  # fmt: skip
    users, roles, profiles, demographics = [], [], [], []
    for p in d.people:
        users.append(
            row("users.csv", sourcedId=p.sourced_id, enabledUser="true" if p.enabled else "false",
                username=p.username, givenName=p.given, familyName=p.family,
                identifier=p.identifier, email=f"{p.username}@{STAFF_DOMAIN}",
                grades=p.grade_code, primaryOrgSourcedId=p.school)
        )  # fmt: skip
        roles.append(
            row("roles.csv", sourcedId=f"role-{p.sourced_id}", userSourcedId=p.sourced_id,
                roleType="primary", role=p.role, beginDate=first_day.isoformat(),
                orgSourcedId=p.school)
        )  # fmt: skip
        if p.role == "student" and p.grade is not None and p.grade >= 3 and p.enabled:
            profiles.append(
                row("userProfiles.csv", sourcedId=f"prof-{p.sourced_id}",
                    userSourcedId=p.sourced_id, profileType="lms", vendorId="example-lms",
                    description="Learning management system", credentialType="username",
                    username=f"{p.username}@{LMS_DOMAIN}")
            )  # fmt: skip
        if p.role == "student" and p.demographics != "none":
            demographics.append(
                row("demographics.csv", sourcedId=p.sourced_id,
                    birthDate=p.birth.isoformat() if p.birth else "", sex=p.sex)
            )  # fmt: skip
    tables["users.csv"] = users
    tables["roles.csv"] = roles
    tables["userProfiles.csv"] = profiles
    tables["demographics.csv"] = demographics
    enrollments = []
    for c in d.classes:
        enrollments.append(
            row("enrollments.csv", sourcedId=f"enr-{c.sourced_id}-{c.teacher}",
                classSourcedId=c.sourced_id, schoolSourcedId=c.school, userSourcedId=c.teacher,
                role="teacher", primary="true", beginDate=first_day.isoformat())
        )  # fmt: skip
        for sid in c.students:
            enrollments.append(
                row("enrollments.csv", sourcedId=f"enr-{c.sourced_id}-{sid}",
                    classSourcedId=c.sourced_id, schoolSourcedId=c.school, userSourcedId=sid,
                    role="student", primary="false", beginDate=first_day.isoformat())
            )  # fmt: skip
    tables["enrollments.csv"] = enrollments

    files = {name: _csv_text(HEADERS[name], rows) for name, rows in tables.items()}
    manifest = [["manifest.version", "1.0"], ["oneroster.version", "1.2"]]
    for name in MANIFEST_FILES:
        manifest.append([f"file.{name}", "bulk" if f"{name}.csv" in files else "absent"])
    manifest += [
        ["source.systemName", "Example SIS (synthetic)"],
        ["source.systemCode", "example-district-generator"],
    ]
    files["manifest.csv"] = _csv_text(["propertyName", "value"], manifest)
    return files


def devices_file(d: District) -> str:
    rows = [[x.device_id, x.mac, x.user, x.school, x.kind] for x in d.devices]
    return _csv_text(["deviceId", "macAddress", "assignedUser", "school", "kind"], rows)


def _dhcpd_time(when: datetime) -> str:
    return f"{(when.weekday() + 1) % 7} {when:%Y/%m/%d %H:%M:%S}"  # dhcpd: 0 is Sunday, UTC


def lease_files(d: District) -> dict[str, str]:
    """dhcpd, dnsmasq and Kea lease files. Active leases never end, so the committed example
    keeps resolving however long it sits in the repository."""
    granted = datetime(d.year, 8, 20, 12, 0, tzinfo=UTC)
    start = _dhcpd_time(granted)
    released = _dhcpd_time(granted + timedelta(hours=2))
    out = [
        "# The format of this file is documented in the dhcpd.leases(5) manual page.",
        "# Synthetic leases of the example district (examples/generate_district.py):",
        "# the elementary school (10.10.0.0/16) and the staff network (10.40.0.0/16).",
        "",
        "authoring-byte-order little-endian;",
        "",
    ]
    for addr, mac, _ in d.stale_leases["dhcpd"]:
        out += [
            f"lease {addr} {{",
            f"  starts {start};",
            f"  ends {released};",
            f"  cltt {released};",
            "  binding state free;",
            f"  hardware ethernet {mac};",
            "}",
        ]
    for addr, mac, host in d.leases["dhcpd"]:
        out += [
            f"lease {addr} {{",
            f"  starts {start};",
            "  ends never;",
            f"  cltt {start};",
            "  binding state active;",
            "  next binding state free;",
            "  rewind binding state free;",
            f"  hardware ethernet {mac};",
            f'  client-hostname "{host}";',
            "}",
        ]
    files = {"dhcpd.leases": "\n".join(out) + "\n"}

    # dnsmasq: expiry 0 is an infinite lease
    files["dnsmasq.leases"] = "".join(
        f"0 {mac} {addr} {host} 01:{mac}\n" for addr, mac, host in d.leases["dnsmasq"]
    )

    cltt = int(granted.timestamp())
    infinite = 0xFFFFFFFF
    kea = [
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
        "state,user_context,pool_id"
    ]
    for addr, mac, _ in d.stale_leases["kea"]:  # state 2: expired and reclaimed
        kea.append(f"{addr},{mac},01:{mac},3600,{cltt + 3600},30,0,0,,2,,0")
    for addr, mac, host in d.leases["kea"]:
        kea.append(
            f"{addr},{mac},01:{mac},{infinite},{cltt + infinite},30,0,0,"
            f"{host}.hs.{STAFF_DOMAIN},0,,0"
        )
    files["kea-leases4.csv"] = "\n".join(kea) + "\n"
    return files


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def school_days(year: int) -> tuple[date, date]:
    """First and last day of the school year that starts in ``year``: the Wednesday before
    the last Monday of August, and the second Friday of June."""
    last_monday = _nth_weekday(year, 8, 0, 4)
    if last_monday.month == 8 and last_monday + timedelta(days=7) <= date(year, 8, 31):
        last_monday += timedelta(days=7)
    return last_monday - timedelta(days=5), _nth_weekday(year + 1, 6, 4, 2)


POLICY = """\
# The district policy of the example district (synthetic), written by
# examples/generate_district.py. It implements the school committee's social media policy:
#   * district devices and the district network are monitored, and students are told so
#     (tools that hide traffic from the monitoring are blocked);
#   * approved social media is for educational use under a teacher's direction;
#   * students 12 and under may only use platforms made for their age group (COPPA);
#   * staff must not connect with students on personal accounts (a rule about conduct, not
#     traffic: staff use is not filtered here).
# Rules are tried in order and the first match wins. Students are matched by platform
# attributes (designed_for_children, bypass, approved) rather than long lists of ids, so
# platforms added to the catalogue are covered without editing this file.
# Check it with:
#   monitor policy check {path} --school es --school ms --school hs
version: 1
district: {district}
contact: "Technology Office, help@{domain}, (555) 010-0147"
timezone: {timezone}
dedupe_window: 15m          # one incident per student + platform per 15 minutes
override_max_length: 1d     # a teacher's override lasts at most one day; overrides never
                            # apply to under-13s on platforms not made for children, nor to
                            # bypass services

# People we cannot identify (an unknown address, a spare device with no user) get the
# strictest student treatment; so do students whose record has no birthDate.
unknown:
  role: student
  band: under13
missing_birthdate_band: under13

closed:                     # district-wide, school year {y}-{y1}
{closed}

schools:                    # roster identifiers (orgs.csv)
  - id: es
    hours:
      - {{days: [mon-fri], start: "08:00", end: "15:00"}}
  - id: ms
    hours:
      - {{days: [mon-fri], start: "08:00", end: "15:00"}}
  - id: hs
    hours:
      - {{days: [mon-fri], start: "08:00", end: "15:00"}}

# Approved for educational use under a teacher's direction, for students 13 and over during
# school hours (students 12 and under are stopped by the COPPA rules before these apply):
#   * youtube: lessons, lectures and teacher playlists; always in YouTube's strict restricted
#     mode with SafeSearch.
#   * pinterest: art, design, and family and consumer science classes collect visual
#     references on boards; its own terms allow users from 13.
# LinkedIn is not on this list: its own terms require members to be 16, which the age bands
# cannot tell apart from 14 and 15. High school students may view its public college and
# employer pages during school hours for career and college readiness (rule
# hs-career-pages), but not sign in, post or message.
approved: [youtube, pinterest]

rules:
  - id: bypass-student
    match: {{who: student, bypass: true}}
    action: block
    incident: high
    reason: >-
      Tools that hide traffic from the district's network monitoring (VPNs, proxies, private
      DNS, Tor) are not allowed on district devices or the district network.

  - id: bypass
    match: {{bypass: true}}
    action: block
    reason: >-
      Tools that hide traffic from the district's network monitoring (VPNs, proxies, private
      DNS, Tor) are not allowed on district devices or the district network.

  - id: staff
    match: {{who: staff}}
    action: allow
    reason: >-
      Staff use is not filtered. Staff must not connect with students on personal social
      media accounts.

  - id: kids-platforms
    match: {{who: student, designed_for_children: true}}
    action: allow
    reason: Platforms made for children under 13 may be used by students.

  - id: under13-activity
    match: {{who: student, bands: under13, activities: [login, post, upload, message, live]}}
    action: block
    incident: medium
    reason: >-
      Students 12 and under may only use platforms made for their age group (COPPA).

  - id: under13
    match: {{who: student, bands: under13}}
    action: block
    reason: >-
      Students 12 and under may only use platforms made for their age group (COPPA).

  - id: approved-youtube-school-hours
    match: {{who: student, approved: true, platforms: [youtube], in_school_hours: true}}
    action: restrict
    restrict: {{youtube_restrict: strict, safe_search: true}}
    reason: >-
      YouTube is approved for educational use under a teacher's direction during school
      hours, in restricted mode.

  - id: approved-school-hours
    match: {{who: student, approved: true, in_school_hours: true}}
    action: allow
    reason: >-
      Approved platforms are for educational use under a teacher's direction during school
      hours.

  - id: hs-career-pages
    match:
      who: student
      schools: [hs]
      platforms: [linkedin]
      activities: [view, embed]
      in_school_hours: true
    action: allow
    reason: >-
      High school students may view LinkedIn's public college and employer pages during
      school hours for career and college readiness; LinkedIn accounts require age 16.

  - id: student-social-activity
    match: {{who: student, activities: [post, upload, message, live]}}
    action: block
    incident: low
    reason: >-
      Outside approved educational use during school hours, students may not use social
      media on district devices or the district network.

  - id: student-social
    match: {{who: student}}
    action: block
    reason: >-
      Outside approved educational use during school hours, students may not use social
      media on district devices or the district network.

default:
  action: block
  reason: This platform is not approved for use on the district network.
"""


def policy_file(year: int) -> str:
    first_day, last_day = school_days(year)
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    spring = _nth_weekday(year + 1, 4, 0, 2)  # the week of the second Monday of April
    closed = [
        (
            f"{{from: {date(year, 8, 1)}, to: {first_day - timedelta(days=1)}}}",
            "before the first day",
        ),
        (str(_nth_weekday(year, 9, 0, 1)), "Labor Day"),
        (str(thanksgiving), "Thanksgiving"),
        (str(thanksgiving + timedelta(days=1)), "the day after Thanksgiving"),
        (f"{{from: {date(year, 12, 23)}, to: {date(year + 1, 1, 1)}}}", "winter break"),
        (f"{{from: {spring}, to: {spring + timedelta(days=4)}}}", "spring break"),
        (f"{{from: {last_day + timedelta(days=1)}, to: {date(year + 1, 7, 31)}}}", "summer"),
    ]
    return POLICY.format(
        path="examples/district/policy.yaml",
        district=DISTRICT_NAME,
        domain=STAFF_DOMAIN,
        timezone=TIMEZONE,
        y=year,
        y1=year + 1,
        closed="\n".join(f"  - {entry:<38} # {why}" for entry, why in closed),
    )


def district_file(d: District, state_dir: str) -> str:
    lines = [
        "# The example district's configuration: `monitor … --config examples/district` reads",
        "# this file. Synthetic data only, written by examples/generate_district.py.",
        "# paths are relative to this file",
        "roster: roster",
        "policy: policy.yaml",
        "catalogue: []            # district catalogue files merged over the shipped one",
        "devices: devices.csv",
        "leases:",
        "  - {format: dhcpd, path: leases/dhcpd.leases}      # elementary school, staff network",
        "  - {format: dnsmasq, path: leases/dnsmasq.leases}  # middle school, guest Wi-Fi",
        "  - {format: kea, path: leases/kea-leases4.csv}     # high school",
        "identity_order: [proxy_auth, static, dhcp]",
        "addresses:               # static maps: demo loopback addresses, the guest network",
    ]
    for address, key, how in DEMO_ADDRESSES:
        target = d.demo[key]
        ref = target.device_id if isinstance(target, FakeDevice) else target.sourced_id
        lines.append(f'  - {{cidr: {address}/32, {how}: {ref}, note: "{DEMO_NOTES[key]}"}}')
    lines += [
        f"  - {{cidr: 10.{GUEST_SUBNET}.0.0/16, network: guest, note: \"visitors' Wi-Fi: "
        'no district accounts"}',
        f"state_dir: {state_dir}   # overrides, incident store, spool, pseudonym key",
    ]
    lines += NOTIFY_EXAMPLE
    return "\n".join(lines) + "\n"


# Notifications, the weekly report and the SIEM log, pointed at localhost for the demo.
NOTIFY_EXAMPLE = [
    "notify:                  # notifications, weekly report, SIEM log (README: Notifications)",
    "  smtp:                  # demo: `python -m aiosmtpd -n -l 127.0.0.1:8025` catches the mail",
    "    host: 127.0.0.1",
    "    port: 8025",
    "    security: none       # a real server: starttls (587), username, password_env: VAR",
    f"    from: monitor@{STAFF_DOMAIN}",
    "  incidents:             # a new incident of these severities mails its school's counselors",
    "    severities: [high]",
    f"    address_domain: {STAFF_DOMAIN}   # review-app username -> username@{STAFF_DOMAIN}",
    "    link: http://127.0.0.1:8000/incidents/{id}",
    "  weekly:                # `monitor notify weekly`: deploy/systemd/student-monitor-report.*",
    "    link_base: http://127.0.0.1:8000",
    "    recipients:",
    f"      hs: [principal.hs@{STAFF_DOMAIN}]",
    f"      ms: [principal.ms@{STAFF_DOMAIN}]",
    f"      es: [principal.es@{STAFF_DOMAIN}]",
    f'      "*": [superintendent@{STAFF_DOMAIN}]',
    "  event_log: {path: incident-events.jsonl}   # JSON lines for a SIEM, in state_dir",
    "  # webhook: {url: https://siem.district.example/hooks/monitor, password_env: HOOK_SECRET}",
]


# ---------------------------------------------------------------- DEMO.md


def _model_person(p: FakePerson) -> Person:
    return Person(
        sourced_id=p.sourced_id,
        username=p.username,
        role=p.role,
        schools=(p.school,) if p.school != DISTRICT_ID else (),
        grades=(p.grade_code,) if p.grade_code else (),
        birth_date=p.birth,
        given_name=p.given,
        family_name=p.family,
        classes=tuple(p.classes),
    )


def _model_device(x: FakeDevice) -> Device:
    return Device(x.device_id, x.mac, x.user or None, x.school or None, x.kind)


def demo_identities(d: District) -> list[tuple[str, str, Identity]]:
    """(address, how it is mapped, identity) for each demo address and plain 127.0.0.1."""
    by_sid = {p.sourced_id: p for p in d.people}
    out: list[tuple[str, str, Identity]] = []
    for address, key, how in DEMO_ADDRESSES:
        target = d.demo[key]
        if isinstance(target, FakeDevice):
            owner = by_sid.get(target.user)
            ident = Identity(
                _model_person(owner) if owner else None, _model_device(target), "static"
            )
        else:
            ident = Identity(_model_person(target), None, "static")
        out.append((address, how, ident))
    out.append(("127.0.0.1", "nothing", Identity(None, None, "unknown")))
    return out


def _school_day(policy: Policy, school: str | None, start: date) -> date | None:
    """The first day from ``start`` on which ``school`` is in session at 10:30."""
    for k in range(60):
        day = start + timedelta(days=k)
        if policy.in_school_hours(school, day, day.weekday(), 10 * 60 + 30):
            return day
    return None


def _describe(ident: Identity, d: District, schools: dict[str, SchoolSpec]) -> str:
    p, dev = ident.person, ident.device
    if p is None:
        if dev is not None:
            school = schools[dev.school].identifier if dev.school else "no school"
            return f"unknown person: a spare {dev.kind} with no user ({school})"
        return "unknown person: any other loopback address"
    role = "student" if p.is_student else p.role
    school = schools[p.schools[0]].identifier if p.schools else "district office"
    bits = [role, school]
    if p.grades:
        bits.append("kindergarten" if p.grades[0] == "KG" else f"grade {int(p.grades[0])}")
    age = p.age_on(d.today)
    if p.is_student:
        if age is None:
            bits.append("no birthDate")
        else:
            bits.append(f"age {age}")
            if p.birth_date is not None:
                if age_on(p.birth_date, d.today + timedelta(days=1)) > age:
                    bits.append(f"turns {age + 1} tomorrow")
                elif age_on(p.birth_date, d.today - timedelta(days=2)) < age:
                    bits.append(f"turned {age} yesterday")
    if dev is not None:
        bits.append(f"on {dev.kind} {dev.device_id}")
    else:
        bits.append(f"as {p.sourced_id}")
    return ", ".join(bits)


def _cell(decision_action: str, rule: str) -> str:
    return f"{decision_action} (`{rule}`)"


def demo_decisions(
    policy: Policy, catalogue: catalogue_mod.Catalogue, ident: Identity, today: date
) -> list[tuple[str, str]]:
    """(in school hours, outside school hours) decision cells per DEMO_PLATFORMS, for a
    person as old as they are on ``today``, opening the platform (activity ``view``).

    In-hours decisions are taken at 10:30 on the first school day from ``today`` on (and
    out-of-hours at 19:00 that day); when that is not ``today`` the birthdate is moved by
    the same number of days, so the age band is the one of ``today``.
    """
    tz = ZoneInfo(policy.timezone)
    p, dev = ident.person, ident.device
    school = p.schools[0] if p is not None and p.schools else (dev.school if dev else None)
    day = _school_day(policy, school, today) or today
    if p is not None and p.birth_date is not None and day != today:
        p = replace(p, birth_date=p.birth_date + (day - today))
        ident = replace(ident, person=p)
    cells = []
    for pid, _ in DEMO_PLATFORMS:
        platform = catalogue[pid]
        pair = []
        for hour, minute in ((10, 30), (19, 0)):
            when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            dec = decide(policy, ident, None, platform, "view", when)
            pair.append(_cell(dec.action, dec.rule_id))
        cells.append((pair[0], pair[1]))
    return cells


def demo_file(d: District, policy: Policy, catalogue: catalogue_mod.Catalogue) -> str:
    schools = {s.sourced_id: s for s in SCHOOLS}
    header = ["address", "mapped by", "who (on the generation date)"]
    for _, name in DEMO_PLATFORMS:
        header += [f"{name} in school hours", f"{name} outside"]
    rows = []
    for address, how, ident in demo_identities(d):
        cells = demo_decisions(policy, catalogue, ident, d.today)
        row = [f"`{address}`", how, _describe(ident, d, schools)]
        for inside, outside in cells:
            row += [inside, outside]
        rows.append(row)
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    return f"""\
# The example district's demo people

Generated on {d.today.isoformat()} (see `GENERATED_ON`) by `examples/generate_district.py`
for the school year {d.year}–{d.year + 1}. Everyone here is synthetic; the table describes
people by role, school, grade and age only (their roster ids are pseudonyms).

`district.yaml` maps these loopback addresses to people or devices, so a proxy running on
this machine sees a different person for each source address, e.g.
`curl --interface 127.0.0.12 --proxy http://127.0.0.1:8080 https://www.tiktok.com/`.
Every other loopback address (127.0.0.1 included) is an unknown person, treated as a student
under 13 (the policy's `unknown` setting).

The decisions are those of `policy.yaml` for opening each site (activity `view`) at 10:30 on a
school day and at 19:00, for a person as old as they are on the generation date: the student
who turns 13 tomorrow is treated like the 11-year-old until midnight (America/New_York) and
like the one who turned 13 yesterday from then on. Restricted YouTube carries
`YouTube-Restrict: Strict` and SafeSearch. Ages are computed from birthDate on each day, so
regenerate (`python examples/generate_district.py`) to move the 12/13 pair back around today.

{chr(10).join(table)}
"""


# ---------------------------------------------------------------- main


def write(out: Path, today: date, seed: int, state_dir: str) -> District:
    d = build(today, seed)
    files: dict[str, str] = {}
    for name, text in roster_files(d).items():
        files[f"roster/{name}"] = text
    files["devices.csv"] = devices_file(d)
    for name, text in lease_files(d).items():
        files[f"leases/{name}"] = text
    files["policy.yaml"] = policy_file(d.year)
    files["district.yaml"] = district_file(d, state_dir)
    files["GENERATED_ON"] = today.isoformat() + "\n"

    catalogue = catalogue_mod.load()
    known = [School(s.sourced_id, s.name, s.identifier) for s in SCHOOLS]
    # validated before anything is written: a broken policy must not reach the repository
    policy = load_policy(out / "policy.yaml", catalogue, known, text=files["policy.yaml"])
    files["DEMO.md"] = demo_file(d, policy, catalogue)

    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    return d


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=date.today(),
        help="generation date YYYY-MM-DD (default: today); fixes the school year and the "
        "12/13 demo students' birthdates",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--state-dir",
        help="state_dir written into district.yaml, relative to it (default: "
        f"{DEFAULT_STATE_DIR} for examples/district, else 'state')",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    state_dir = args.state_dir
    if state_dir is None:
        default = out.resolve() == DEFAULT_OUT.resolve()
        state_dir = DEFAULT_STATE_DIR if default else "state"
    t0 = time.perf_counter()
    d = write(out, args.today, args.seed, state_dir)
    students = sum(1 for p in d.people if p.role == "student" and p.enabled)
    staff = sum(1 for p in d.people if p.role != "student" and p.enabled)
    n_leases = sum(len(v) for v in d.leases.values())
    print(
        f"wrote {out}: {students} students, {staff} staff, {len(d.classes)} classes, "
        f"{len(d.devices)} devices, {n_leases} leases ({time.perf_counter() - t0:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
