"""OneRoster 1.1 / 1.2 CSV import: who the people are, their schools, classes and birthdates.

A roster is a directory of the CSV files a student information system exports. The whole roster
is rejected (``RosterError``) when a file is structurally broken: a required file or column is
missing, the file is not comma-separated UTF-8 CSV, a row has the wrong number of fields, or a
sourcedId repeats within a file. Bad values inside an otherwise sound file only drop that row or
field, each with a precise ``Problem``. Common deviations from the binding (a column name in
another case or an alternate one, an empty manifest value, ``TRUE`` for true, a date with a time
part or written M/D/YYYY) are read with a warning that says how.

A delta export (manifest ``file.X=delta``) is applied over a base: the bulk export in the
directory, or the merged roster kept in a state directory (:mod:`~monitor.people.roster.state`).

:mod:`~monitor.people.roster.tables` reads and validates the files (``values`` reads the values
exports write), :mod:`~monitor.people.roster.references` reads their rows and resolves
references between them, :mod:`~monitor.people.roster.build` builds the :class:`Roster`,
:mod:`~monitor.people.roster.merge` applies deltas and :mod:`~monitor.people.roster.diff`
compares two rosters. Imports only :mod:`monitor.model` and :mod:`monitor.yamlfile` (which
shortens values quoted in messages).
"""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

from monitor.people.roster.merge import delta_exports
from monitor.people.roster.model import (
    TOPICS,
    DeltaApplied,
    Problem,
    ProblemKind,
    Roster,
    RosterCounts,
    RosterError,
    RosterLoad,
)
from monitor.people.roster.read import read_export
from monitor.people.roster.state import STATE_FILE, load_with_deltas, read_kept
from monitor.people.roster.tables import Export, Problems


def load_roster(
    directory: str | Path,
    *,
    today: date | None = None,
    state: str | Path | None = None,
    commit: bool = True,
) -> RosterLoad:
    """Read the OneRoster 1.1 or 1.2 CSV export in ``directory``.

    ``today`` bounds birthDates (a later one is skipped); it defaults to the current date.
    ``state`` is the directory where the merged roster is kept for delta exports (the
    ``roster`` folder of the district's state directory); ``commit=False`` only reads it.
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
    subdirs = delta_exports(where, problems)
    if problems.has_errors():
        raise problems.rejected(str(where))
    day = today or date.today()
    if state is None and not export.is_delta and not subdirs:
        return read_export(export, problems, day)
    kept = Path(state) if state is not None else None
    return load_with_deltas(export, subdirs, problems, day, kept, commit)


def roster_inputs(directory: str | Path) -> list[Path]:
    """The paths whose change means the roster in ``directory`` must be read again: its CSV
    files, and those of its subdirectories (where delta exports may be dropped)."""
    where = Path(directory)
    out: list[Path] = [where]
    try:
        entries = sorted(where.iterdir())
    except OSError:
        return out
    for p in entries:
        if p.suffix.lower() == ".csv":
            out.append(p)
        elif p.is_dir() and not p.name.startswith("."):
            out.append(p)
            with contextlib.suppress(OSError):
                out += sorted(q for q in p.iterdir() if q.suffix.lower() == ".csv")
    return out


def read_roster_or_state(directory: str | Path, *, today: date | None = None) -> RosterLoad:
    """Read an export directory, or a kept state (a directory with ``state.json``): the merged
    roster it names. For commands that compare rosters."""
    where = Path(directory)
    if (where / STATE_FILE).is_file():
        problems = Problems()
        kept = read_kept(where, problems)
        if kept is None:
            problems.error(str(where / STATE_FILE), None, "", "names no usable merged roster")
            raise problems.rejected(str(where))
        return load_roster(kept.merged_dir, today=today)
    return load_roster(where, today=today)


__all__ = [
    "STATE_FILE",
    "TOPICS",
    "DeltaApplied",
    "Problem",
    "ProblemKind",
    "Roster",
    "RosterCounts",
    "RosterError",
    "RosterLoad",
    "load_roster",
    "read_roster_or_state",
    "roster_inputs",
]
