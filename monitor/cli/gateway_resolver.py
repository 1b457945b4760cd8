"""``monitor gateway resolver``: the district resolver's configuration for transparent mode
(catalogue addresses into the gateway's nftables sets) and, optionally, SafeSearch for
everyone who uses that resolver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

import click

from monitor.cli._common import catalog_option
from monitor.cli.gateway import catalogue_of, gateway_group
from monitor.gateway.resolver import render_dnsmasq, static_set_elements
from monitor.gateway.safesearch import CHOICES, SafeSearch, parse_safesearch


@gateway_group.command("resolver")
@click.option("--kind", type=click.Choice(["dnsmasq"]), default="dnsmasq", show_default=True,
              help="The resolver to configure (dnsmasq 2.87 or newer).")  # fmt: skip
@click.option("--config", type=click.Path(file_okay=False), help="District configuration "
              "directory: its catalogue additions are included.")  # fmt: skip
@catalog_option()
@click.option("--safesearch", default="", metavar="LIST",
              help=f"Enforce SafeSearch at the resolver, for everyone using it: comma-separated, "
              f"of {CHOICES} (youtube alone is strict).")  # fmt: skip
@click.option("--safesearch-address", "addresses", multiple=True, metavar="NAME=ADDR[,ADDR]",
              help="The addresses of a SafeSearch name (e.g. safe.duckduckgo.com=…), "
              "replacing the published ones; required for DuckDuckGo, which publishes none. "
              "Repeatable.")  # fmt: skip
@click.option("--out", type=click.File("w"), default="-", help="Where to write (default: stdout).")
def resolver_cmd(
    kind: str,
    config: str | None,
    catalogs: tuple[str, ...],
    safesearch: str,
    addresses: tuple[str, ...],
    out: TextIO,
) -> None:
    """The resolver's configuration: catalogue names' addresses into the nftables sets
    (inet student_monitor catalogue4/catalogue6) that the gateway redirects to the proxy,
    and optionally SafeSearch. Check it with `dnsmasq --test --conf-file=FILE`."""
    try:
        spec = parse_safesearch(safesearch, addresses) if safesearch else SafeSearch()
        if addresses and not safesearch:
            raise ValueError("--safesearch-address needs --safesearch")
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--safesearch") from e
    catalogue = catalogue_of(config, catalogs)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.write(render_dnsmasq(catalogue, spec, generated=stamp))
    held = static_set_elements(spec, catalogue) if spec else ()
    if held:
        click.echo(
            "note: YouTube's restricted-mode address is answered by the resolver itself, so "
            "dnsmasq will not add it to the catalogue sets; the firewall must hold "
            f"{', '.join(held)} in them, or YouTube skips the proxy (the file says how).",
            err=True,
        )
