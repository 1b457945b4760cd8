"""Applying OneRoster delta exports to a base export, record by record, into a new export.

A delta export's manifest marks files ``delta``: they hold only the records that changed, each
complete, with ``status`` (``active``: added or replaced; ``tobedeleted``: removed) and
``dateLastModified``. A file marked ``bulk`` in a delta export replaces that whole table; one
marked ``absent`` leaves it as it was.

Each record (one sourcedId of one file) keeps its newest version: a change whose
dateLastModified is older than the version in force is ignored, so deltas applied out of order
still end in the right state; a change with no readable dateLastModified is applied in the order
of the exports. Deleted records stay in the result with status ``tobedeleted`` (the loader
leaves them out), so an older change arriving late cannot bring them back.

The merge streams the base file by file and keeps only the deltas in memory, so it costs about
one pass over the base. Its result is an ordinary bulk export, read by the ordinary loader.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from monitor.people.roster.model import DeltaApplied
from monitor.people.roster.tables import Export, Problems, Table, export_hash, specs
from monitor.people.roster.values import read_status, read_when
from monitor.yamlfile import shorten

MERGED_SYSTEM = "student-monitor merged roster"


@dataclass(slots=True)
class Change:
    """One record of a delta file: its values (in its file's column order) and when."""

    row: list[str]
    header: list[str]  # the delta file's column names (shared by its rows)
    when: datetime | None
    gone: bool  # status tobedeleted
    where: str  # file:line, to say which change won


@dataclass(slots=True)
class Delta:
    """What one delta export changes, read into memory (deltas are small)."""

    export: Export
    hash: str
    newest: datetime | None = None
    newest_text: str = ""
    changes: dict[str, dict[str, Change]] = field(default_factory=dict)  # file → sourcedId →
    replaced: dict[str, Table] = field(default_factory=dict)  # files marked bulk: whole tables

    @property
    def order(self) -> tuple[bool, datetime | None, str]:
        """Sort key: by newest dateLastModified (deltas without one last), then by directory."""
        return (self.newest is None, self.newest, self.export.dir.name)


def delta_exports(directory: Path, problems: Problems) -> list[Export]:
    """The delta exports in subdirectories of a roster directory, their manifests read.

    A subdirectory holding a bulk export (a backup, say) is left alone with a warning, one
    without a manifest likewise; hidden ones (an upload under way) are not looked at.
    """
    found: list[Export] = []
    try:
        subdirs = sorted(p for p in directory.iterdir() if p.is_dir())
    except OSError as e:
        problems.unreadable(directory, e)
        return found
    for sub in subdirs:
        if sub.name.startswith("."):
            continue
        if not (sub / "manifest.csv").is_file():
            if any(p.suffix.lower() == ".csv" for p in sub.iterdir()):
                problems.warn(
                    str(sub), None, "",
                    "has CSV files but no manifest.csv: not read (a delta export is known "
                    "by its manifest)", "delta",
                )  # fmt: skip
            continue
        export = Export(sub, problems)
        export.read_manifest()
        if export.is_delta:
            found.append(export)
        elif not problems.has_errors():
            problems.warn(
                str(sub / "manifest.csv"), None, "",
                "a bulk export in a subdirectory: not read (only delta exports are read from "
                "subdirectories; a new bulk export goes in the roster directory itself)",
                "delta",
            )  # fmt: skip
    return found


def read_delta(export: Export, digest: str, version: str) -> Delta:
    """Read the changes of one delta export (problems go to the export's Problems)."""
    problems = export.problems
    delta = Delta(export, digest)
    manifest = str(export.dir / "manifest.csv")
    if export.version != version:
        problems.error(
            manifest,
            None,
            "oneroster.version",
            f"the delta export is OneRoster {export.version}, the roster it changes is {version}",
        )
        return delta
    for name, spec in specs(version).items():
        mode = export.manifest.get(name)
        if mode is None and (export.dir / name).exists():
            problems.error(
                str(export.dir / name), None, "",
                "not listed in manifest.csv: in a delta export it could be the whole table "
                "(bulk) or changes only (delta)",
            )  # fmt: skip
            continue
        if mode not in ("bulk", "delta"):
            if mode == "absent" and (export.dir / name).exists():
                problems.warn(
                    str(export.dir / name), None, "",
                    "present although manifest.csv marks it absent: not read (the table "
                    "stays as it was)", "delta",
                )  # fmt: skip
            continue
        table = export.open_table(spec)
        if table is None:
            continue
        if mode == "bulk":
            delta.replaced[name] = table
        else:
            delta.changes[name] = read_changes(table, delta)
    return delta


def read_changes(t: Table, delta: Delta) -> dict[str, Change]:
    problems = t.problems
    sid_i = t.col["sourcedId"]
    status_i, when_i = t.get("status"), t.get("dateLastModified")
    changes: dict[str, Change] = {}
    lines: dict[str, int] = {}
    for line, row in t.records():
        sid = row[sid_i].strip()
        if not sid:
            problems.skip(t.path, line, "sourcedId", "is empty: change skipped")
            continue
        if sid in lines:
            problems.error(
                t.path, line, "sourcedId",
                f"'{shorten(sid)}' repeats (first on line {lines[sid]}): which change wins?",
            )  # fmt: skip
            continue
        lines[sid] = line
        raw = row[status_i].strip() if status_i is not None else ""
        status = read_status(t, line, raw)
        if status is None:
            problems.skip(
                t.path, line, "status",
                f"'{shorten(raw)}' is not active or tobedeleted: change skipped",
            )  # fmt: skip
            continue
        if not status:
            problems.note(
                "warning", "delta", t.path, line, "status",
                "is empty in a delta file: read as active (the record is added or replaced)",
            )  # fmt: skip
        text = row[when_i].strip() if when_i is not None else ""
        when = read_when(text)
        if when is None:
            what = f"'{shorten(text)}' is not an ISO 8601 date-time" if text else "is empty"
            problems.note(
                "warning", "delta", t.path, line, "dateLastModified",
                f"{what}: the change is applied in the order of the exports",
            )  # fmt: skip
        elif delta.newest is None or when > delta.newest:
            delta.newest, delta.newest_text = when, text
        changes[sid] = Change(row, t.header, when, status == "tobedeleted", f"{t.path}:{line}")
    return changes


def older(change: Change, than: datetime | None) -> bool:
    return change.when is not None and than is not None and change.when < than


@dataclass(slots=True)
class _Plan:
    base: Table | None  # the rows that stay unless changed
    changes: dict[str, Change] = field(default_factory=dict)
    replaced: bool = False  # base is a delta export's bulk file, not the base export's


class _Counts:
    def __init__(self, deltas: list[Delta]) -> None:
        self.changed = {id(d.export): 0 for d in deltas}
        self.deleted = dict(self.changed)
        self.stale = dict(self.changed)
        self.owner: dict[str, int] = {}  # file:line of a change → its delta

    def count(self, change: Change, applied: bool) -> None:
        owner = self.owner[change.where.rpartition(":")[0]]
        if not applied:
            self.stale[owner] += 1
        elif change.gone:
            self.deleted[owner] += 1
        else:
            self.changed[owner] += 1


def merge(base_dir: Path, deltas: list[Delta], out: Path, problems: Problems) -> list[DeltaApplied]:
    """Write the base export with ``deltas`` applied (in their order) into ``out``."""
    quiet = Problems()  # the base was read before: its warnings are not news
    base = Export(base_dir, quiet)
    base.read_manifest()
    version = base.version
    counts = _Counts(deltas)
    plans: dict[str, _Plan] = {}
    for delta in deltas:
        for name, table in delta.replaced.items():
            plans[name] = _Plan(table, replaced=True)
        for name, changes in delta.changes.items():
            counts.owner[str(delta.export.dir / name)] = id(delta.export)
            plan = plans.setdefault(name, _Plan(None))
            for sid, change in changes.items():
                prev = plan.changes.get(sid)
                if prev is not None and older(change, prev.when):
                    stale(problems, change, f"the change on {prev.where} is newer")
                    counts.count(change, applied=False)
                    continue
                plan.changes[sid] = change
    out.mkdir(parents=True, exist_ok=True)
    modes: dict[str, str] = {}
    for name, spec in specs(version).items():
        todo = plans.get(name)
        source = todo.base if todo is not None and todo.replaced else None
        if source is None and (base_dir / name).exists():
            source = base.open_table(spec)
        if todo is None or not todo.changes:
            if source is None:
                modes[name] = "absent"
                continue
            shutil.copyfile(source.file, out / name)
        else:
            write_merged(source, todo.changes, out / name, problems, counts)
        modes[name] = "bulk"
    for p in quiet.items:
        if p.kind == "error":
            problems.items.append(p)
    write_manifest(out / "manifest.csv", version, modes)
    return [
        DeltaApplied(
            str(d.export.dir),
            d.newest_text,
            counts.changed[id(d.export)],
            counts.deleted[id(d.export)],
            counts.stale[id(d.export)],
        )
        for d in deltas
    ]


def stale(problems: Problems, change: Change, why: str) -> None:
    file, _, line = change.where.rpartition(":")
    problems.note(
        "warning", "delta", file, int(line), "dateLastModified",
        f"older than the record in force ({why}): change ignored",
    )  # fmt: skip


def write_merged(
    source: Table | None,
    changes: dict[str, Change],
    path: Path,
    problems: Problems,
    counts: _Counts,
) -> None:
    """Stream ``source`` into ``path`` with ``changes`` applied; new records go at the end."""
    header = list(source.header) if source is not None else []
    for c in changes.values():
        for name in c.header:
            if name and name not in header:
                header.append(name)
    width = len(header)
    pending = dict(changes)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(header)
        if source is not None:
            sid_i = source.col["sourcedId"]
            when_i = source.get("dateLastModified")
            pad = [""] * (width - source.width)
            for _, row in source.records():
                sid = row[sid_i].strip()
                change = pending.get(sid)
                if change is not None:
                    del pending[sid]
                    current = read_when(row[when_i].strip()) if when_i is not None else None
                    applied = not older(change, current)
                    counts.count(change, applied)
                    if applied:
                        writer.writerow(aligned(change, header))
                        continue
                    stale(problems, change, f"{source.path} has a newer version")
                writer.writerow(row + pad if pad else row)
        for change in pending.values():
            counts.count(change, applied=True)
            writer.writerow(aligned(change, header))


def aligned(change: Change, header: list[str]) -> list[str]:
    values = dict(zip(change.header, change.row, strict=True))
    return [values.get(name, "") for name in header]


def write_manifest(path: Path, version: str, modes: dict[str, str]) -> None:
    rows = [["manifest.version", "1.0"], ["oneroster.version", version]]
    rows += [[f"file.{name.removesuffix('.csv')}", mode] for name, mode in modes.items()]
    rows += [["source.systemName", MERGED_SYSTEM]]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerows(rows)


__all__ = ["Delta", "delta_exports", "export_hash", "merge", "read_delta"]
