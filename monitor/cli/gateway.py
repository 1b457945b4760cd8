"""``monitor gateway …``: what the district's network needs besides the proxy, generated from
the catalogue and configuration (a PAC file; other artefacts add their own subcommands to
``gateway_group`` from their own modules)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

import click

from monitor.cli._common import catalog_option, load_district
from monitor.gateway.pac import parse_proxy_address, render_pac
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue


@click.group("gateway")
def gateway_group() -> None:
    """Generate the gateway's PAC file, firewall and resolver configuration."""


def catalogue_of(config: str | None, catalogs: tuple[str, ...]) -> Catalogue:
    """The district's catalogue (with its additions), or the shipped one plus ``catalogs``."""
    if config:
        return load_district(config).catalogue
    return catalogue_mod.load(catalogs)


@gateway_group.command("pac")
@click.option("--config", type=click.Path(file_okay=False), help="District configuration "
              "directory: its catalogue additions are included.")  # fmt: skip
@catalog_option()
@click.option("--proxy", required=True, metavar="HOST:PORT",
              help="The proxy address devices use, as written in the PAC file.")  # fmt: skip
@click.option("--out", type=click.File("w"), default="-", help="Where to write (default: stdout).")
def pac_cmd(config: str | None, catalogs: tuple[str, ...], proxy: str, out: TextIO) -> None:
    """The proxy auto-config file: catalogue hosts to the proxy, the rest DIRECT.

    The running proxy serves the same file itself at http://HOST:PORT/proxy.pac (and
    /wpad.dat); write it out to host it elsewhere or to look at it."""
    try:
        proxy = parse_proxy_address(proxy)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--proxy") from e
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.write(render_pac(catalogue_of(config, catalogs), proxy, generated=stamp))


def register(group: click.Group) -> None:
    group.add_command(gateway_group)
