"""``monitor classify`` and ``monitor catalog list|check``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import click

from monitor.cli._common import catalog_option
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier, normalise_host
from monitor.yamlfile import ConfigError


def _load(extra: tuple[str, ...]) -> catalogue_mod.Catalogue:
    try:
        return catalogue_mod.load(extra)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


def _hosts(args: tuple[str, ...]) -> Iterator[str]:
    if args:
        yield from args
        return
    for line in sys.stdin.buffer:
        text = line.decode("utf-8", "replace").strip()
        if text and not text.startswith("#"):
            yield text


@click.command("classify")
@click.argument("hosts", nargs=-1)
@catalog_option()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tsv", "json"]),
    default="tsv",
    show_default=True,
    help="tsv: host<TAB>platform ('-' for none); json: one object per line.",
)
def classify_cmd(hosts: tuple[str, ...], catalogs: tuple[str, ...], fmt: str) -> None:
    """Print the platform of each HOST (or of each line on standard input)."""
    cls = Classifier(_load(catalogs))
    out = sys.stdout
    for host in _hosts(hosts):
        p = cls.platform_of(host)
        if fmt == "tsv":
            out.write(f"{host}\t{p.id if p else '-'}\n")
        else:
            out.write(
                json.dumps(
                    {
                        "host": host,
                        "normalised": normalise_host(host),
                        "platform": p.id if p else None,
                        "name": p.name if p else None,
                        "category": p.category if p else None,
                        "page_host": p.is_page_host(normalise_host(host) or "") if p else None,
                    }
                )
                + "\n"
            )


@click.group("catalog")
def catalog_group() -> None:
    """Inspect and check the platform catalogue."""


@catalog_group.command("list")
@catalog_option()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def catalog_list(catalogs: tuple[str, ...], fmt: str) -> None:
    """List platforms and bypass services with their ages and host counts."""
    cat = _load(catalogs)
    rows = sorted(cat, key=lambda p: (p.category == "bypass", p.id))
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "name": p.name,
                        "owner": p.owner,
                        "category": p.category,
                        "min_age": p.min_age,
                        "designed_for_children": p.designed_for_children,
                        "bypass_kind": p.bypass_kind,
                        "suffixes": list(p.suffixes),
                        "hosts": list(p.hosts),
                        "page_hosts": sorted(p.page_hosts) + ["*" + s for s in p.page_suffixes],
                        "activity_rules": len(p.activities),
                    }
                    for p in rows
                ],
                indent=2,
            )
        )
        return
    click.echo(
        f"{'id':<16} {'name':<26} {'category':<14} {'min age':>7} {'kids':>5} "
        f"{'suffixes':>8} {'hosts':>6} {'rules':>6}"
    )
    for p in rows:
        age = "-" if p.min_age is None else str(p.min_age)
        cat_name = p.category if not p.bypass_kind else f"bypass/{p.bypass_kind}"
        click.echo(
            f"{p.id:<16} {p.name[:26]:<26} {cat_name:<14} {age:>7} "
            f"{'yes' if p.designed_for_children else 'no':>5} {len(p.suffixes):>8} "
            f"{len(p.hosts):>6} {len(p.activities):>6}"
        )
    n_bypass = sum(1 for p in rows if p.category == "bypass")
    click.echo(
        f"{len(rows) - n_bypass} platforms, {n_bypass} bypass services, "
        f"{len(cat.shared_cdn_suffixes)} shared CDN suffixes"
    )


@catalog_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def catalog_check(file: str) -> None:
    """Validate a district catalogue FILE merged over the shipped one."""
    try:
        cat = catalogue_mod.check_file(file)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{file}: ok ({len(cat)} entries after merging over the shipped catalogue)")


def register(group: click.Group) -> None:
    group.add_command(classify_cmd)
    group.add_command(catalog_group)
