"""Reading one export directory whose manifest was read into a :class:`RosterLoad`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from monitor.people.roster.build import build_roster
from monitor.people.roster.model import RosterLoad
from monitor.people.roster.references import Rows
from monitor.people.roster.tables import Export, Problems, Table, specs


def read_export(export: Export, problems: Problems, today: date) -> RosterLoad:
    """Read the files of a bulk export (its manifest read already) and build the Roster.

    Raises ``RosterError`` when the roster must be rejected whole.
    """
    where = export.dir
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
    rows = Rows(problems, export.version, today)
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
    roster = build_roster(export, rows)
    return RosterLoad(roster, problems.final())
