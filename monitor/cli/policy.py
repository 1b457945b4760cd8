"""``monitor policy check``: validate a district policy file against the catalogue."""

from __future__ import annotations

from collections.abc import Iterable

import click

from monitor.cli._common import catalog_option
from monitor.platforms import catalogue as catalogue_mod
from monitor.rules.loader import load_policy
from monitor.rules.policy import Policy
from monitor.yamlfile import ConfigError


def check_policy(
    file: str,
    catalogs: Iterable[str] = (),
    known_schools: Iterable[str] | None = None,
) -> Policy:
    """Load the catalogue (shipped + ``catalogs``) and the policy; ClickException on errors."""
    try:
        cat = catalogue_mod.load(tuple(catalogs))
        return load_policy(file, cat, known_schools)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


@click.group("policy")
def policy_group() -> None:
    """Check the district policy file."""


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@catalog_option()
@click.option("--school", "schools", multiple=True,
              help="A known school sourcedId or identifier (repeatable); when given, the "
                   "policy may name only these schools.")  # fmt: skip
def policy_check(file: str, catalogs: tuple[str, ...], schools: tuple[str, ...]) -> None:
    """Validate FILE; print a summary of its rules (exit 0) or the first error (exit 1)."""
    policy = check_policy(file, catalogs, schools or None)
    click.echo(f"{file}: ok")
    for line in policy.summary():
        click.echo(f"  {line}")


def register(group: click.Group) -> None:
    group.add_command(policy_group)
