"""Writes a synthetic district as OneRoster 1.1 or 1.2 bulk CSV files, for tests and benchmarks.

Everything is fake and obviously so: people are "Student0001 Testperson", "Teacher0001
Testperson"; schools are "Testville School 1"; e-mail domains are ``example.test``. The column
lists are written out here independently of ``monitor.people.roster`` (from the 1EdTech CSV binding), so
that a loader bug in a header name is caught rather than mirrored.

    district = write_district(tmp_path, students=40, teachers=4, version="1.2")
    district.person("stu-0001").birth_date

``set_cell``, ``read_csv`` and ``write_csv`` edit one file afterwards, for bad-input tests;
``write_delta`` writes a delta export; ``VARIANTS`` rewrite a district the way vendors' exports
deviate from the binding.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

COMMON = ["sourcedId", "status", "dateLastModified"]
HEADERS: dict[str, dict[str, list[str]]] = {
    "1.1": {
        "orgs.csv": COMMON + ["name", "type", "identifier", "parentSourcedId"],
        "academicSessions.csv": COMMON
        + ["title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"],
        "users.csv": COMMON
        + ["enabledUser", "orgSourcedIds", "role", "username", "userIds", "givenName"]
        + ["familyName", "middleName", "identifier", "email", "sms", "phone"]
        + ["agentSourcedIds", "grades", "password"],
        "demographics.csv": COMMON
        + ["birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican"]
        + ["nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces"]
        + ["hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation"]
        + ["cityOfBirth", "publicSchoolResidenceStatus"],
        "classes.csv": COMMON
        + ["title", "grades", "courseSourcedId", "classCode", "classType", "location"]
        + ["schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"],
        "enrollments.csv": COMMON
        + ["classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary"]
        + ["beginDate", "endDate"],
    },
}
HEADERS["1.2"] = {
    **HEADERS["1.1"],
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
}
DISTRICT_ID = "dist-1"
TERM_ID = "term-1"


@dataclass
class FakePerson:
    sourced_id: str
    username: str
    role: str  # student | teacher
    school: str
    grade: str  # "" for teachers
    birth_date: date | None
    given_name: str
    family_name: str
    classes: list[str] = field(default_factory=list)
    enabled: bool = True  # False: enabledUser=false
    deleted: bool = False  # True: status=tobedeleted
    profile_username: str = ""  # 1.2 userProfiles.csv credential username

    @property
    def active(self) -> bool:
        return self.enabled and not self.deleted


@dataclass
class FakeClass:
    sourced_id: str
    title: str
    school: str
    teacher: str
    students: list[str] = field(default_factory=list)


@dataclass
class FakeDistrict:
    directory: Path
    version: str
    schools: list[tuple[str, str, str]]  # (sourcedId, name, identifier)
    people: list[FakePerson]
    classes: list[FakeClass]

    def person(self, sourced_id: str) -> FakePerson:
        return next(p for p in self.people if p.sourced_id == sourced_id)

    @property
    def active_people(self) -> list[FakePerson]:
        return [p for p in self.people if p.active]

    @property
    def students(self) -> list[FakePerson]:
        return [p for p in self.people if p.role == "student"]


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    bom: bool = False,
    delimiter: str = ",",
    lineterminator: str = "\r\n",
) -> None:
    """Write one CSV file (CRLF line ends by default, as RFC 4180 has them)."""
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator=lineterminator)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def record_line(path: Path, column: str, value: str) -> int:
    """The physical line on which the record whose ``column`` equals ``value`` starts."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        i = header.index(column)
        start = reader.line_num + 1
        for row in reader:
            if row and row[i] == value:
                return start
            start = reader.line_num + 1
    raise KeyError(f"{path.name}: no row with {column}={value!r}")


def set_cell(
    path: Path, key: str, column: str, value: str, *, key_column: str = "sourcedId"
) -> int:
    """Set one cell of the row whose ``key_column`` is ``key``; returns that row's line."""
    header, rows = read_csv(path)
    k, c = header.index(key_column), header.index(column)
    for row in rows:
        if row[k] == key:
            row[c] = value
            break
    else:
        raise KeyError(f"{path.name}: no row with {key_column}={key!r}")
    write_csv(path, header, rows)
    return record_line(path, key_column, key)


def add_row(path: Path, values: dict[str, str]) -> int:
    """Append a row (unnamed columns empty); returns its line."""
    header, rows = read_csv(path)
    rows.append([values.get(h, "") for h in header])
    write_csv(path, header, rows)
    return len(rows) + 1  # valid while no value spans lines


def write_district(
    directory: Path,
    *,
    students: int = 40,
    teachers: int = 4,
    schools: int = 2,
    version: str = "1.1",
    classes_per_student: int = 3,
    class_size: int = 20,
    disabled: int = 0,
    deleted: int = 0,
    demographics: bool = True,
    academic_sessions: bool = True,
    user_profiles: bool = True,
    today: date = date(2025, 9, 1),
    seed: int = 1,
) -> FakeDistrict:
    """Write manifest, orgs, users, demographics, classes, enrollments (and for 1.2 roles and
    userProfiles) of a synthetic district into ``directory``; returns what was written.

    The first ``disabled`` students have enabledUser=false, the next ``deleted`` have
    status=tobedeleted. Students are 5 to 18 years old on ``today``.
    """
    if version not in HEADERS:
        raise ValueError(f"version must be 1.1 or 1.2, not {version!r}")
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    width = max(4, len(str(max(students, teachers))))
    school_rows = [(f"sch-{n}", f"Testville School {n}", f"TS{n}") for n in range(1, schools + 1)]
    school_ids = [s[0] for s in school_rows]

    people: list[FakePerson] = []
    teachers_by_school: dict[str, list[FakePerson]] = {s: [] for s in school_ids}
    for n in range(1, teachers + 1):
        school = school_ids[(n - 1) % schools]
        label = f"Teacher{n:0{width}d}"
        t = FakePerson(
            f"tch-{n:0{width}d}", label.lower(), "teacher", school, "", None, label, "Testperson"
        )
        people.append(t)
        teachers_by_school[school].append(t)
    students_by_school: dict[str, list[FakePerson]] = {s: [] for s in school_ids}
    for n in range(1, students + 1):
        school = school_ids[(n - 1) % schools]
        age = 5 + rng.randrange(14)
        birth = today - timedelta(days=365 * age + rng.randrange(365))
        grade = f"{max(0, min(12, age - 5)):02d}" if age > 5 else "KG"
        label = f"Student{n:0{width}d}"
        s = FakePerson(
            f"stu-{n:0{width}d}",
            label.lower(),
            "student",
            school,
            grade,
            birth,
            label,
            "Testperson",
        )
        s.enabled = n > disabled
        s.deleted = disabled < n <= disabled + deleted
        if version == "1.2" and user_profiles:
            s.profile_username = f"{label.lower()}@lms.example.test"
        people.append(s)
        students_by_school[school].append(s)

    classes: list[FakeClass] = []
    for school in school_ids:
        pupils, staff = students_by_school[school], teachers_by_school[school]
        if not pupils or not staff:
            continue
        n_classes = max(classes_per_student, -(-len(pupils) * classes_per_student // class_size))
        first = len(classes)
        for k in range(n_classes):
            teacher = staff[k % len(staff)]
            c = FakeClass(
                f"cls-{school}-{k + 1:03d}", f"Test Class {k + 1}", school, teacher.sourced_id
            )
            teacher.classes.append(c.sourced_id)
            classes.append(c)
        mine = classes[first:]
        for i, pupil in enumerate(pupils):
            for j in range(min(classes_per_student, len(mine))):
                c = mine[(i + j * len(mine) // classes_per_student) % len(mine)]
                if pupil.sourced_id not in c.students:
                    c.students.append(pupil.sourced_id)
                    pupil.classes.append(c.sourced_id)

    h = HEADERS[version]
    files: dict[str, list[list[str]]] = {}

    def row(file: str, /, **values: str) -> list[str]:
        return [values.get(col, "") for col in h[file]]

    files["orgs.csv"] = [
        row(
            "orgs.csv",
            sourcedId=DISTRICT_ID,
            name="Testville District",
            type="district",
            identifier="TD",
        ),
        *(
            row(
                "orgs.csv",
                sourcedId=sid,
                name=name,
                type="school",
                identifier=ident,
                parentSourcedId=DISTRICT_ID,
            )
            for sid, name, ident in school_rows
        ),
    ]
    if academic_sessions:
        files["academicSessions.csv"] = [
            row(
                "academicSessions.csv",
                sourcedId=TERM_ID,
                title="Test Year",
                type="schoolYear",
                startDate=f"{today.year}-08-15",
                endDate=f"{today.year + 1}-06-15",
                schoolYear=str(today.year + 1),
            ),
        ]
    files["users.csv"] = []
    roles: list[list[str]] = []
    profiles: list[list[str]] = []
    for p in people:
        common = {
            "sourcedId": p.sourced_id,
            "status": "tobedeleted" if p.deleted else "",
            "enabledUser": "true" if p.enabled else "false",
            "username": p.username,
            "givenName": p.given_name,
            "familyName": p.family_name,
            "email": f"{p.username}@example.test",
            "grades": p.grade,
        }
        if version == "1.1":
            files["users.csv"].append(
                row("users.csv", **common, orgSourcedIds=p.school, role=p.role)
            )
        else:
            files["users.csv"].append(row("users.csv", **common, primaryOrgSourcedId=p.school))
            roles.append(
                row(
                    "roles.csv",
                    sourcedId=f"role-{p.sourced_id}",
                    userSourcedId=p.sourced_id,
                    roleType="primary",
                    role=p.role,
                    orgSourcedId=p.school,
                )
            )
            if p.profile_username:
                profiles.append(
                    row(
                        "userProfiles.csv",
                        sourcedId=f"prof-{p.sourced_id}",
                        userSourcedId=p.sourced_id,
                        profileType="lms",
                        vendorId="example-lms",
                        credentialType="username",
                        username=p.profile_username,
                    )
                )
    if version == "1.2":
        files["roles.csv"] = roles
        if user_profiles:
            files["userProfiles.csv"] = profiles
    if demographics:
        files["demographics.csv"] = [
            row("demographics.csv", sourcedId=p.sourced_id, birthDate=p.birth_date.isoformat())
            for p in people
            if p.birth_date is not None
        ]
    files["classes.csv"] = [
        row(
            "classes.csv",
            sourcedId=c.sourced_id,
            title=c.title,
            courseSourcedId="course-1",
            classType="scheduled",
            schoolSourcedId=c.school,
            termSourcedIds=TERM_ID if academic_sessions else "",
        )
        for c in classes
    ]
    enrollments: list[list[str]] = []
    for c in classes:
        enrollments.append(
            row(
                "enrollments.csv",
                sourcedId=f"enr-{c.sourced_id}-{c.teacher}",
                classSourcedId=c.sourced_id,
                schoolSourcedId=c.school,
                userSourcedId=c.teacher,
                role="teacher",
                primary="true",
            )
        )
        for student in c.students:
            enrollments.append(
                row(
                    "enrollments.csv",
                    sourcedId=f"enr-{c.sourced_id}-{student}",
                    classSourcedId=c.sourced_id,
                    schoolSourcedId=c.school,
                    userSourcedId=student,
                    role="student",
                    primary="false",
                )
            )
    files["enrollments.csv"] = enrollments

    for name, rows in files.items():
        write_csv(directory / name, h[name], rows)
    manifest = [["manifest.version", "1.0"], ["oneroster.version", version]]
    for name in (
        "academicSessions",
        "categories",
        "classes",
        "classResources",
        "courses",
        "courseResources",
        "demographics",
        "enrollments",
        "lineItems",
        "orgs",
        "resources",
        "results",
        "roles",
        "userProfiles",
        "users",
    ):
        if name in ("roles", "userProfiles") and version == "1.1":
            continue
        manifest.append([f"file.{name}", "bulk" if f"{name}.csv" in files else "absent"])
    manifest += [["source.systemName", "oneroster_factory"], ["source.systemCode", "test"]]
    write_csv(directory / "manifest.csv", ["propertyName", "value"], manifest)
    return FakeDistrict(directory, version, school_rows, people, classes)


# -- delta exports -----------------------------------------------------------------------------


def person_rows(p: FakePerson, version: str, **changed: str) -> dict[str, dict[str, str]]:
    """The users.csv (and 1.2 roles.csv) and demographics.csv rows of one person, as
    column → value, for writing a delta export; ``changed`` overrides users.csv values."""
    user = {
        "sourcedId": p.sourced_id,
        "enabledUser": "true" if p.enabled else "false",
        "username": p.username,
        "givenName": p.given_name,
        "familyName": p.family_name,
        "email": f"{p.username}@example.test",
        "grades": p.grade,
    }
    out: dict[str, dict[str, str]] = {}
    if version == "1.1":
        out["users.csv"] = {**user, "orgSourcedIds": p.school, "role": p.role, **changed}
    else:
        out["users.csv"] = {**user, "primaryOrgSourcedId": p.school, **changed}
        out["roles.csv"] = {
            "sourcedId": f"role-{p.sourced_id}",
            "userSourcedId": p.sourced_id,
            "roleType": "primary",
            "role": p.role,
            "orgSourcedId": p.school,
        }
    if p.birth_date is not None:
        out["demographics.csv"] = {
            "sourcedId": p.sourced_id,
            "birthDate": p.birth_date.isoformat(),
        }
    return out


def write_export(
    directory: Path,
    version: str,
    files: dict[str, list[dict[str, str]]],
    modes: dict[str, str],
) -> Path:
    """Write an export of ``files`` (rows as column → value, unnamed columns empty) with the
    standard columns of ``version``, and a manifest giving each listed file its mode (every
    other OneRoster file absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    h = HEADERS[version]
    for name, rows in files.items():
        write_csv(directory / name, h[name], [[r.get(c, "") for c in h[name]] for r in rows])
    manifest = [["manifest.version", "1.0"], ["oneroster.version", version]]
    for name in h:
        manifest.append([f"file.{name.removesuffix('.csv')}", modes.get(name, "absent")])
    manifest.append(["source.systemName", "oneroster_factory"])
    write_csv(directory / "manifest.csv", ["propertyName", "value"], manifest)
    return directory


def write_delta(
    directory: Path,
    version: str,
    files: dict[str, list[dict[str, str]]],
    *,
    when: str,
) -> Path:
    """A delta export: every row of ``files`` gets status active (unless it says
    ``tobedeleted``) and dateLastModified ``when`` (unless it has its own); each file listed is
    delta in the manifest."""
    rows = {
        name: [{"status": "active", "dateLastModified": when, **r} for r in rs]
        for name, rs in files.items()
    }
    return write_export(directory, version, rows, dict.fromkeys(files, "delta"))


def tombstone(sourced_id: str, when: str) -> dict[str, str]:
    """A delta row that deletes the record ``sourced_id``."""
    return {"sourcedId": sourced_id, "status": "tobedeleted", "dateLastModified": when}


# -- vendor variants ---------------------------------------------------------------------------
#
# No real export may enter the repository, so each variant rewrites a synthetic district the
# way a vendor's export is documented (or, where the documentation is silent, assumed) to
# differ from the 1EdTech binding. Every variant says what it is based on and what is assumed;
# tests/people/test_roster_variants.py runs each through `monitor roster check` and the loader
# and expects the same people, schools, classes and birthDates as the clean export.


def rewrite(
    path: Path,
    *,
    rename: dict[str, str] | None = None,
    values: dict[str, Callable[[str], str]] | None = None,
    order: Callable[[list[str]], list[str]] | None = None,
    bom: bool = False,
    lineterminator: str = "\r\n",
    quote_all: bool = False,
) -> None:
    """Rewrite one CSV file: rename columns, map values of columns, reorder, and write with or
    without a BOM, with the given line ends, quoting every field or only where needed."""
    header, rows = read_csv(path)
    for col, fn in (values or {}).items():
        if col in header:
            i = header.index(col)
            for r in rows:
                r[i] = fn(r[i])
    if order is not None:
        new = order(list(header))
        idx = [header.index(c) for c in new]
        header, rows = new, [[r[i] for i in idx] for r in rows]
    header = [(rename or {}).get(h, h) for h in header]
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        writer = csv.writer(f, lineterminator=lineterminator, quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)


def us_date(value: str, *, pad: bool) -> str:
    """YYYY-MM-DD as M/D/YYYY (pad: MM/DD/YYYY)."""
    if not value:
        return value
    y, m, d = value.split("-")
    return f"{m}/{d}/{y}" if pad else f"{int(m)}/{int(d)}/{y}"


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix == ".csv")


def classlink_template(d: Path) -> None:
    """ClassLink Roster Server, OneRoster 1.1 CSV template (support.classlink.com, "OneRoster 1.1
    CSVs"): every template column present (even empty), courses.csv among the mandatory files.
    Assumed: status 'active' and dateLastModified (ISO 8601 with milliseconds) filled in on every
    row of a bulk export. The binding allows both: a clean export, no warnings expected."""
    write_csv(
        d / "courses.csv",
        COMMON + ["schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId"]
        + ["subjects", "subjectCodes"],
        [["course-1", "active", "2025-08-01T06:00:00.000Z", TERM_ID, "Test Course", "TC1", "",
          DISTRICT_ID, "", ""]],
    )  # fmt: skip
    for path in _files(d):
        if path.name in ("manifest.csv", "courses.csv"):
            continue
        rewrite(
            path,
            values={
                "status": lambda v: v or "active",
                "dateLastModified": lambda _: "2025-08-01T06:00:00.000Z",
            },
        )
    set_cell(d / "manifest.csv", "file.courses", "value", "bulk", key_column="propertyName")


def classlink_excel(d: Path) -> None:
    """A ClassLink OneRoster 1.1 export opened and saved in Excel, which ClassLink's CSV guide
    warns against (support.classlink.com, "OneRoster 1.1 CSVs": "it is NOT recommended to use
    Microsoft Excel"). Assumed from Excel's documented behaviour when saving "CSV UTF-8": a BOM on
    every file, CRLF line ends, booleans shown as TRUE/FALSE, dates re-written in the US short
    form M/D/YYYY (birthDate, session dates)."""
    for path in _files(d):
        rewrite(
            path,
            bom=True,
            values={
                "enabledUser": str.upper,
                "birthDate": lambda v: us_date(v, pad=False),
                "startDate": lambda v: us_date(v, pad=False),
                "endDate": lambda v: us_date(v, pad=False),
            },
        )


def clever_style(d: Path) -> None:
    """A OneRoster 1.1 export from a district that also feeds Clever, written to Clever's CSV
    conventions (Clever SFTP instructions: "Double quotes around fields are optional, except when
    the field value includes a comma"; "The order of the columns does not matter"; the birth date
    column of Clever's students.csv is "Dob", as a Genesis SIS "Clever Export" page lists it).
    Assumed: columns in another order, LF line ends, demographics' birthDate under Clever's name
    "Dob" written MM/DD/YYYY. Clever's own file set is not OneRoster: this is a OneRoster export
    carrying those conventions, not Clever's format."""
    for path in _files(d):
        rewrite(path, order=lambda h: list(reversed(h)), lineterminator="\n")
    rewrite(
        d / "demographics.csv",
        rename={"birthDate": "Dob"},
        values={"birthDate": lambda v: us_date(v, pad=True)},
        lineterminator="\n",
    )


def powerschool_autosend(d: Path) -> None:
    """PowerSchool SIS AutoSend / Data Export Manager templates (ps.powerschool-docs.com,
    "AutoSend Setup"; an export template's settings as a public PowerSchool plug-in documents
    them: "Line Delimiter: CR-LF", "Field Delimiter: ,", "Surround field values in Quotes").
    Assumed: every field quoted, CRLF, flags from PowerSchool's integer columns written 1/0
    (enabledUser), dates in the server's M/D/YYYY form, and column labels typed by hand in the
    template (GivenName, FamilyName, BirthDate)."""
    for path in _files(d):
        rewrite(
            path,
            quote_all=True,
            rename={"givenName": "GivenName", "familyName": "FamilyName", "birthDate": "BirthDate"},
            values={
                "enabledUser": lambda v: "1" if v == "true" else "0",
                "birthDate": lambda v: us_date(v, pad=False),
            },
        )


def infinite_campus_extract(d: Path) -> None:
    """Infinite Campus Data Extract Utility, OneRoster CSV extract (kb.infinitecampus.com,
    "OneRoster CSV Extract Configuration": OneRoster 1.1 format, bulk and delta exports, header
    names and file names case-sensitive, values containing a comma in double quotes, UTF-8).
    Assumed: dates and date-times serialised from SQL datetime columns, so birthDate carries a
    midnight time part (2012-03-04T00:00:00.000Z), and status/dateLastModified filled in."""
    for path in _files(d):
        if path.name == "manifest.csv":
            continue
        rewrite(
            path,
            values={
                "status": lambda v: v or "active",
                "dateLastModified": lambda _: "2025-08-01T05:00:00.000Z",
                "birthDate": lambda v: f"{v}T00:00:00.000Z" if v else v,
            },
        )


def skyward_report(d: Path) -> None:
    """Skyward SMS 2.0 districts build OneRoster files from report-writer (SXR) templates (a CLI
    Engage rostering guide mentions "preconfigured SXR reports"); no public description of the
    resulting CSV was found, so everything here is assumed: column labels whose case drifts from
    the binding (Role, OrgSourcedIds), demographics keyed 'userSourcedId' with 'birthdate' in
    lower case (the OneRoster 1.0 layout), status written 'Active', and a UTF-8 BOM."""
    for path in _files(d):
        rewrite(
            path,
            bom=True,
            rename={"role": "Role", "orgSourcedIds": "OrgSourcedIds"}
            if path.name == "users.csv"
            else {"sourcedId": "userSourcedId", "birthDate": "birthdate"}
            if path.name == "demographics.csv"
            else {},
            values={"status": lambda v: "Active" if not v else v},
        )


def sample_12_empty_manifest(d: Path) -> None:
    """The refused sample of the issue: a OneRoster 1.2 bulk export whose manifest.csv leaves
    some file.* values empty (here every one, for files present and absent alike)."""
    header, rows = read_csv(d / "manifest.csv")
    for r in rows:
        if r[0].startswith("file."):
            r[1] = ""
    write_csv(d / "manifest.csv", header, rows)


def sample_11_demographics_user_key(d: Path) -> None:
    """The other refused sample of the issue: a OneRoster 1.1 export whose demographics.csv
    names its key column userSourcedId instead of sourcedId."""
    rewrite(d / "demographics.csv", rename={"sourcedId": "userSourcedId"})


@dataclass(frozen=True)
class Variant:
    name: str
    version: str
    apply: Callable[[Path], None]
    topics: frozenset[str]  # the kinds of warning its deviations must produce ("" for none)


VARIANTS: list[Variant] = [
    Variant("classlink-1.1-template", "1.1", classlink_template, frozenset()),
    Variant("classlink-1.1-excel", "1.1", classlink_excel, frozenset({"boolean", "date"})),
    Variant("clever-conventions-1.1", "1.1", clever_style, frozenset({"column", "date"})),
    Variant(
        "powerschool-autosend-1.1", "1.1", powerschool_autosend,
        frozenset({"column", "boolean", "date"}),
    ),
    Variant("infinite-campus-1.1", "1.1", infinite_campus_extract, frozenset({"date"})),
    Variant("skyward-report-1.1", "1.1", skyward_report, frozenset({"column", "status"})),
    Variant("issue-sample-1.2-empty-manifest", "1.2", sample_12_empty_manifest,
            frozenset({"manifest"})),
    Variant("issue-sample-1.1-demographics-userSourcedId", "1.1",
            sample_11_demographics_user_key, frozenset({"column"})),
]  # fmt: skip
