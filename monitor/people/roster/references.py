"""Reading each file's rows and resolving the references between files.

Rows are read in dependency order (orgs, sessions, users, roles, demographics, profiles,
classes, enrollments), so every reference points back at something already read: an org a user
belongs to, the user a birthDate is for, the class an enrollment is in. A bad value or an
unknown reference skips that row or field with a precise problem; only a repeated sourcedId
(which makes every reference to it ambiguous) is an error.
"""

from __future__ import annotations

from datetime import date

from monitor.model import KNOWN_ROLES, School
from monitor.people.roster.tables import Problems, Table, closest
from monitor.people.roster.values import DateColumn, read_boolean, read_status
from monitor.yamlfile import shorten

# Enrollment roles of the 1.1 and 1.2 vocabularies; everyone but a student teaches or assists.
_ENROLLMENT_ROLES = frozenset({"student", "teacher", "administrator", "proctor", "aide"})
_ROLE_BY_FOLDED = {r.lower(): r for r in KNOWN_ROLES}


class UserRow:
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
        "email",
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
        self.email = ""


class Rows:
    """The rows of one export, with their references resolved, on their way to a Roster."""

    def __init__(self, problems: Problems, version: str, today: date) -> None:
        self.problems = problems
        self.version = version
        self.today = today
        self.orgs: dict[str, str] = {}  # sourcedId → type
        self.schools: dict[str, School] = {}
        self.sessions: set[str] = set()  # every academicSessions.csv sourcedId
        self.sessions_read = False  # academicSessions.csv read: class terms can be checked
        self.users: dict[str, UserRow] = {}
        self.gone_users: set[str] = set()  # disabled, deleted or skipped: references are quiet
        self.gone_orgs: set[str] = set()
        self.gone_classes: set[str] = set()
        self.disabled = 0
        self.aliases: dict[str, tuple[str, str, int]] = {}  # username → (user, file, line)
        self.class_rows: dict[str, tuple[str, str]] = {}  # sourcedId → (title, school)
        # class sourcedId → (that same string, teachers, students): people's class tuples share
        # one string per class instead of one per enrollment row
        self.class_members: dict[str, tuple[str, list[str], list[str]]] = {}

    def unique(self, t: Table, seen: set[str], sid: str, line: int) -> bool:
        """Register a sourcedId; an empty one skips the row, a repeated one rejects the file."""
        if not sid:
            self.problems.skip(t.path, line, "sourcedId", "is empty: row skipped")
            return False
        if sid in seen:
            # A set, not a dict of lines, keeps 300,000 enrollment ids small; the first line is
            # looked up again only when there is something to report.
            first = t.first_line_of(t.col["sourcedId"], sid)
            self.problems.error(
                t.path, line, "sourcedId", f"'{shorten(sid)}' repeats (first on line {first})"
            )
            return False
        seen.add(sid)
        return True

    def status_gone(self, t: Table, row: list[str], line: int) -> bool | None:
        """True if the row is marked tobedeleted, None if its status is invalid (skipped)."""
        i = t.get("status")
        status = row[i].strip() if i is not None else ""
        if status in ("", "active"):
            return False
        if status == "tobedeleted":
            return True
        read = read_status(t, line, status)
        if read is not None:
            return read == "tobedeleted"
        self.problems.skip(
            t.path, line, "status", f"'{shorten(status)}' is not active or tobedeleted: row skipped"
        )
        return None

    def read_orgs(self, t: Table) -> None:
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

    def read_sessions(self, t: Table) -> None:
        """Academic sessions are only checked: their dates, and that classes name real ones."""
        self.sessions_read = True
        sid_i = t.col["sourcedId"]
        date_cols = [
            (DateColumn[None](self.problems, t, col, "date ignored"), i)
            for col in ("startDate", "endDate")
            if (i := t.get(col)) is not None
        ]
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, self.sessions, sid, line):
                continue
            for dates, i in date_cols:
                if value := row[i].strip():
                    dates.read(line, value, None)
        for dates, _ in date_cols:
            dates.finish()

    def org_ref(self, t: Table, line: int, col: str, ref: str, what: str) -> str | None:
        """Resolve an org reference: the school's sourcedId, or None (with a problem if unknown)."""
        if ref in self.orgs:
            return ref if ref in self.schools else None
        if ref not in self.gone_orgs:
            self.problems.skip(
                t.path, line, col, f"unknown org '{shorten(ref)}' (not in orgs.csv): {what}"
            )
        return None

    def read_users(self, t: Table) -> None:
        seen: set[str] = set()
        v11 = self.version == "1.1"
        c = t.col
        sid_i, enabled_i, user_i = c["sourcedId"], c["enabledUser"], c["username"]
        given_i, family_i, grades_i = c["givenName"], c["familyName"], t.get("grades")
        role_i, orgs_i = t.get("role"), t.get("orgSourcedIds")
        primary_i = t.get("primaryOrgSourcedId")
        email_i = t.get("email")
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            gone = self.status_gone(t, row, line)
            enabled = read_boolean(t, line, "enabledUser", row[enabled_i].strip())
            if gone is None or enabled is None:
                if gone is not None:
                    self.problems.skip(
                        t.path,
                        line,
                        "enabledUser",
                        f"'{shorten(row[enabled_i].strip())}' is not true or false: user skipped",
                    )
                self.gone_users.add(sid)
                continue
            if gone or enabled == "false":
                self.disabled += 1
                self.gone_users.add(sid)
                continue
            user = UserRow(sid, line)
            user.username = row[user_i].strip()
            user.given = row[given_i].strip()
            user.family = row[family_i].strip()
            if email_i is not None:
                user.email = row[email_i].strip().lower()
            if grades_i is not None:
                user.grades = split_list(row[grades_i])
            if v11 and role_i is not None and orgs_i is not None:
                role = self.role(t, line, "role", row[role_i].strip(), "user skipped")
                if role is None:
                    self.gone_users.add(sid)
                    continue
                user.role = role
                for ref in split_list(row[orgs_i]):
                    school = self.org_ref(t, line, "orgSourcedIds", ref, "reference dropped")
                    if school is not None and school not in user.orgs:
                        user.orgs.append(school)
            elif primary_i is not None and (ref := row[primary_i].strip()):
                user.primary_org = (
                    self.org_ref(t, line, "primaryOrgSourcedId", ref, "reference dropped") or ""
                )
            self.users[sid] = user

    def role(self, t: Table, line: int, col: str, value: str, what: str) -> str | None:
        role = _ROLE_BY_FOLDED.get(value.lower())
        if role is None:
            near = closest(value, sorted(KNOWN_ROLES))
            hint = f" (did you mean '{shorten(near)}'?)" if near else ""
            self.problems.skip(t.path, line, col, f"unknown role '{shorten(value)}'{hint}: {what}")
        return role

    def user_ref(self, t: Table, line: int, col: str, ref: str, what: str) -> UserRow | None:
        user = self.users.get(ref)
        if user is None and ref not in self.gone_users:
            self.problems.skip(
                t.path, line, col, f"unknown user '{shorten(ref)}' (not in users.csv): {what}"
            )
        return user

    def read_roles(self, t: Table) -> None:
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
                self.problems.skip(
                    t.path,
                    line,
                    "roleType",
                    f"'{shorten(row[type_i].strip())}' is not primary or secondary: row skipped",
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

    def read_demographics(self, t: Table) -> None:
        seen: set[str] = set()
        sid_i, birth_i = t.col["sourcedId"], t.get("birthDate")
        if birth_i is None:
            self.problems.warn(
                t.path, 1, "birthDate", "column is missing: every birthDate is unknown"
            )
            return
        # The user a row is for: its sourcedId, or userSourcedId where rows have their own ids.
        user_i = t.col.get("userSourcedId", sid_i)
        user_col = "sourcedId" if user_i == sid_i else "userSourcedId"
        dates = DateColumn[UserRow](self.problems, t, "birthDate", "birthDate unknown")
        for line, row in t.records():
            sid = row[sid_i].strip()
            if not self.unique(t, seen, sid, line):
                continue
            if self.status_gone(t, row, line) is not False:
                continue
            user = self.user_ref(t, line, user_col, row[user_i].strip(), "row skipped")
            value = row[birth_i].strip()
            if user is None or not value:
                continue
            birth = dates.read(line, value, user)
            if birth is not None:
                self.set_birth(t, line, value, user, birth)
        for user, line, value, birth in dates.finish():
            self.set_birth(t, line, value, user, birth)

    def set_birth(self, t: Table, line: int, value: str, user: UserRow, birth: date) -> None:
        if birth > self.today:
            self.problems.skip(
                t.path,
                line,
                "birthDate",
                f"{value} is in the future (after {self.today}): birthDate unknown",
            )
        else:
            user.birth = birth

    def read_profiles(self, t: Table) -> None:
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

    def read_classes(self, t: Table) -> None:
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
                    self.problems.skip(
                        t.path,
                        line,
                        "schoolSourcedId",
                        f"org '{shorten(ref)}' is a {self.orgs[ref]}, not a school: "
                        "class kept without school",
                    )
            if check_terms and terms_i is not None:
                for term in split_list(row[terms_i]):
                    if term not in self.sessions:
                        self.problems.skip(
                            t.path,
                            line,
                            "termSourcedIds",
                            f"unknown academic session '{shorten(term)}': reference dropped",
                        )
            self.class_rows[sid] = (row[title_i].strip(), school or "")
            self.class_members[sid] = (sid, [], [])

    def read_enrollments(self, t: Table) -> None:
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
                    self.problems.skip(
                        t.path,
                        line,
                        "classSourcedId",
                        f"unknown class '{shorten(class_id)}' (not in classes.csv): row skipped",
                    )
                continue
            user = self.user_ref(t, line, "userSourcedId", row[user_i].strip(), "row skipped")
            if user is None:
                continue
            role = row[role_i].strip()
            if role not in _ENROLLMENT_ROLES:
                allowed = ", ".join(sorted(_ENROLLMENT_ROLES))
                self.problems.skip(
                    t.path,
                    line,
                    "role",
                    f"unknown enrollment role '{shorten(role)}' (expected {allowed}): row skipped",
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


def split_list(value: str) -> tuple[str, ...]:
    """A OneRoster list field: comma-separated inside one (quoted) CSV field."""
    if not value:
        return ()
    return tuple(dict.fromkeys(p for p in (v.strip() for v in value.split(",")) if p))
