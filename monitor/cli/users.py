"""``monitor users add|list|disable|enable|password``: the review app's local accounts."""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from monitor.cli.incidents import _store_url
from monitor.incidents.store import open_store
from monitor.incidents.store.accessschema import ROLES
from monitor.incidents.store.migrations import upgrade
from monitor.web.accounts import Account, Accounts

_CONFIG_HELP = (
    "The district configuration directory (its store; schools are checked against its roster)."
)
_DB_HELP = "Store URL, instead of the district's."


def _accounts(config: str | None, url: str | None) -> Accounts:
    target = _store_url(url, config)
    try:
        upgrade(target)
        store = open_store(target, create=False)
    except (SQLAlchemyError, ValueError) as e:
        raise click.ClickException(f"cannot open the store: {e}") from e
    return Accounts(store.engine)


def _known_schools(config: str | None) -> set[str] | None:
    if not config:
        return None
    from monitor.cli._common import load_district

    district = load_district(config)
    return set(district.school_labels.values())


def _read_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _row(a: Account) -> str:
    state = "disabled" if a.disabled else "active"
    return (
        f"{a.username:<20} {a.role:<14} {','.join(a.schools) or '-':<12} {state:<9} {a.position}"
    ).rstrip()


@click.group("users")
def users_group() -> None:
    """Accounts of the review app (argon2 password hashes in the store's database)."""


def _store_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--db", "url", help=_DB_HELP)(f)
    return click.option(
        "--config", "config", type=click.Path(exists=True, file_okay=False), help=_CONFIG_HELP
    )(f)


@users_group.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    # teachers sign in through the identity provider, with their role from the roster
    type=click.Choice([r for r in ROLES if r != "teacher"]),
)
@click.option(
    "--school",
    "schools",
    multiple=True,
    help="A counselor's school identifier (repeat for several).",
)
@click.option("--position", default="", help="Position or title, named in the record of access.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@_store_options
def add_cmd(
    username: str,
    role: str,
    schools: tuple[str, ...],
    position: str,
    password_stdin: bool,
    config: str | None,
    url: str | None,
) -> None:
    """Add an account."""
    known = _known_schools(config)
    if known is not None:
        unknown = [s for s in schools if s not in known]
        if unknown:
            raise click.BadParameter(
                f"{', '.join(unknown)}: not a school of the roster ({', '.join(sorted(known))})",
                param_hint="--school",
            )
    accounts = _accounts(config, url)
    password = _read_password(password_stdin)
    try:
        account = accounts.add(username, password, role, position=position, schools=schools)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"added {account.username} ({account.role})")


@users_group.command("list")
@_store_options
def list_cmd(config: str | None, url: str | None) -> None:
    """List accounts (never passwords)."""
    for a in _accounts(config, url).list():
        click.echo(_row(a))


def _set_disabled(username: str, disabled: bool, config: str | None, url: str | None) -> None:
    try:
        account = _accounts(config, url).set_disabled(username, disabled)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{account.username}: {'disabled (sessions ended)' if disabled else 'enabled'}")


@users_group.command("disable")
@click.argument("username")
@_store_options
def disable_cmd(username: str, config: str | None, url: str | None) -> None:
    """Disable an account and end its sessions."""
    _set_disabled(username, True, config, url)


@users_group.command("enable")
@click.argument("username")
@_store_options
def enable_cmd(username: str, config: str | None, url: str | None) -> None:
    """Enable a disabled account."""
    _set_disabled(username, False, config, url)


@users_group.command("password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@_store_options
def password_cmd(username: str, password_stdin: bool, config: str | None, url: str | None) -> None:
    """Set an account's password (its sessions end)."""
    accounts = _accounts(config, url)
    try:
        accounts.set_password(username, _read_password(password_stdin))
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{username}: password changed")


def register(group: click.Group) -> None:
    group.add_command(users_group)
