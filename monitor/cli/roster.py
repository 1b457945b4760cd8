"""``monitor roster check DIR``: load a OneRoster export and say what it holds and what is wrong.
``monitor roster diff OLD NEW``: what changed between two exports (or kept states)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from monitor.people.roster import (
    STATE_FILE,
    TOPICS,
    Problem,
    RosterError,
    RosterLoad,
    load_roster,
    read_roster_or_state,
)
from monitor.people.roster.diff import RosterDiff, compare
from monitor.progress import progress
from monitor.yamlfile import ConfigError

_ORDER = {"error": 0, "warning": 1, "skipped": 2}


@click.group("roster")
def roster_group() -> None:
    """Check OneRoster 1.1/1.2 CSV exports, and compare two."""


def _day(on: str | None) -> date:
    try:
        return datetime.strptime(on, "%Y-%m-%d").date() if on else date.today()
    except ValueError as e:
        raise click.BadParameter(f"'{on}' is not a date (YYYY-MM-DD)", param_hint="--on") from e


def summary(problems: list[Problem]) -> list[tuple[str, str, int]]:
    """(kind, topic, rows) per kind of problem, errors first; '' topic is 'other'."""
    counts: Counter[tuple[str, str]] = Counter()
    for p in problems:
        counts[(p.kind, p.topic)] += p.count
    return sorted(
        ((kind, topic, n) for (kind, topic), n in counts.items()),
        key=lambda t: (_ORDER[t[0]], t[1] == "", t[1]),
    )


def _echo_problems(problems: list[Problem], err: bool = False) -> None:
    """One line per kind of problem with its count, then each problem, errors first."""
    if not problems:
        return
    click.echo("summary (rows per kind of problem):", err=err)
    for kind, topic, n in summary(problems):
        what = TOPICS.get(topic, "") if topic else ""
        label = topic or "other"
        click.echo(f"  {kind:<8} {label:<15} {n:>7}  {what}".rstrip(), err=err)
    click.echo("details:", err=err)
    for p in sorted(problems, key=lambda p: _ORDER[p.kind]):
        click.echo(f"  {p.kind}: {p}", err=err)


def _district_paths(config: str) -> tuple[Path, Path]:
    """The roster directory and the kept-roster directory of a district configuration."""
    from monitor.district import read_settings

    where = Path(config).resolve()
    try:
        settings, _ = read_settings(where)
    except (ConfigError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e

    def p(rel: str) -> Path:
        q = Path(rel)
        return q if q.is_absolute() else where / q

    return p(settings.roster), p(settings.state_dir) / "roster"


@roster_group.command("check")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, file_okay=False),
    help="A district configuration directory: check its roster with the delta exports in it "
    "over the roster kept in its state directory (read only).",
)
@click.option(
    "--on", "on", metavar="DATE", help="Count age bands on this date (YYYY-MM-DD); default today."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--quiet", is_flag=True, help="No progress display (stderr, terminal only).")
def roster_check(
    directory: str | None, config: str | None, on: str | None, fmt: str, quiet: bool
) -> None:
    """Load the roster in DIRECTORY: exit 0 when it loads, printing counts by role, school and
    age band, the delta exports applied, and every problem as file:line: field: message (a
    summary line per kind first); exit 1 when it is rejected."""
    day = _day(on)
    state: Path | None = None
    if config is not None:
        roster_dir, state = _district_paths(config)
        directory = directory or str(roster_dir)
    if directory is None:
        raise click.UsageError("give the roster DIRECTORY, or --config DISTRICT")
    try:
        with progress(f"loading roster {directory}", quiet=quiet):  # a spinner and the time
            if state is None and (Path(directory) / STATE_FILE).is_file():
                loaded = read_roster_or_state(directory, today=day)  # a kept state: its roster
            else:
                loaded = load_roster(directory, state=state, commit=False)
    except RosterError as e:
        _echo_problems(e.problems, err=True)
        errors = sum(1 for p in e.problems if p.kind == "error")
        raise click.ClickException(
            f"roster {directory} rejected: {errors} error(s); nothing was loaded"
        ) from e
    if fmt == "json":
        click.echo(json.dumps(_check_json(directory, loaded, day), indent=2))
        return
    _check_text(directory, loaded, day)


def _check_json(directory: str, loaded: RosterLoad, day: date) -> dict[str, Any]:
    roster = loaded.roster
    counts = roster.counts(day)
    schools = {sid: (s.identifier or s.name) for sid, s in roster.schools.items()}
    return {
        "directory": directory,
        "oneroster_version": roster.oneroster_version,
        "version": roster.version,
        "day": day.isoformat(),
        "people": counts.people,
        "disabled": counts.disabled,
        "by_role": counts.by_role,
        "by_school": {schools.get(k, k): v for k, v in counts.by_school.items()},
        "by_age_band": counts.by_age_band,
        "classes": len(roster.classes),
        "deltas": [
            {
                "source": d.source,
                "newest": d.newest,
                "changed": d.changed,
                "deleted": d.deleted,
                "stale": d.stale,
            }
            for d in loaded.deltas
        ],
        "summary": [
            {"kind": k, "topic": t, "rows": n, "description": TOPICS.get(t, "")}
            for k, t, n in summary(loaded.problems)
        ],
        "problems": [
            {
                "kind": p.kind,
                "file": p.file,
                "line": p.line,
                "field": p.field,
                "message": p.message,
                "topic": p.topic,
                "count": p.count,
            }
            for p in loaded.problems
        ],
    }


def _check_text(directory: str, loaded: RosterLoad, day: date) -> None:
    roster = loaded.roster
    counts = roster.counts(day)
    schools = {sid: (s.identifier or s.name) for sid, s in roster.schools.items()}
    click.echo(
        f"roster {directory}: OneRoster {roster.oneroster_version}, version {roster.version}"
    )
    if loaded.deltas:
        click.echo(f"delta exports applied: {len(loaded.deltas)} (merged roster: {roster.source})")
        for d in loaded.deltas:
            click.echo(
                f"  {d.source}: newest {d.newest or 'undated'}, {d.changed} added or replaced, "
                f"{d.deleted} deleted, {d.stale} older than the record in force (ignored)"
            )
    click.echo(
        f"people: {counts.people} enabled, {counts.disabled} disabled or to be deleted (left out)"
    )
    click.echo(f"schools: {len(roster.schools)}, classes: {len(roster.classes)}")
    click.echo("by role:")
    for role, n in counts.by_role.items():
        click.echo(f"  {role:<22} {n:>7}")
    click.echo("by school:")
    for sid, n in counts.by_school.items():
        click.echo(f"  {schools.get(sid, sid):<22} {n:>7}")
    click.echo(f"students by age band on {day.isoformat()}:")
    for band, n in counts.by_age_band.items():
        label = "unknown (no birthDate)" if band == "unknown" else band
        click.echo(f"  {label:<22} {n:>7}")
    skipped = sum(p.count for p in loaded.problems if p.kind == "skipped")
    warnings = sum(p.count for p in loaded.problems if p.kind == "warning")
    click.echo(f"problems: {skipped} skipped, {warnings} warnings")
    _echo_problems(loaded.problems)


@roster_group.command("diff")
@click.argument("old", type=click.Path(exists=True, file_okay=False))
@click.argument("new", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--on", "on", metavar="DATE", help="Age bands on this date (YYYY-MM-DD); default today."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def roster_diff(old: str, new: str, on: str | None, fmt: str) -> None:
    """What changed from the roster in OLD to the one in NEW (each an export directory, or a
    kept state such as STATE_DIR/roster): people added, removed, or changed in role, school,
    grade or birthDate, by sourcedId only (never a name), counts by role and school, and age
    band changes. Exit 0 when nothing changed, 1 when something did (like diff)."""
    day = _day(on)
    rosters = []
    for where in (old, new):
        try:
            rosters.append(read_roster_or_state(where, today=day).roster)
        except RosterError as e:
            _echo_problems(e.problems, err=True)
            raise click.ClickException(f"roster {where} rejected: nothing to compare") from e
    result = compare(rosters[0], rosters[1], day)
    if fmt == "json":
        click.echo(json.dumps(_diff_json(old, new, result), indent=2))
    else:
        _diff_text(old, new, result)
    if not result.empty:
        raise SystemExit(1)


def _diff_json(old: str, new: str, d: RosterDiff) -> dict[str, Any]:
    def pairs(m: dict[str, tuple[int, int]]) -> dict[str, dict[str, int]]:
        return {k: {"old": a, "new": b} for k, (a, b) in m.items()}

    return {
        "old": old,
        "new": new,
        "day": d.day.isoformat(),
        "people": {"old": d.old_people, "new": d.new_people},
        "added": list(d.added),
        "removed": list(d.removed),
        "changed": {c.sourced_id: list(c.changes) for c in d.changed},
        "by_role": pairs(d.by_role),
        "by_school": pairs(d.by_school),
        "by_age_band": pairs(d.by_band),
        "age_band_changes": d.band_moves,
    }


def _diff_text(old: str, new: str, d: RosterDiff) -> None:
    def row(label: str, a: int, b: int) -> str:
        return f"  {label:<22} {a:>7} → {b:>7}  ({b - a:+d})"

    click.echo(f"roster diff {old} → {new} (age bands on {d.day.isoformat()})")
    click.echo(
        f"people: {d.old_people} → {d.new_people}: {len(d.added)} added, {len(d.removed)} "
        f"removed, {len(d.changed)} changed"
    )
    for title, table in (
        ("by role:", d.by_role),
        ("by school:", d.by_school),
        ("students by age band:", d.by_band),
    ):
        click.echo(title)
        for label, (a, b) in table.items():
            click.echo(row(label, a, b))
    if d.band_moves:
        click.echo("age band changes (people in both):")
        for move, n in d.band_moves.items():
            click.echo(f"  {move:<22} {n:>7}")
    for title, ids in (("added:", d.added), ("removed:", d.removed)):
        if ids:
            click.echo(title)
            for sid in ids:
                click.echo(f"  {sid}")
    if d.changed:
        click.echo("changed:")
        for c in d.changed:
            click.echo(f"  {c.sourced_id}: {'; '.join(c.changes)}")


def register(group: click.Group) -> None:
    group.add_command(roster_group)
