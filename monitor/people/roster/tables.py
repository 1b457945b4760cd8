"""Reading and validating the CSV files of a OneRoster export: manifest, headers, records.

An :class:`Export` is one export directory: its OneRoster version, the files its manifest
announces, each file's header checked against the 1EdTech CSV binding's column lists, and a
content hash. A :class:`Table` streams the records of a file whose header passed. Structural
problems are errors (:class:`Problems`), which reject the whole roster.

Column names follow the 1EdTech OneRoster CSV binding (1.1 CSV tables; 1.2 CSV binding 1.2.1).
1.2 moved a user's roles and organisations out of users.csv into roles.csv.

Exports do not always follow the binding to the letter. A column name in another case, or one of
the alternate names in ``ALIASES``, is read as the OneRoster column with a warning; an empty
``file.*`` value in the manifest is taken from the files present. Anything that could be read
two ways is still an error.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.people.roster.model import Problem, ProblemKind, RosterError
from monitor.yamlfile import clip, shorten

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
class Spec:
    name: str
    known: tuple[str, ...]
    required: tuple[str, ...]


def specs(version: str) -> dict[str, Spec]:
    users = (
        Spec(
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
        else Spec(
            "users.csv",
            _USERS_12,
            ("sourcedId", "enabledUser", "username", "givenName", "familyName"),
        )
    )
    specs = [
        Spec("orgs.csv", _ORGS, ("sourcedId", "name", "type")),
        Spec("academicSessions.csv", _SESSIONS, ("sourcedId", "title", "type")),
        users,
        Spec("demographics.csv", _DEMOGRAPHICS, ("sourcedId",)),
        Spec("classes.csv", _CLASSES, ("sourcedId", "title", "schoolSourcedId")),
        Spec(
            "enrollments.csv",
            _ENROLLMENTS,
            ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
        ),
    ]
    if version == "1.2":
        specs.append(
            Spec(
                "roles.csv",
                _ROLES,
                ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"),
            )
        )
        specs.append(Spec("userProfiles.csv", _PROFILES, ("sourcedId", "userSourcedId")))
    return {s.name: s for s in specs}


# Alternate column names, by file: the name folded to lower case → (the OneRoster column, why).
# Used only when the OneRoster column itself is absent, always with a warning naming both.
# Sources: the 1.1 CSV tables and 1.2 CSV binding (1.2 renamed users' orgs to roles.csv
# orgSourcedId, singular; 1.1 users.csv has orgSourcedIds, plural), the OneRoster 1.0 CSV
# layout (demographics keyed by userSourcedId, 'birthdate' in lower case), and vendor
# documentation collected in tests/oneroster_factory.py (VARIANTS). Names that are merely
# misspelt (userSourceId, brithDate) are not here: a guess at a key column could attach one
# person's birthDate to another, so those stay errors or ignored columns with a suggestion.
ALIASES: dict[str, dict[str, tuple[str, str]]] = {
    "*": {
        "datemodified": ("dateLastModified", "an alternate name of dateLastModified"),
    },
    "demographics.csv": {
        "usersourcedid": (
            "sourcedId",
            "the user's sourcedId, the key of demographics.csv (OneRoster 1.0 layout)",
        ),
        "dateofbirth": ("birthDate", "an alternate name of birthDate"),
        "dob": ("birthDate", "an alternate name of birthDate"),
        "birth_date": ("birthDate", "an alternate name of birthDate"),
    },
    "users.csv": {
        "orgsourcedid": ("orgSourcedIds", "the singular form of orgSourcedIds"),
    },
    "roles.csv": {
        "orgsourcedids": ("orgSourcedId", "the plural form of orgSourcedId"),
    },
    "classes.csv": {
        "orgsourcedid": ("schoolSourcedId", "the class's org, read as its school"),
    },
    "enrollments.csv": {
        "orgsourcedid": ("schoolSourcedId", "the enrollment's org, read as its school"),
    },
}
# Columns read beyond the binding's list: a demographics.csv with both sourcedId and
# userSourcedId (a profile where demographics rows have their own ids) names the user there.
EXTRA: dict[str, tuple[str, ...]] = {"demographics.csv": ("userSourcedId",)}

# Columns that only one version has, to explain a roster whose manifest names the wrong version.
_OTHER_VERSION_USERS = {
    "1.1": set(_USERS_12) - set(_USERS_11),
    "1.2": set(_USERS_11) - set(_USERS_12),
}
_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}
_MANIFEST_MODES = ("bulk", "delta", "absent")
_ORDER = {"error": 0, "warning": 1, "skipped": 2}


class Problems:
    """Everything found wrong while reading one roster, in the order found.

    A deviation that can repeat on every row (``note``) is kept once, on the line of its first
    row, with a count: a 50,000-row file written with TRUE for true makes one warning.
    """

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self._groups: dict[tuple[str, ...], int] = {}  # kind, file, field, topic, group
        self._counts: Counter[int] = Counter()

    def error(self, file: str, line: int | None, fld: str, message: str) -> None:
        self.items.append(Problem(file, line, shorten(fld), clip(message), "error"))

    def warn(self, file: str, line: int | None, fld: str, message: str, topic: str = "") -> None:
        self.items.append(Problem(file, line, shorten(fld), clip(message), "warning", topic))

    def skip(self, file: str, line: int | None, fld: str, message: str, topic: str = "") -> None:
        self.items.append(Problem(file, line, shorten(fld), clip(message), "skipped", topic))

    def note(
        self,
        kind: ProblemKind,
        topic: str,
        file: str,
        line: int | None,
        fld: str,
        message: str,
        group: str = "",
    ) -> None:
        """A deviation of ``topic``: the first per file, field and ``group`` (the form it
        takes, say) is kept, the rest are counted."""
        key = (kind, file, fld, topic, group)
        i = self._groups.get(key)
        if i is not None:
            self._counts[i] += 1
            return
        self._groups[key] = len(self.items)
        self.items.append(Problem(file, line, shorten(fld), clip(message), kind, topic))

    def final(self) -> list[Problem]:
        """The problems, with repeated deviations counted into their first occurrence."""
        out = list(self.items)
        for i, more in self._counts.items():
            p = out[i]
            n = more + 1
            out[i] = replace(p, count=n, message=f"{p.message} (first of {n:,} rows alike)")
        return out

    def unreadable(self, path: Path, e: OSError) -> None:
        self.error(str(path), None, "", f"cannot read file: {e.strerror or e}")

    def has_errors(self) -> bool:
        return any(p.kind == "error" for p in self.items)

    def rejected(self, source: str) -> RosterError:
        return RosterError(source, sorted(self.final(), key=lambda p: _ORDER[p.kind]))


class Table:
    """A CSV file whose header passed: streams ``(line, fields)`` per record.

    Rows are read from the open file rather than from its whole text, so a 300,000-row
    enrollments.csv never sits in memory at once.
    """

    def __init__(
        self,
        problems: Problems,
        path: Path,
        header: list[str],
        col: dict[str, int] | None = None,
    ) -> None:
        self.problems = problems
        self.file = path
        self.path = str(path)
        # ``header``: each column's name, the OneRoster one where it was read as one;
        # ``col``: OneRoster column → index (two names may share a column)
        self.header = header
        self.col = col if col is not None else {name: i for i, name in enumerate(header)}
        self.width = len(header)

    def get(self, name: str) -> int | None:
        return self.col.get(name)

    def records(self) -> Iterator[tuple[int, list[str]]]:
        start = 1
        try:
            f = self.file.open(encoding="utf-8-sig", newline="")
        except OSError as e:
            self.problems.unreadable(self.file, e)
            return
        with f:
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
                        self.problems.error(
                            self.path,
                            start,
                            "row",
                            f"has {len(row)} fields but the header has {self.width}{hint}",
                        )
                        return  # the rest of a misaligned file cannot be trusted
                    yield start, row
                    start = reader.line_num + 1
            except csv.Error as e:
                self.problems.error(self.path, start, "row", f"malformed CSV: {e}")
            except UnicodeDecodeError:
                report_not_utf8(self.problems, self.file)

    def first_line_of(self, column: int, value: str) -> int | None:
        """The line of the first row whose ``column`` is ``value`` (to report a repeat)."""
        for line, row in self.records():
            if row[column].strip() == value:
                return line
        return None


def report_not_utf8(problems: Problems, path: Path) -> None:
    """Report where a file stops being UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.unreadable(path, e)
        return
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        problems.error(
            str(path),
            line,
            "encoding",
            f"byte 0x{body[e.start]:02x} is not UTF-8: export the file as UTF-8",
        )


def export_hash(directory: Path) -> str:
    """A hash of the CSV files at the top of an export directory: their names and contents."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() == ".csv" and path.is_file():
            with path.open("rb") as f:
                digest.update(f"{path.name}\0".encode() + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


class Export:
    """One export directory: version, manifest, headers and a hash of the files read."""

    def __init__(self, directory: Path, problems: Problems) -> None:
        self.dir = directory
        self.problems = problems
        self.digest = hashlib.sha256()
        self.version = "1.1"
        self.manifest: dict[str, str] = {}  # file name → bulk | delta | absent
        self.manifest_lines: dict[str, int] = {}  # file name → its line in manifest.csv

    @property
    def is_delta(self) -> bool:
        """The manifest marks at least one file delta: the export holds changes only."""
        return "delta" in self.manifest.values()

    def regular_file(self, path: Path) -> bool:
        """An existing path is a regular file; else an error (a directory, or a FIFO that
        would block the reader) and False."""
        if path.is_file():
            return True
        what = "a directory" if path.is_dir() else "not a regular file (a FIFO, socket or device?)"
        self.problems.error(str(path), None, "", f"is {what}: expected a CSV file")
        return False

    def read_header(self, path: Path) -> list[str] | None:
        """The header row (stripped names), [] for an empty file, None after an error."""
        if not self.regular_file(path):
            return None
        try:
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").digest()
            self.digest.update(f"{path.name}\0".encode() + digest)
            with path.open(encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f, strict=True), [])
        except UnicodeDecodeError:
            report_not_utf8(self.problems, path)
            return None
        except csv.Error as e:
            self.problems.error(str(path), 1, "header", f"cannot be read as CSV: {e}")
            return None
        except OSError as e:
            self.problems.unreadable(path, e)
            return None
        header = [h.strip() for h in header]
        return header if any(header) else []

    def read_manifest(self) -> None:
        path = self.dir / "manifest.csv"
        if not path.exists():
            self.problems.warn(
                str(path), None, "", "missing: assuming a bulk export, version from headers"
            )
            self.version = self.guess_version()
            return
        header = self.read_header(path)
        if header is None:
            return
        if not header:
            self.problems.error(str(path), None, "", "is empty")
            return
        mapped = self.check_header(
            path, header, ("propertyName", "value"), ("propertyName", "value")
        )
        if mapped is None:
            return
        table = Table(self.problems, path, *mapped)
        name_i, value_i = table.col["propertyName"], table.col["value"]
        seen: dict[str, int] = {}
        version_line: int | None = None
        empty: list[tuple[int, str]] = []
        for line, row in table.records():
            prop, value = row[name_i].strip(), row[value_i].strip()
            if prop in seen:
                self.problems.error(
                    table.path, line, prop, f"repeated (first on line {seen[prop]})"
                )
                continue
            seen[prop] = line
            if prop == "oneroster.version":
                version_line = line
                if value not in VERSIONS:
                    self.problems.error(
                        table.path,
                        line,
                        prop,
                        f"'{shorten(value)}' is not supported (expected 1.1 or 1.2)",
                    )
                else:
                    self.version = value
            elif prop.startswith("file."):
                mode = value.lower()
                if not mode:
                    empty.append((line, prop))
                elif mode not in _MANIFEST_MODES:
                    self.problems.error(
                        table.path,
                        line,
                        prop,
                        f"'{shorten(value)}' is not one of bulk, delta, absent",
                    )
                else:
                    self.manifest[prop[5:] + ".csv"] = mode
                    self.manifest_lines[prop[5:] + ".csv"] = line
        if version_line is None and not self.problems.has_errors():
            self.problems.warn(
                table.path, None, "oneroster.version", "missing: version taken from headers"
            )
            self.version = self.guess_version()
        self.assume_modes(table.path, empty)

    def assume_modes(self, manifest: str, empty: list[tuple[int, str]]) -> None:
        """Give the ``file.*`` entries left empty the mode the files present say: a file that
        is there is bulk, one that is not is absent. In an export with delta files a present
        file could be either (the whole table, or changes only): that is an error."""
        read = specs(self.version)
        delta = self.is_delta
        for line, prop in empty:
            name = prop[5:] + ".csv"
            if name not in read:
                continue  # a file the monitor does not read: its mode changes nothing
            present = (self.dir / name).exists()
            if present and delta:
                self.problems.error(
                    manifest,
                    line,
                    prop,
                    f"is empty, and other files are delta: {name} could be the whole table "
                    "(bulk) or changes only (delta): give its mode",
                )
                continue
            mode = "bulk" if present else "absent"
            self.manifest[name] = mode
            self.manifest_lines[name] = line
            there = "is there" if present else "is not there"
            self.problems.note(
                "warning", "manifest", manifest, line, prop,
                f"is empty: {name} {there}, so it is read as {mode}",
            )  # fmt: skip

    def guess_version(self) -> str:
        users = self.dir / "users.csv"
        if not users.is_file():
            return "1.1"  # its own error comes when it is opened
        try:
            with users.open(encoding="utf-8-sig", errors="replace", newline="") as f:
                first = f.readline()
        except OSError:
            return "1.1"
        header = {h.strip().strip('"').lower() for h in first.split(",")}
        if "role" not in header and (self.dir / "roles.csv").exists():
            return "1.2"
        return "1.1"

    def open_table(self, spec: Spec) -> Table | None:
        """The file of ``spec`` with its header checked, or None (absent, empty or broken).

        In a delta export no file is required: it holds only the tables that changed.
        """
        path = self.dir / spec.name
        mode = self.manifest.get(spec.name)
        part = self.is_delta
        required_file = not part and spec.name in ("orgs.csv", "users.csv")
        if not path.exists():
            if required_file:
                self.problems.error(
                    str(path), None, "", "missing: a OneRoster roster needs this file"
                )
            elif mode in ("bulk", "delta"):
                self.problems.error(
                    str(path), None, "", f"missing, but manifest.csv lists it as {mode}"
                )
            elif spec.name == "demographics.csv" and not part:
                self.problems.warn(str(path), None, "", "missing: every birthDate is unknown")
            return None
        if mode == "absent":
            self.problems.warn(
                str(path), None, "", "present although manifest.csv marks it absent: read"
            )
        header = self.read_header(path)
        if header is None:
            return None
        if not header:
            if required_file or (spec.name == "roles.csv" and not part):
                self.problems.error(str(path), None, "", "is empty")
            else:
                note = "; every birthDate is unknown" if spec.name == "demographics.csv" else ""
                self.problems.skip(str(path), None, "", f"is empty: skipped{note}")
            return None
        mapped = self.check_header(path, header, spec.required, spec.known)
        if mapped is None:
            return None
        return Table(self.problems, path, *mapped)

    def check_header(
        self, path: Path, header: list[str], required: tuple[str, ...], known: tuple[str, ...]
    ) -> tuple[list[str], dict[str, int]] | None:
        """Check a header row and read its names as OneRoster columns: each column's name (the
        OneRoster one where it was read as one) and OneRoster column → index. None after an
        error (a missing or repeated column, another delimiter)."""
        file = str(path)
        if len(header) == 1:
            for delim, label in _DELIMITERS.items():
                if delim in header[0]:
                    self.problems.error(
                        file,
                        1,
                        "header",
                        f"fields are separated by {label}: OneRoster CSV uses commas",
                    )
                    return None
        counts = Counter(h for h in header if h)
        repeated = [name for name, n in counts.items() if n > 1]
        for name in repeated:
            self.problems.error(file, 1, name, f"column appears {counts[name]} times")
        names, col = self.read_names(path, header, known)
        missing = [c for c in required if c not in col]
        mapped = set(col.values())
        unknown = [
            h for i, h in enumerate(header) if i not in mapped and not h.startswith("metadata.")
        ]
        for c in missing:
            near = closest(c, unknown)
            hint = f" (found '{near}': did you mean '{c}'?)" if near else ""
            self.problems.error(file, 1, c, f"required column is missing{hint}")
        if missing or repeated:
            return None
        other = _OTHER_VERSION_USERS[self.version] if path.name == "users.csv" else set()
        absent_known = [k for k in known if k not in col]
        for h in unknown:
            if not h:
                self.problems.warn(file, 1, "header", "a column has no name: ignored")
            elif h in other:
                self.problems.warn(
                    file, 1, h, f"is not a OneRoster {self.version} users.csv column: ignored"
                )
            elif near := closest(h, absent_known):
                self.problems.warn(
                    file, 1, h, f"unrecognised column: did you mean '{near}'? Ignored"
                )
            else:
                self.problems.warn(file, 1, h, "unrecognised column: ignored")
        return names, col

    def read_names(
        self, path: Path, header: list[str], known: tuple[str, ...]
    ) -> tuple[list[str], dict[str, int]]:
        """Match header names to OneRoster columns: exactly, then in another case, then by an
        alternate name (``ALIASES``); each match that is not exact is a warning."""
        file, name = str(path), path.name
        extra = EXTRA.get(name, ())
        columns = (*known, *extra)
        aliases = {**ALIASES["*"], **ALIASES.get(name, {})}
        folded = {c.lower(): c for c in columns}
        names = list(header)
        col: dict[str, int] = {}
        for i, h in enumerate(header):
            if h in columns and h not in col:
                col[h] = i
        for i, h in enumerate(header):
            if i in col.values() or not h:
                continue
            match = folded.get(h.lower())
            if match is not None and match not in col:
                col[match] = i
                names[i] = match
                self.problems.note(
                    "warning", "column", file, 1, h,
                    f"read as '{match}' (OneRoster column names are case-sensitive)",
                )  # fmt: skip
        for i, h in enumerate(header):
            current = names[i] if i in col.values() else None
            if current is not None and current not in extra:
                continue
            alias = aliases.get(h.lower())
            if alias is not None and alias[0] in columns and alias[0] not in col:
                col[alias[0]] = i
                names[i] = alias[0]
                self.problems.note(
                    "warning", "column", file, 1, h, f"read as '{alias[0]}': {alias[1]}"
                )
        user_i = col.get("userSourcedId") if "userSourcedId" in extra else None
        if user_i is not None and col.get("sourcedId", user_i) != user_i:
            self.problems.note(
                "warning", "column", file, 1, "userSourcedId",
                "read as the user the row is for (sourcedId is then the row's own id)",
            )  # fmt: skip
        return names, col


def closest(word: str, candidates: list[str]) -> str | None:
    """The candidate ``word`` looks like a misspelling of (case-insensitive), if any."""
    folded = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.75)
    return folded[match[0]] if match else None
