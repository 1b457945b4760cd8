"""OneRoster 1.1 / 1.2 bulk CSV import: who the people are, their schools, classes and birthdates.

A roster is a directory of the CSV files a student information system exports. The whole roster
is rejected (``RosterError``) when a file is structurally broken: a required file or column is
missing, the file is not comma-separated UTF-8 CSV, a row has the wrong number of fields, a
sourcedId repeats within a file, or the manifest announces a delta export. Bad values inside an
otherwise sound file only drop that row or field, each with a precise ``Problem``.

Three steps, one module each: :mod:`~monitor.people.roster.tables` reads and validates the files,
:mod:`~monitor.people.roster.references` reads their rows and resolves references between them,
:mod:`~monitor.people.roster.build` builds the :class:`Roster`. Imports only
:mod:`monitor.model` and :mod:`monitor.yamlfile` (which shortens values quoted in messages).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from monitor.people.roster.build import build_roster
from monitor.people.roster.model import (
    Problem,
    ProblemKind,
    Roster,
    RosterCounts,
    RosterError,
    RosterLoad,
)
from monitor.people.roster.references import Rows
from monitor.people.roster.tables import Export, Problems, Table, specs


def load_roster(directory: str | Path, *, today: date | None = None) -> RosterLoad:
    """Read a OneRoster 1.1 or 1.2 bulk CSV export from ``directory``.

    ``today`` bounds birthDates (a later one is skipped); it defaults to the current date.
    Raises ``RosterError`` when the roster must be rejected whole.
    """
    where = Path(directory)
    if not where.is_dir():
        raise RosterError(str(where), [Problem(str(where), None, "", "is not a directory")])
    problems = Problems()
    export = Export(where, problems)
    export.read_manifest()
    if problems.has_errors():
        raise problems.rejected(str(where))
    if export.version == "1.2" and not (where / "roles.csv").exists():
        problems.error(
            str(where / "roles.csv"),
            None,
            "",
            "missing: a OneRoster 1.2 roster gives each user's role in roles.csv",
        )
    if (where / "enrollments.csv").exists() and not (where / "classes.csv").exists():
        problems.error(
            str(where / "classes.csv"),
            None,
            "",
            "missing: enrollments.csv refers to classes defined there",
        )
    rows = Rows(problems, export.version, today or date.today())
    steps: list[tuple[str, Callable[[Table], None]]] = [
        ("orgs.csv", rows.read_orgs),
        ("academicSessions.csv", rows.read_sessions),
        ("users.csv", rows.read_users),
        ("roles.csv", rows.read_roles),
        ("demographics.csv", rows.read_demographics),
        ("userProfiles.csv", rows.read_profiles),
        ("classes.csv", rows.read_classes),
        ("enrollments.csv", rows.read_enrollments),
    ]
    files = specs(export.version)
    for name, read in steps:
        spec = files.get(name)
        if spec is None:
            continue
        table = export.open_table(spec)
        # After an error the roster is lost: later files only get their headers checked,
        # so the report lists structural errors, not a cascade of unknown references.
        if table is not None and not problems.has_errors():
            read(table)
    if problems.has_errors():
        raise problems.rejected(str(where))
    return RosterLoad(build_roster(export, rows), problems.items)


__all__ = [
    "Problem",
    "ProblemKind",
    "Roster",
    "RosterCounts",
    "RosterError",
    "RosterLoad",
    "load_roster",
]
