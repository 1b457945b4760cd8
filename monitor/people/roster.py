"""OneRoster 1.1 / 1.2 bulk CSV import: who the people are, their schools, classes and birthdates.

A roster is a directory of the CSV files a student information system exports. The whole roster
is rejected (``RosterError``) when a file is structurally broken: a required file or column is
missing, the file is not comma-separated UTF-8 CSV, a row has the wrong number of fields, a
sourcedId repeats within a file, or the manifest announces a delta export. Bad values inside an
otherwise sound file only drop that row or field, each with a precise ``Problem``.

Column names follow the 1EdTech OneRoster CSV binding (1.1 CSV tables; 1.2 CSV binding 1.2.1).
1.2 moved a user's roles and organisations out of users.csv into roles.csv.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from monitor.model import (
    AGE_BANDS,
    KNOWN_ROLES,
    STUDENT_ROLES,
    ClassSection,
    Person,
    School,
    age_band_for,
    age_on,
)

ProblemKind = Literal["error", "warning", "skipped"]
VERSIONS = ("1.1", "1.2")

_COMMON = ("sourcedId", "status", "dateLastModified")
_ORGS = (*_COMMON, "name", "type", "identifier", "parentSourcedId")
_SESSIONS = (*_COMMON, "title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear")
_CLASSES = (
    *_COMMON, "title", "grades", "courseSourcedId", "classCode", "classType", "location",
    "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods",
)  # fmt: skip
_ENROLLMENTS = (
    *_COMMON, "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary",
    "beginDate", "endDate",
)  # fmt: skip
_DEMOGRAPHICS = (
    *_COMMON, "birthDate", "sex", "americanIndianOrAlaskaNative", "asian",
    "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander", "white",
    "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity", "countryOfBirthCode",
    "stateOfBirthAbbreviation", "cityOfBirth", "publicSchoolResidenceStatus",
)  # fmt: skip
_USERS_11 = (
    *_COMMON, "enabledUser", "orgSourcedIds", "role", "username", "userIds", "givenName",
    "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds",
    "grades", "password",
)  # fmt: skip
_USERS_12 = (
    *_COMMON, "enabledUser", "username", "userIds", "givenName", "familyName", "middleName",
    "identifier", "email", "sms", "phone", "agentSourcedIds", "grades", "password",
    "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
    "preferredFamilyName", "primaryOrgSourcedId", "pronouns",
)  # fmt: skip
_ROLES = (
    *_COMMON, "userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId",
    "userProfileSourcedId",
)  # fmt: skip
_PROFILES = (
    *_COMMON, "userSourcedId", "profileType", "vendorId", "applicationId", "description",
    "credentialType", "username", "password",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    known: tuple[str, ...]
    required: tuple[str, ...]


def _specs(version: str) -> dict[str, _Spec]:
    users = (
        _Spec(
            "users.csv",
            _USERS_11,
            (
                "sourcedId",
                "enabledUser",
                "orgSourcedIds",
                "role",
                "username",
                "givenName",
                "familyName",
            ),
        )
        if version == "1.1"
        else _Spec(
            "users.csv",
            _USERS_12,
            ("sourcedId", "enabledUser", "username", "givenName", "familyName"),
        )
    )
    specs = [
        _Spec("orgs.csv", _ORGS, ("sourcedId", "name", "type")),
        _Spec("academicSessions.csv", _SESSIONS, ("sourcedId", "title", "type")),
        users,
        _Spec("demographics.csv", _DEMOGRAPHICS, ("sourcedId",)),
        _Spec("classes.csv", _CLASSES, ("sourcedId", "title", "schoolSourcedId")),
        _Spec(
            "enrollments.csv",
            _ENROLLMENTS,
            ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
        ),
    ]
    if version == "1.2":
        specs.append(
            _Spec(
                "roles.csv",
                _ROLES,
                ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"),
            )
        )
        specs.append(_Spec("userProfiles.csv", _PROFILES, ("sourcedId", "userSourcedId")))
    return {s.name: s for s in specs}


# Columns that only one version has, to explain a roster whose manifest names the wrong version.
_OTHER_VERSION_USERS = {
    "1.1": set(_USERS_12) - set(_USERS_11),
    "1.2": set(_USERS_11) - set(_USERS_12),
}
# Enrollment roles of the 1.1 and 1.2 vocabularies; everyone but a student teaches or assists.
_ENROLLMENT_ROLES = frozenset({"student", "teacher", "administrator", "proctor", "aide"})
_ROLE_BY_FOLDED = {r.lower(): r for r in KNOWN_ROLES}
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}
_MANIFEST_MODES = ("bulk", "delta", "absent")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the roster. ``str()`` is ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str
    kind: ProblemKind = "error"

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
class RosterLoad:
    roster: Roster
    problems: list[Problem]


def load_roster(directory: str | Path, *, today: date | None = None) -> RosterLoad:
    """Read a OneRoster 1.1 or 1.2 bulk CSV export from ``directory``.

    ``today`` bounds birthDates (a later one is skipped); it defaults to the current date.
    Raises ``RosterError`` when the roster must be rejected whole.
    """
    return _Loader(Path(directory), today or date.today()).load()


class _User:
    """A users.csv row on its way to becoming a Person."""

    __slots__ = (
        "sid",
        "line",
        "username",
        "role",
        "orgs",
        "grades",
        "given",
        "family",
        "primary_org",
        "roles",
        "birth",
        "classes",
    )

    def __init__(self, sid: str, line: int) -> None:
        self.sid = sid
        self.line = line
        self.username = ""
        self.role = ""
        self.orgs: list[str] = []
        self.grades: tuple[str, ...] = ()
        self.given = ""
        self.family = ""
        self.primary_org = ""
        self.roles: list[tuple[str, str, int]] = []  # (roleType, role, roles.csv line), 1.2
        self.birth: date | None = None
        self.classes: list[str] = []


class _Table:
    """A CSV file whose header passed: streams ``(line, fields)`` per record.

    Rows are read from the open file rather than from its whole text, so a 300,000-row
    enrollments.csv never sits in memory at once.
    """

    def __init__(self, loader: _Loader, path: Path, header: list[str]) -> None:
        self.loader = loader
        self.file = path
        self.path = str(path)
        self.col = {name: i for i, name in enumerate(header)}
        self.width = len(header)

    def get(self, name: str) -> int | None:
        return self.col.get(name)

    def records(self) -> Iterator[tuple[int, list[str]]]:
        start = 1
        with self.file.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                next(reader)  # the header, checked already
                start = reader.line_num + 1
                for row in reader:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        start = reader.line_num + 1
                        continue  # blank line
                    if len(row) != self.width:
                        hint = " (an unquoted comma in a value?)" if len(row) > self.width else ""
                        self.loader.error(
                            self.path,
                            start,
                            "row",
                            f"has {len(row)} fields but the header has {self.width}{hint}",
                        )
                        return  # the rest of a misaligned file cannot be trusted
                    yield start, row
                    start = reader.line_num + 1
            except csv.Error as e:
                self.loader.error(self.path, start, "row", f"malformed CSV: {e}")
            except UnicodeDecodeError:
                self.loader.not_utf8(self.file)

    def first_line_of(self, column: int, value: str) -> int | None:
        """The line of the first row whose ``column`` is ``value`` (to report a repeat)."""
        for line, row in self.records():
            if row[column].strip() == value:
                return line
        return None


class _Loader:
    def __init__(self, directory: Path, today: date) -> None:
        self.dir = directory
        self.today = today
        self.problems: list[Problem] = []
        self.digest = hashlib.sha256()
        self.version = "1.1"
        self.manifest: dict[str, str] = {}  # file name → bulk | absent
        self.orgs: dict[str, str] = {}  # sourcedId → type
        self.schools: dict[str, School] = {}
        self.sessions: set[str] = set()  # every academicSessions.csv sourcedId
        self.sessions_read = False  # academicSessions.csv read: class terms can be checked
        self.users: dict[str, _User] = {}
        self.gone_users: set[str] = set()  # disabled, deleted or skipped: references are quiet
        self.gone_orgs: set[str] = set()
        self.gone_classes: set[str] = set()
        self.disabled = 0
        self.aliases: dict[str, tuple[str, str, int]] = {}  # username → (user, file, line)
        self.class_rows: dict[str, tuple[str, str]] = {}  # sourcedId → (title, school)
        # class sourcedId → (that same string, teachers, students): people's class tuples share
        # one string per class instead of one per enrollment row
        self.class_members: dict[str, tuple[str, list[str], list[str]]] = {}

    # -- problems ---------------------------------------------------------------------------

    def error(self, file: str, line: int | None, fld: str, message: str) -> None:
        self.problems.append(Problem(file, line, fld, message, "error"))

    def warn(self, file: str, line: int | None, fld: str, message: str) -> None:
        self.problems.append(Problem(file, line, fld, message, "warning"))

    def skip(self, file: str, line: int | None, fld: str, message: str) -> None:
        self.problems.append(Problem(file, line, fld, message, "skipped"))

    def has_errors(self) -> bool:
        return any(p.kind == "error" for p in self.problems)

    # -- driver -----------------------------------------------------------------------------

    def load(self) -> RosterLoad:
        if not self.dir.is_dir():
            raise RosterError(
                str(self.dir), [Problem(str(self.dir), None, "", "is not a directory")]
            )
        self.read_manifest()
        if self.has_errors():
            raise self.rejected()
        specs = _specs(self.version)
        if self.version == "1.2" and not (self.dir / "roles.csv").exists():
            self.error(
                str(self.dir / "roles.csv"),
                None,
                "",
                "missing: a OneRoster 1.2 roster gives each user's role in roles.csv",
            )
        if (self.dir / "enrollments.csv").exists() and not (self.dir / "classes.csv").exists():
            self.error(
                str(self.dir / "classes.csv"),
                None,
                "",
                "missing: enrollments.csv refers to classes defined there",
            )
        steps: list[tuple[str, Callable[[_Table], None]]] = [
            ("orgs.csv", self.read_orgs),
            ("academicSessions.csv", self.read_sessions),
            ("users.csv", self.read_users),
            ("roles.csv", self.read_roles),
            ("demographics.csv", self.read_demographics),
            ("userProfiles.csv", self.read_profiles),
            ("classes.csv", self.read_classes),
            ("enrollments.csv", self.read_enrollments),
        ]
        for name, read in steps:
            spec = specs.get(name)
            if spec is None:
                continue
            table = self.open_table(spec)
            # After an error the roster is lost: later files only get their headers checked,
            # so the report lists structural errors, not a cascade of unknown references.
            if table is not None and not self.has_errors():
                read(table)
        if self.has_errors():
            raise self.rejected()
        return RosterLoad(self.build(), self.problems)

    def rejected(self) -> RosterError:
        order = {"error": 0, "warning": 1, "skipped": 2}
        return RosterError(str(self.dir), sorted(self.problems, key=lambda p: order[p.kind]))

    # -- files ------------------------------------------------------------------------------

    def not_utf8(self, path: Path) -> None:
        data = path.read_bytes()
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            line = body.count(b"\n", 0, e.start) + 1
            self.error(
                str(path),
                line,
                "encoding",
                f"byte 0x{body[e.start]:02x} is not UTF-8: export the file as UTF-8",
            )

    def read_header(self, path: Path) -> list[str] | None:
        """The header row (stripped names), [] for an empty file, None after an error."""
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").digest()
        self.digest.update(f"{path.name}\0".encode() + digest)
        try:
            with path.open(encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f, strict=True), [])
        except UnicodeDecodeError:
            self.not_utf8(path)
            return None
        except csv.Error as e:
            self.error(str(path), 1, "header", f"cannot be read as CSV: {e}")
            return None
        header = [h.strip() for h in header]
        return header if any(header) else []

    def read_manifest(self) -> None:
        path = self.dir / "manifest.csv"
        if not path.exists():
            self.warn(str(path), None, "", "missing: assuming a bulk export, version from headers")
            self.version = self.guess_version()
            return
        header = self.read_header(path)
        if header is None:
            return
        if not header:
            self.error(str(path), None, "", "is empty")
            return
        if not self.check_header(
            path, header, ("propertyName", "value"), ("propertyName", "value")
        ):
            return
        table = _Table(self, path, header)
        name_i, value_i = table.col["propertyName"], table.col["value"]
        seen: dict[str, int] = {}
        version_line: int | None = None
        for line, row in table.records():
            prop, value = row[name_i].strip(), row[value_i].strip()
            if prop in seen:
                self.error(table.path, line, prop, f"repeated (first on line {seen[prop]})")
                continue
            seen[prop] = line
            if prop == "oneroster.version":
                version_line = line
                if value not in VERSIONS:
                    self.error(
                        table.path, line, prop, f"'{value}' is not supported (expected 1.1 or 1.2)"
                    )
                else:
                    self.version = value
            elif prop.startswith("file."):
                mode = value.lower()
                if mode == "delta":
                    self.error(
                        table.path,
                        line,
                        prop,
                        "delta imports are not supported yet: export a bulk roster",
                    )
                elif mode not in _MANIFEST_MODES:
                    self.error(
                        table.path, line, prop, f"'{value}' is not one of bulk, delta, absent"
                    )
                else:
                    self.manifest[prop[5:] + ".csv"] = mode
        if version_line is None and not self.has_errors():
            self.warn(table.path, None, "oneroster.version", "missing: version taken from headers")
            self.version = self.guess_version()

    def guess_version(self) -> str:
        users = self.dir / "users.csv"
        try:
            with users.open(encoding="utf-8-sig", errors="replace", newline="") as f:
                first = f.readline()
        except OSError:
            return "1.1"
        header = {h.strip() for h in first.split(",")}
        if "role" not in header and (self.dir / "roles.csv").exists():
            return "1.2"
        return "1.1"

    def open_table(self, spec: _Spec) -> _Table | None:
        path = self.dir / spec.name
        mode = self.manifest.get(spec.name)
        required_file = spec.name in ("orgs.csv", "users.csv")
        if not path.exists():
            if required_file:
                self.error(str(path), None, "", "missing: a OneRoster roster needs this file")
            elif mode == "bulk":
                self.error(str(path), None, "", "missing, but manifest.csv lists it as bulk")
            elif spec.name == "demographics.csv":
                self.warn(str(path), None, "", "missing: every birthDate is unknown")
            return None
        if mode == "absent":
            self.warn(str(path), None, "", "present although manifest.csv marks it absent: read")
        header = self.read_header(path)
        if header is None:
            return None
        if not header:
            if required_file or spec.name == "roles.csv":
                self.error(str(path), None, "", "is empty")
            else:
                note = "; every birthDate is unknown" if spec.name == "demographics.csv" else ""
                self.skip(str(path), None, "", f"is empty: skipped{note}")
            return None
        if not self.check_header(path, header, spec.required, spec.known):
            return None
        return _Table(self, path, header)

    def check_header(
        self, path: Path, header: list[str], required: tuple[str, ...], known: tuple[str, ...]
    ) -> bool:
        """Check a header row: False after an error (missing or repeated column, delimiter)."""
        file = str(path)
        if len(header) == 1:
            for delim, label in _DELIMITERS.items():
                if delim in header[0]:
                    self.error(
                        file,
                        1,
                        "header",
                        f"fields are separated by {label}: OneRoster CSV uses commas",
                    )
                    return False
        counts = Counter(h for h in header if h)
        repeated = [name for name, n in counts.items() if n > 1]
        for name in repeated:
            self.error(file, 1, name, f"column appears {counts[name]} times")
        present = set(header)
        missing = [c for c in required if c not in present]
        unknown = [h for h in header if h not in known and not h.startswith("metadata.")]
        for col in missing:
            near = _near(col, unknown)
            hint = f" (found '{near}': did you mean '{col}'?)" if near else ""
            self.error(file, 1, col, f"required column is missing{hint}")
        if missing or repeated:
            return False
        other = _OTHER_VERSION_USERS[self.version] if path.name == "users.csv" else set()
        absent_known = [k for k in known if k not in present]
        for h in unknown:
            if not h:
                self.warn(file, 1, "header", "a column has no name: ignored")
            elif h in other:
                self.warn(
                    file, 1, h, f"is not a OneRoster {self.version} users.csv column: ignored"
                )
            elif near := _near(h, absent_known):
                self.warn(file, 1, h, f"unrecognised column: did you mean '{near}'? Ignored")
            else:
                self.warn(file, 1, h, "unrecognised column: ignored")
        return True

    # -- entities ---------------------------------------------------------------------------

    def unique(self, t: _Table, seen: set[str], sid: str, line: int) -> bool:
        """Register a sourcedId; an empty one skips the row, a repeated one rejects the file."""
        if not sid:
            self.skip(t.path, line, "sourcedId", "is empty: row skipped")
            return False
        if sid in seen:
            # A set, not a dict of lines, keeps 300,000 enrollment ids small; the first line is
            # looked up again only when there is something to report.
            first = t.first_line_of(t.col["sourcedId"], sid)
            self.error(t.path, line, "sourcedId", f"'{sid}' repeats (first on line {first})")
            return False
        seen.add(sid)
        return True

    def status_gone(self, t: _Table, row: list[str], line: int) -> bool | None:
        """True if the row is marked tobedeleted, None if its status is invalid (skipped)."""
        i = t.get("status")
        status = row[i].strip() if i is not None else ""
        if status in ("", "active"):
            return False
        if status == "tobedeleted":
            return True
        self.skip(t.path, line, "status", f"'{status}' is not active or tobedeleted: row skipped")
        return None

    def read_orgs(self, t: _Table) -> None:
        seen: set[str] = set()
        sid_i, name_i, type_i = t.col["sourcedId"], t.col["name"], t.col["type"]
        ident_i = t.get("identifier")
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            gone = self.status_gone(t, row, line)
            if gone is not False:
                self.gone_orgs.add(sid)
                continue
            kind = row[type_i].strip().lower()
            self.orgs[sid] = kind
            if kind == "school":
                ident = row[ident_i].strip() if ident_i is not None else ""
                self.schools[sid] = School(sid, row[name_i].strip(), ident, kind)

    def read_sessions(self, t: _Table) -> None:
        """Academic sessions are only checked: their dates, and that classes name real ones."""
        self.sessions_read = True
        sid_i = t.col["sourcedId"]
        date_cols = [(col, i) for col in ("startDate", "endDate") if (i := t.get(col)) is not None]
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, self.sessions, sid, line):
                continue
            for col, i in date_cols:
                if value := row[i].strip():
                    _, message = _parse_date(value)
                    if message:
                        self.skip(t.path, line, col, f"{message}: date ignored")

    def org_ref(self, t: _Table, line: int, col: str, ref: str, what: str) -> str | None:
        """Resolve an org reference: the school's sourcedId, or None (with a problem if unknown)."""
        if ref in self.orgs:
            return ref if ref in self.schools else None
        if ref not in self.gone_orgs:
            self.skip(t.path, line, col, f"unknown org '{ref}' (not in orgs.csv): {what}")
        return None

    def read_users(self, t: _Table) -> None:
        seen: set[str] = set()
        v11 = self.version == "1.1"
        c = t.col
        sid_i, enabled_i, user_i = c["sourcedId"], c["enabledUser"], c["username"]
        given_i, family_i, grades_i = c["givenName"], c["familyName"], t.get("grades")
        role_i, orgs_i = t.get("role"), t.get("orgSourcedIds")
        primary_i = t.get("primaryOrgSourcedId")
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            gone = self.status_gone(t, row, line)
            enabled = row[enabled_i].strip().lower()
            if gone is None or enabled not in ("true", "false", ""):
                if gone is not None:
                    self.skip(
                        t.path,
                        line,
                        "enabledUser",
                        f"'{row[enabled_i].strip()}' is not true or false: user skipped",
                    )
                self.gone_users.add(sid)
                continue
            if gone or enabled == "false":
                self.disabled += 1
                self.gone_users.add(sid)
                continue
            user = _User(sid, line)
            user.username = row[user_i].strip()
            user.given = row[given_i].strip()
            user.family = row[family_i].strip()
            if grades_i is not None:
                user.grades = _split_list(row[grades_i])
            if v11 and role_i is not None and orgs_i is not None:
                role = self.role(t, line, "role", row[role_i].strip(), "user skipped")
                if role is None:
                    self.gone_users.add(sid)
                    continue
                user.role = role
                for ref in _split_list(row[orgs_i]):
                    school = self.org_ref(t, line, "orgSourcedIds", ref, "reference dropped")
                    if school is not None and school not in user.orgs:
                        user.orgs.append(school)
            elif primary_i is not None and (ref := row[primary_i].strip()):
                user.primary_org = (
                    self.org_ref(t, line, "primaryOrgSourcedId", ref, "reference dropped") or ""
                )
            self.users[sid] = user

    def role(self, t: _Table, line: int, col: str, value: str, what: str) -> str | None:
        role = _ROLE_BY_FOLDED.get(value.lower())
        if role is None:
            near = _near(value, sorted(KNOWN_ROLES))
            hint = f" (did you mean '{near}'?)" if near else ""
            self.skip(t.path, line, col, f"unknown role '{value}'{hint}: {what}")
        return role

    def user_ref(self, t: _Table, line: int, col: str, ref: str, what: str) -> _User | None:
        user = self.users.get(ref)
        if user is None and ref not in self.gone_users:
            self.skip(t.path, line, col, f"unknown user '{ref}' (not in users.csv): {what}")
        return user

    def read_roles(self, t: _Table) -> None:
        seen: set[str] = set()
        c = t.col
        sid_i, user_i, type_i = c["sourcedId"], c["userSourcedId"], c["roleType"]
        role_i, org_i = c["role"], c["orgSourcedId"]
        for line, row in t.records():
            if not self.unique(t, seen, row[sid_i].strip(), line):
                continue
            if self.status_gone(t, row, line) is not False:
                continue
            user = self.user_ref(t, line, "userSourcedId", row[user_i].strip(), "row skipped")
            if user is None:
                continue
            role_type = row[type_i].strip().lower()
            if role_type not in ("primary", "secondary"):
                self.skip(
                    t.path,
                    line,
                    "roleType",
                    f"'{row[type_i].strip()}' is not primary or secondary: row skipped",
                )
                continue
            role = self.role(t, line, "role", row[role_i].strip(), "row skipped")
            if role is None:
                continue
            user.roles.append((role_type, role, line))
            if ref := row[org_i].strip():
                school = self.org_ref(t, line, "orgSourcedId", ref, "reference dropped")
                if school is not None and school not in user.orgs:
                    user.orgs.append(school)

    def read_demographics(self, t: _Table) -> None:
        seen: set[str] = set()
        sid_i, birth_i = t.col["sourcedId"], t.get("birthDate")
        if birth_i is None:
            self.warn(t.path, 1, "birthDate", "column is missing: every birthDate is unknown")
            return
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            if self.status_gone(t, row, line) is not False:
                continue
            user = self.user_ref(t, line, "sourcedId", sid, "row skipped")
            value = row[birth_i].strip()
            if user is None or not value:
                continue
            birth, message = _parse_date(value)
            if birth is None:
                self.skip(t.path, line, "birthDate", f"{message}: birthDate unknown")
            elif birth > self.today:
                self.skip(
                    t.path,
                    line,
                    "birthDate",
                    f"{value} is in the future (after {self.today}): birthDate unknown",
                )
            else:
                user.birth = birth

    def read_profiles(self, t: _Table) -> None:
        seen: set[str] = set()
        sid_i, user_i, name_i = t.col["sourcedId"], t.col["userSourcedId"], t.get("username")
        for line, row in t.records():
            if not self.unique(t, seen, row[sid_i].strip(), line):
                continue
            if self.status_gone(t, row, line) is not False:
                continue
            user = self.user_ref(t, line, "userSourcedId", row[user_i].strip(), "row skipped")
            alias = row[name_i].strip().lower() if name_i is not None else ""
            if user is not None and alias:
                self.aliases.setdefault(alias, (user.sid, t.path, line))

    def read_classes(self, t: _Table) -> None:
        seen: set[str] = set()
        sid_i, title_i, school_i = t.col["sourcedId"], t.col["title"], t.col["schoolSourcedId"]
        terms_i = t.get("termSourcedIds")
        check_terms = terms_i is not None and self.sessions_read
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            if self.status_gone(t, row, line) is not False:
                self.gone_classes.add(sid)
                continue
            school: str | None = None
            if ref := row[school_i].strip():
                school = self.org_ref(t, line, "schoolSourcedId", ref, "class kept without school")
                if school is None and ref in self.orgs:
                    self.skip(
                        t.path,
                        line,
                        "schoolSourcedId",
                        f"org '{ref}' is a {self.orgs[ref]}, not a school: "
                        "class kept without school",
                    )
            if check_terms and terms_i is not None:
                for term in _split_list(row[terms_i]):
                    if term not in self.sessions:
                        self.skip(
                            t.path,
                            line,
                            "termSourcedIds",
                            f"unknown academic session '{term}': reference dropped",
                        )
            self.class_rows[sid] = (row[title_i].strip(), school or "")
            self.class_members[sid] = (sid, [], [])

    def read_enrollments(self, t: _Table) -> None:
        seen: set[str] = set()
        c = t.col
        sid_i, class_i, school_i = c["sourcedId"], c["classSourcedId"], c["schoolSourcedId"]
        user_i, role_i = c["userSourcedId"], c["role"]
        members, gone_classes = self.class_members, self.gone_classes
        for line, row in t.records():
            if not self.unique(t, seen, row[sid_i].strip(), line):
                continue
            if self.status_gone(t, row, line) is not False:
                continue
            class_id = row[class_i].strip()
            member = members.get(class_id)
            if member is None:
                if class_id not in gone_classes:
                    self.skip(
                        t.path,
                        line,
                        "classSourcedId",
                        f"unknown class '{class_id}' (not in classes.csv): row skipped",
                    )
                continue
            user = self.user_ref(t, line, "userSourcedId", row[user_i].strip(), "row skipped")
            if user is None:
                continue
            role = row[role_i].strip()
            if role not in _ENROLLMENT_ROLES:
                allowed = ", ".join(sorted(_ENROLLMENT_ROLES))
                self.skip(
                    t.path,
                    line,
                    "role",
                    f"unknown enrollment role '{role}' (expected {allowed}): row skipped",
                )
                continue
            class_id, teachers, students = member
            (students if role == "student" else teachers).append(user.sid)
            if class_id not in user.classes:
                user.classes.append(class_id)
            if ref := row[school_i].strip():
                school = self.org_ref(t, line, "schoolSourcedId", ref, "reference dropped")
                if school is not None and school not in user.orgs:
                    user.orgs.append(school)

    # -- result -----------------------------------------------------------------------------

    def resolve_role(self, user: _User) -> str | None:
        """A 1.2 user's role from roles.csv: the primary one; disagreeing primaries fail safe."""
        users_csv = str(self.dir / "users.csv")
        if not user.roles:
            self.skip(users_csv, user.line, "role", "user has no role in roles.csv: user skipped")
            return None
        primaries = [r for kind, r, _ in user.roles if kind == "primary"] or [user.roles[0][1]]
        distinct = list(dict.fromkeys(primaries))
        if len(distinct) > 1:
            # A wrong 'staff' would lift the age rules from a child; a wrong 'student' only
            # restricts an adult, so a conflict resolves to student.
            chosen = "student" if "student" in distinct else distinct[0]
            self.warn(
                str(self.dir / "roles.csv"),
                user.roles[0][2],
                "role",
                f"user '{user.sid}' has primary roles {', '.join(distinct)}: using {chosen}",
            )
            return chosen
        return distinct[0]

    def build(self) -> Roster:
        people: dict[str, Person] = {}
        by_username: dict[str, Person] = {}
        username_line: dict[str, int] = {}
        ambiguous: set[str] = set()
        users_csv = str(self.dir / "users.csv")
        for user in self.users.values():
            role = user.role if self.version == "1.1" else self.resolve_role(user)
            if role is None:
                continue
            schools = user.orgs
            if user.primary_org:
                schools = [user.primary_org, *(s for s in schools if s != user.primary_org)]
            person = Person(
                sourced_id=user.sid,
                username=user.username,
                role=role,
                schools=tuple(schools),
                grades=user.grades,
                birth_date=user.birth,
                given_name=user.given,
                family_name=user.family,
                classes=tuple(user.classes),
            )
            people[user.sid] = person
            key = user.username.lower()
            if not key:
                continue
            if key in username_line:
                # Two people behind one login name: attributing traffic to either could apply
                # the wrong age rule, so neither is found by it (unknown → the strict default).
                self.skip(
                    users_csv,
                    user.line,
                    "username",
                    f"'{user.username}' is also the username on line {username_line[key]}: "
                    "neither is looked up by it",
                )
                ambiguous.add(key)
                by_username.pop(key, None)
                continue
            username_line[key] = user.line
            by_username[key] = person
        for alias, (sid, file, line) in self.aliases.items():
            person_for_alias = people.get(sid)
            if person_for_alias is None or alias in ambiguous:
                continue
            owner = by_username.get(alias)
            if owner is None:
                by_username[alias] = person_for_alias
            elif owner.sourced_id != sid:
                self.warn(
                    file,
                    line,
                    "username",
                    f"'{alias}' is the username of '{owner.sourced_id}': alias ignored",
                )

        classes: dict[str, ClassSection] = {}
        for sid, (title, school) in self.class_rows.items():
            _, teachers, students = self.class_members[sid]
            classes[sid] = ClassSection(
                sourced_id=sid,
                title=title,
                school=school,
                teachers=tuple(p for p in dict.fromkeys(teachers) if p in people),
                students=tuple(p for p in dict.fromkeys(students) if p in people),
            )
        return Roster(
            people=people,
            by_username=by_username,
            schools=dict(self.schools),
            classes=classes,
            version=self.digest.hexdigest()[:12],
            source=str(self.dir),
            oneroster_version=self.version,
            disabled=self.disabled,
        )


def _near(word: str, candidates: list[str]) -> str | None:
    """The candidate ``word`` looks like a misspelling of (case-insensitive), if any."""
    folded = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.75)
    return folded[match[0]] if match else None


def _split_list(value: str) -> tuple[str, ...]:
    """A OneRoster list field: comma-separated inside one (quoted) CSV field."""
    if not value:
        return ()
    return tuple(dict.fromkeys(p for p in (v.strip() for v in value.split(",")) if p))


def _parse_date(value: str) -> tuple[date | None, str]:
    """An ISO 8601 date (a dateTime's date part is accepted) or None and why not."""
    m = _DATE_RE.fullmatch(value)
    if m is None:
        return None, f"'{value}' is not a date (expected YYYY-MM-DD)"
    try:
        return date(int(m[1]), int(m[2]), int(m[3])), ""
    except ValueError:
        return None, f"'{value}' is not a real date"


__all__ = [
    "Problem",
    "ProblemKind",
    "Roster",
    "RosterCounts",
    "RosterError",
    "RosterLoad",
    "load_roster",
]
