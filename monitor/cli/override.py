"""``monitor override grant|list|revoke``: teacher overrides in the district's store.

With ``--config DIR`` the grants live in the district's incident store (district.yaml's
``store``, or SQLite in the state directory), which every proxy and sensor of the district
reads within a reload interval; ``--db URL`` names a store directly; ``--store FILE`` keeps a
standalone JSON file that no proxy reads. The click commands are thin: they parse options and
call the plain functions below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta, tzinfo

import click

from monitor.cli._common import catalog_option, load_district
from monitor.district import District, shared_overrides
from monitor.model import STAFF_ROLES
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue
from monitor.rules.loader import load_policy
from monitor.rules.overrides import DEFAULT_MAX_LENGTH, Override, OverrideBook, OverrideStore
from monitor.rules.policy import Policy
from monitor.yamlfile import ConfigError

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def local_zone() -> tzinfo:
    """The machine's time zone (used when no policy names the district's)."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def parse_until(text: str, tz: tzinfo, now: datetime) -> datetime:
    """``HH:MM`` today, or an ISO 8601 date and time; without an offset it is local to ``tz``."""
    m = _HHMM.match(text.strip())
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"'{text}' is not a time of day")
        day = now.astimezone(tz).date()
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"'{text}' is not a time: write HH:MM (today) or e.g. 2025-03-03T14:30"
        ) from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def grant_override(
    store: OverrideBook,
    *,
    teacher: str,
    platform: str,
    class_id: str | None,
    students: Collection[str],
    minutes: int | None,
    until: str | None,
    reason: str,
    catalogue: Catalogue,
    tz: tzinfo,
    max_length: timedelta = DEFAULT_MAX_LENGTH,
    role: str = "teacher",
    now: datetime | None = None,
) -> Override:
    """Check the platform against the catalogue, work out the window and record the grant."""
    now = now or datetime.now(UTC)
    p = catalogue.get(platform)
    if p is None:
        raise ValueError(f"unknown platform '{platform}': see 'monitor catalog list'")
    if p.is_bypass:
        raise ValueError(f"'{platform}' is a bypass service: overrides never apply to it")
    if (minutes is None) == (until is None):
        raise ValueError("give either --minutes or --until")
    if minutes is not None:
        if minutes <= 0:
            raise ValueError("--minutes must be positive")
        ends = now + timedelta(minutes=minutes)
    else:
        ends = parse_until(until or "", tz, now)
    return store.grant(
        platform=platform,
        granted_by=teacher,
        granted_by_role=role,
        class_id=class_id,
        students=students,
        ends=ends,
        reason=reason,
        now=now,
        max_length=max_length,
        known_platforms=catalogue.ids,
    )


def describe(ov: Override, tz: tzinfo, now: datetime) -> dict[str, str]:
    """One override as display strings (times local to ``tz``)."""

    def local(d: datetime | None) -> str:
        return "" if d is None else d.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    status = ov.status(now)
    if status == "revoked":
        status = f"revoked by {ov.revoked_by} at {local(ov.revoked_at)}"
    return {
        "id": ov.id,
        "platform": ov.platform,
        "target": ov.target_words(),
        "starts": local(ov.starts),
        "ends": local(ov.ends),
        "granted_by": f"{ov.granted_by} ({ov.granted_by_role})",
        "status": status,
        "reason": ov.reason,
    }


def list_lines(overrides: Iterable[Override], tz: tzinfo, now: datetime) -> list[str]:
    rows = [describe(o, tz, now) for o in overrides]
    if not rows:
        return ["no overrides"]
    cols = ("id", "platform", "target", "starts", "ends", "granted_by", "status", "reason")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols[:-1]}
    out = ["  ".join(c.ljust(widths[c]) for c in cols[:-1]) + "  reason"]
    out += ["  ".join(r[c].ljust(widths[c]) for c in cols[:-1]) + "  " + r["reason"] for r in rows]
    return out


def _settings(
    policy_file: str | None, catalogs: tuple[str, ...]
) -> tuple[Catalogue, Policy | None]:
    try:
        cat = catalogue_mod.load(catalogs)
        return cat, load_policy(policy_file, cat) if policy_file else None
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


_store_option = click.option(
    "--store", "store_path", type=click.Path(dir_okay=False),
    help="A standalone JSON file of grants (created on the first grant), which no proxy or "
         "sensor reads. Without it, the grants are the district's, in its incident store.",
)  # fmt: skip
_db_option = click.option(
    "--db", "db_url", metavar="URL",
    help="The incident store holding the district's grants (sqlite:///path or "
         "postgresql+psycopg://…). Default with --config: district.yaml's store, else SQLite "
         "in the state directory: the one every proxy and sensor of the district reads.",
)  # fmt: skip
_config_option = click.option(
    "--config", "config", type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory: its store, policy, catalogue and roster "
         "(grants are then checked against the roster).",
)  # fmt: skip


def _district(config: str | None) -> District | None:
    return load_district(config) if config else None


def _store_of(store_path: str | None, district: District | None, db_url: str | None = None
              ) -> OverrideBook:  # fmt: skip
    """The grants: a standalone JSON file (--store), or the store of --db or --config."""
    if store_path:
        if db_url:
            raise click.UsageError("give --store FILE or --db URL, not both")
        return OverrideStore(store_path)
    if db_url:
        url = db_url
    elif district is not None:
        url = district.store_url
    else:
        raise click.UsageError("give --config DIR, --db URL or --store FILE")
    try:
        return shared_overrides(url)
    except ValueError as e:  # a URL that is not one
        raise click.ClickException(str(e)) from e


def _check_people(
    district: District, teacher: str, class_id: str | None, students: tuple[str, ...]
) -> None:
    """With a roster: the granter is staff, the students are students, the class exists."""
    people = district.roster.people
    granter = people.get(teacher)
    if granter is None or not granter.is_staff:
        raise click.ClickException(f"--teacher {teacher}: no staff member with this sourcedId")
    for s in students:
        p = people.get(s)
        if p is None or not p.is_student:
            raise click.ClickException(f"--student {s}: no student with this sourcedId")
    if class_id is not None and class_id not in district.roster.classes:
        raise click.ClickException(f"--class {class_id}: no class with this sourcedId")


_policy_option = click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False, exists=True),
    help="The district policy: its time zone and longest override apply (default: this "
         "machine's time zone and one day).",
)  # fmt: skip
_catalog_option = catalog_option()


@click.group("override")
def override_group() -> None:
    """Grant, list and revoke teacher overrides (time-boxed permission to use a platform)."""


@override_group.command("grant")
@_config_option
@_db_option
@_store_option
@click.option("--teacher", required=True, help="The granting teacher's sourcedId.")
@click.option(
    "--role",
    default="teacher",
    show_default=True,
    type=click.Choice(sorted(STAFF_ROLES)),
    help="The granter's role (shown to students).",
)
@click.option("--platform", required=True, help="A catalogue platform id, e.g. youtube.")
@click.option("--class", "class_id", help="A class sourcedId: every student in it.")
@click.option("--student", "students", multiple=True, help="A student sourcedId (repeatable).")
@click.option("--minutes", type=int, help="Starting now, for this many minutes.")
@click.option("--until", help="Starting now, until HH:MM today or an ISO date and time.")
@click.option("--reason", default="", help="Why (kept in the store; not shown to students).")
@_policy_option
@_catalog_option
def grant_cmd(
    config: str | None, db_url: str | None, store_path: str | None, teacher: str, role: str,
    platform: str,
    class_id: str | None,
    students: tuple[str, ...], minutes: int | None, until: str | None, reason: str,
    policy_file: str | None, catalogs: tuple[str, ...],
) -> None:  # fmt: skip
    """Let a class or some students use a blocked platform for a while."""
    if (class_id is None) == (not students):
        raise click.UsageError("give either --class or one or more --student")
    district = _district(config)
    policy: Policy | None
    if district is not None and not policy_file:
        cat, policy = district.catalogue, district.policy
        _check_people(district, teacher, class_id, students)
    else:
        cat, policy = _settings(policy_file, catalogs)
    tz = policy.tz if policy else local_zone()
    book = _store_of(store_path, district, db_url)
    try:
        ov = grant_override(
            book, teacher=teacher, platform=platform,
            class_id=class_id,
            students=students, minutes=minutes, until=until, reason=reason, catalogue=cat, tz=tz,
            max_length=policy.override_max_length if policy else DEFAULT_MAX_LENGTH, role=role,
        )  # fmt: skip
    except (ValueError, ConnectionError) as e:  # refused, or the store unreachable
        raise click.ClickException(str(e)) from e
    finally:
        _close(book)
    row = describe(ov, tz, datetime.now(UTC))
    click.echo(f"granted {ov.id}: {ov.platform} for {row['target']} until {row['ends']}")


@override_group.command("list")
@_config_option
@_db_option
@_store_option
@click.option("--all", "show_all", is_flag=True, help="Include expired and revoked grants.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
@_policy_option
@_catalog_option
def list_cmd(
    config: str | None, db_url: str | None, store_path: str | None, show_all: bool, fmt: str,
    policy_file: str | None, catalogs: tuple[str, ...],
) -> None:  # fmt: skip
    """List grants in force or scheduled (all grants with --all)."""
    tz = local_zone()
    district = _district(config)
    if district is not None:
        tz = district.policy.tz
    if policy_file:
        tz = _settings(policy_file, catalogs)[1].tz  # type: ignore[union-attr]
    now = datetime.now(UTC)
    book = _store_of(store_path, district, db_url)
    try:
        overrides = book.list(active_only=not show_all, now=now)
    except (ValueError, ConnectionError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        _close(book)
    if fmt == "json":
        click.echo(json.dumps([describe(o, tz, now) for o in overrides], indent=2))
        return
    for line in list_lines(overrides, tz, now):
        click.echo(line)


@override_group.command("revoke")
@_config_option
@_db_option
@_store_option
@click.argument("override_id", metavar="ID")
@click.option("--by", "by", required=True, help="The sourcedId of the person revoking it.")
def revoke_cmd(
    config: str | None, db_url: str | None, store_path: str | None, override_id: str, by: str
) -> None:
    """End grant ID now (the record is kept, with who revoked it and when)."""
    book = _store_of(store_path, _district(config), db_url)
    try:
        ov = book.revoke(override_id, by)
    except (ValueError, ConnectionError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        _close(book)
    click.echo(f"revoked {ov.id} ({ov.platform}, {ov.target_words()})")


def _close(book: OverrideBook) -> None:
    source = getattr(book, "source", None)
    if source is not None:
        source.close()


def register(group: click.Group) -> None:
    group.add_command(override_group)
