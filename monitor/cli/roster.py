"""``monitor roster check DIR``: load a OneRoster export and say what it holds and what is wrong."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from monitor.people.roster import RosterError, load_roster


@click.group("roster")
def roster_group() -> None:
    """Check OneRoster 1.1/1.2 CSV exports."""


@roster_group.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--on", "on", metavar="DATE", help="Count age bands on this date (YYYY-MM-DD); default today."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def roster_check(directory: str, on: str | None, fmt: str) -> None:
    """Load the roster in DIRECTORY: exit 0 when it loads, printing counts by role, school and
    age band and every problem as file:line: field: message; exit 1 when it is rejected."""
    try:
        day = datetime.strptime(on, "%Y-%m-%d").date() if on else date.today()
    except ValueError as e:
        raise click.BadParameter(f"'{on}' is not a date (YYYY-MM-DD)", param_hint="--on") from e
    try:
        loaded = load_roster(directory)
    except RosterError as e:
        for p in e.problems:
            click.echo(f"{p.kind}: {p}", err=True)
        errors = sum(1 for p in e.problems if p.kind == "error")
        raise click.ClickException(
            f"roster {directory} rejected: {errors} error(s); nothing was loaded"
        ) from e
    roster = loaded.roster
    counts = roster.counts(day)
    schools = {sid: (s.identifier or s.name) for sid, s in roster.schools.items()}
    if fmt == "json":
        click.echo(
            json.dumps(
                {
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
                    "problems": [
                        {
                            "kind": p.kind,
                            "file": p.file,
                            "line": p.line,
                            "field": p.field,
                            "message": p.message,
                        }
                        for p in loaded.problems
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"roster {directory}: OneRoster {roster.oneroster_version}, version {roster.version}"
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
    skipped = [p for p in loaded.problems if p.kind == "skipped"]
    warnings = [p for p in loaded.problems if p.kind == "warning"]
    click.echo(f"problems: {len(skipped)} skipped, {len(warnings)} warnings")
    for p in loaded.problems:
        click.echo(f"  {p.kind}: {p}")


def register(group: click.Group) -> None:
    group.add_command(roster_group)
