"""``monitor report``: the activity and incident report of a period, for the district or some
of its schools, as one HTML file with charts, or CSV, XLSX or JSON with the same numbers."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

FORMATS = ("html", "csv", "xlsx", "json")
DEFAULT_LINK_BASE = "http://127.0.0.1:8000"


def _format(fmt: str | None, out: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    return suffix if suffix in FORMATS else "html"


@click.command("report")
@click.option(
    "--config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (its store, catalogue, roster, time zone).",
)
@click.option("--from", "start", required=True, metavar="DATE", help="First day (2026-11-01).")
@click.option("--to", "end", required=True, metavar="DATE", help="Last day, included.")
@click.option(
    "--school",
    "schools",
    multiple=True,
    metavar="ID",
    help="Only this school (identifier such as hs; repeatable): a principal's report.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format; default: from --out's suffix, else html.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write here instead of standard output (required for xlsx).",
)
@click.option("--db", "url", help="Store URL, instead of the district's.")
@click.option(
    "--link-base",
    default=DEFAULT_LINK_BASE,
    show_default=True,
    help="The review app's address, for the links to students' pages.",
)
def report_cmd(
    config: str,
    start: str,
    end: str,
    schools: tuple[str, ...],
    fmt: str | None,
    out: str | None,
    url: str | None,
    link_base: str,
) -> None:
    """Blocked attempts by platform and week, under-13 attempts on platforms not made for
    children and their trend, bypass attempts by school, incidents by severity and status,
    time to acknowledge and resolve, teacher overrides granted and used, and the students
    with most incidents (pseudonyms, with links into the review app)."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.cli._common import load_district
    from monitor.incidents.access import AccessLog, Actor
    from monitor.incidents.store import open_store
    from monitor.incidents.store.migrations import upgrade
    from monitor.reports import Period, build

    try:
        period = Period.parse(start, end)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--from/--to") from e
    fmt = _format(fmt, out)
    if fmt == "xlsx" and not out:
        raise click.UsageError("--format xlsx writes a file: give --out FILE.xlsx")
    district = load_district(config)
    known = sorted(set(district.school_labels.values()))
    for s in schools:
        if s not in known:
            raise click.BadParameter(
                f"{s!r} is not a school of the district (known: {', '.join(known)})",
                param_hint="--school",
            )
    target = url or district.store_url
    try:
        upgrade(target)
        store = open_store(target, create=False, window=district.policy.dedupe_window)
    except (SQLAlchemyError, ValueError, OSError) as e:
        raise click.ClickException(f"cannot open the incident store: {e}") from e
    try:
        report = build(store, period, schools or None, district=district, link_base=link_base)
        if report.students:
            who = Actor(f"{getpass.getuser()}@cli", "system", "monitor report")
            AccessLog(store.engine).record(
                who,
                "report",
                detail=f"{report.title} ({fmt})" + (f" to {out}" if out else ""),
                reason="activity report",
                subjects=report.students,
            )
    except SQLAlchemyError as e:
        raise click.ClickException(f"reading the incident store failed: {e}") from e
    finally:
        store.close()
    data: str | bytes
    if fmt == "html":
        data = report.to_html()
    elif fmt == "csv":
        data = report.to_csv()
    elif fmt == "json":
        data = report.to_json()
    else:
        data = report.to_xlsx()
    if out:
        path = Path(out)
        try:
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data, encoding="utf-8")
        except OSError as e:
            raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from e
        click.echo(f"wrote {out} ({report.title})", err=True)
    else:
        assert isinstance(data, str)
        sys.stdout.write(data)
    if report.empty:
        click.echo(f"nothing was recorded from {period.describe()}", err=True)


def register(group: click.Group) -> None:
    group.add_command(report_cmd)
