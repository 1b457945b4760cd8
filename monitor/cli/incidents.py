"""``monitor incidents list|init|purge``: the incident store from the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from monitor.incidents.events import STATUSES, Incident
from monitor.incidents.store import IncidentFilter, open_store
from monitor.model import SEVERITIES
from monitor.progress import progress


@dataclass(frozen=True, slots=True)
class Page:
    incidents: list[Incident]
    total: int  # incidents matching the filters, over all pages


def list_incidents(url: str, filters: IncidentFilter, limit: int = 50, offset: int = 0) -> Page:
    """One page of incidents (newest first) from the store at ``url``; ValueError when the
    store cannot be opened or read."""
    try:
        store = open_store(url, create=False)
    except SQLAlchemyError as e:
        raise ValueError(f"cannot open incident store: {e}") from e
    try:
        return Page(store.list(filters, limit, offset), store.count(filters))
    except SQLAlchemyError as e:
        raise ValueError(f"cannot read incident store: {e}") from e
    finally:
        store.close()


def init_store(url: str) -> None:
    """Create the incident tables at ``url`` if missing."""
    try:
        open_store(url, create=True).close()
    except SQLAlchemyError as e:
        raise ValueError(f"cannot create incident store: {e}") from e


_COLUMNS = (
    ("id", 7),
    ("last seen (UTC)", 16),
    ("count", 6),
    ("severity", 8),
    ("status", 12),
    ("school", 8),
    ("grade", 5),
    ("band", 7),
    ("person", 18),
    ("platform", 12),
    ("activity", 8),
    ("decision", 8),
    ("rule", 0),
)


def render_table(page: Page) -> str:
    lines = [" ".join(f"{name:<{w}}" if w else name for name, w in _COLUMNS)]
    for i in page.incidents:
        cells = (
            str(i.id), i.last_seen.strftime("%Y-%m-%d %H:%M"), str(i.count), i.severity, i.status,
            i.school or "-", i.grade or "-", i.age_band or "-", i.person, i.platform, i.activity,
            i.decision, i.rule_id,
        )  # fmt: skip
        lines.append(
            " ".join(f"{c:<{w}}" if w else c for c, (_, w) in zip(cells, _COLUMNS, strict=True))
        )
    lines.append(f"{len(page.incidents)} of {page.total} incidents")
    return "\n".join(lines)


def render_json(page: Page) -> str:
    return json.dumps([i.to_dict() for i in page.incidents], indent=2)


@click.group("incidents")
def incidents_group() -> None:
    """Read the incident store."""


_DB_HELP = "Store URL: sqlite:///path/incidents.db or postgresql+psycopg://user@host/db."


def _store_url(url: str | None, config: str | None) -> str:
    """The store URL from --db, or from the district configuration (--config DIR)."""
    if url:
        return url
    if not config:
        raise click.UsageError("give --config DIR (the district's store) or --db URL")
    from monitor.district import DistrictLoader, read_settings
    from monitor.yamlfile import ConfigError

    try:
        settings, _raw = read_settings(DistrictLoader(config).config_dir)
    except (ConfigError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    if settings.store:
        return settings.store
    state = Path(settings.state_dir)
    if not state.is_absolute():
        state = Path(config).resolve() / state
    return f"sqlite:///{state.resolve() / 'incidents.sqlite'}"


_CONFIG_HELP = "The district configuration directory: its incident store."


@incidents_group.command("list")
@click.option(
    "--config", "config", type=click.Path(exists=True, file_okay=False), help=_CONFIG_HELP
)
@click.option("--db", "url", help=_DB_HELP)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--school", help="Only this school identifier.")
@click.option("--platform", help="Only this platform id.")
@click.option("--status", type=click.Choice(STATUSES), help="Only incidents in this review state.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Only this severity.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Most incidents to print (newest last_seen first).",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Skip this many incidents first (paging).",
)
def list_cmd(config: str | None, url: str | None, fmt: str, school: str | None,
             platform: str | None, status: str | None, severity: str | None, limit: int,
             offset: int) -> None:  # fmt: skip
    """List incidents, newest first (people appear under their pseudonyms)."""
    url = _store_url(url, config)
    filters = IncidentFilter(school=school, platform=platform, status=status, severity=severity)
    try:
        page = list_incidents(url, filters, limit, offset)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(render_json(page) if fmt == "json" else render_table(page))


@incidents_group.command("init")
@click.option(
    "--config", "config", type=click.Path(exists=True, file_okay=False), help=_CONFIG_HELP
)
@click.option("--db", "url", help=_DB_HELP)
def init_cmd(config: str | None, url: str | None) -> None:
    """Create the incident tables in a new store (existing tables are left as they are)."""
    url = _store_url(url, config)
    try:
        init_store(url)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo("incident store ready")


def _period(value: str | None, name: str) -> timedelta | None:
    if value is None:
        return None
    from pydantic_core import PydanticCustomError

    from monitor.incidents.retention import parse_period

    try:
        return parse_period(value)
    except PydanticCustomError as e:
        raise click.BadParameter(str(e), param_hint=name) from e


@incidents_group.command("purge")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory: its store and retention periods.",
)
@click.option("--db", "url", help=_DB_HELP)
@click.option(
    "--incidents",
    "incidents_",
    metavar="PERIOD",
    help="Keep incidents this long (e.g. 365d); default: the district's setting.",
)
@click.option(
    "--access-log",
    metavar="PERIOD",
    help="Keep access records this long (e.g. 6y); default: the district's setting.",
)
@click.option("--dry-run", is_flag=True, help="Only count what is due.")
@click.option("--quiet", is_flag=True, help="No progress display (stderr, terminal only).")
def purge_cmd(
    config: str | None,
    url: str | None,
    incidents_: str | None,
    access_log: str | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Delete incidents and access records past their retention period, and record the purge
    in the record of access (the review app also does this once a day)."""
    import getpass

    from monitor.incidents.access import AccessLog, Actor
    from monitor.incidents.retention import Retention, check_retention, load_retention, purge
    from monitor.incidents.store.migrations import upgrade
    from monitor.yamlfile import ConfigError

    target = _store_url(url, config)
    try:
        base = load_retention(config) if config else Retention()
        retention = check_retention(
            _period(incidents_, "--incidents") or base.incidents,
            _period(access_log, "--access-log") or base.access_log,
            base.aggregates,
        )
    except (ConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    try:
        upgrade(target)
        store = open_store(target, create=False)
    except (SQLAlchemyError, ValueError) as e:
        raise click.ClickException(f"cannot open incident store: {e}") from e
    try:
        who = Actor(f"{getpass.getuser()}@cli", "system", "monitor incidents purge")
        with progress("counting what is due" if dry_run else "purging", quiet=quiet):
            result = purge(
                store.engine,
                AccessLog(store.engine),
                retention,
                now=datetime.now(UTC),
                actor=who,
                dry_run=dry_run,
            )
    except SQLAlchemyError as e:
        raise click.ClickException(f"purge failed: {e}") from e
    finally:
        store.close()
    click.echo(f"{result.describe()} (retention: {retention.describe()})")


def _since(value: str, name: str) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a period back from now (24h)."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return datetime.now(UTC) - (_period(value, name) or timedelta(0))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@incidents_group.command("export")
@click.option(
    "--config", "config", type=click.Path(exists=True, file_okay=False), help=_CONFIG_HELP
)
@click.option("--db", "url", help=_DB_HELP)
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option(
    "--since", required=True, help="Incidents last seen since: 2026-12-01, 2026-12-01T08:00, 24h."
)
@click.option("--until", help="…and before this time (default: now).")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout)."
)
def export_cmd(config: str | None, url: str | None, fmt: str, since: str, until: str | None,
               out: str | None) -> None:  # fmt: skip
    """Incidents as JSON lines for a SIEM: one object per incident, people under pseudonyms,
    without review notes (fields in the README, Incident log)."""
    from monitor.notify.eventlog import incident_lines

    start = _since(since, "--since")
    end = _since(until, "--until") if until else None
    if end is not None and end <= start:
        raise click.BadParameter("must be after --since", param_hint="--until")
    try:
        store = open_store(_store_url(url, config), create=False)
    except SQLAlchemyError as e:
        raise click.ClickException(f"cannot open incident store: {e}") from e
    try:
        with click.open_file(out or "-", "w", encoding="utf-8") as f:
            for line in incident_lines(store.engine, start, end):
                f.write(line + "\n")
    finally:
        store.close()


def register(group: click.Group) -> None:
    group.add_command(incidents_group)
