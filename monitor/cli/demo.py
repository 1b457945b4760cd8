"""``monitor demo``: what the README's run command starts on the embedded default."""

from __future__ import annotations

import click

from .. import catalogue as catalogue_mod
from ..classify import Classifier

SAMPLE_HOSTS = (
    "www.tiktok.com",
    "api16-normal-c-useast1a.tiktokv.com",
    "www.youtube.com",
    "rr3---sn-p5qlsnz6.googlevideo.com",
    "www.youtubekids.com",
    "www.instagram.com",
    "scontent-iad3-1.cdninstagram.com",
    "discord.com",
    "web.roblox.com",
    "classroom.google.com",
    "docs.google.com",
    "www.khanacademy.org",
    "instanttelegram.com",
    "dns.google",
)


@click.command("demo")
def demo_cmd() -> None:
    """Classify a sample of hosts with the shipped catalogue and explain each result."""
    cat = catalogue_mod.load()
    cls = Classifier(cat)
    n_bypass = sum(1 for p in cat if p.is_bypass)
    click.echo(f"catalogue: {len(cat) - n_bypass} platforms, {n_bypass} bypass services")
    click.echo(f"{'host':<40} {'platform':<14} {'category':<14} {'host role':<10} {'min age':>7}")
    for host in SAMPLE_HOSTS:
        p = cls.platform_of(host)
        if p is None:
            click.echo(f"{host:<40} {'-':<14} {'':<14} {'passed':<10} {'':>7}")
            continue
        role = "page" if p.is_page_host(host) else "api/media"
        age = "-" if p.min_age is None else str(p.min_age)
        click.echo(f"{host:<40} {p.id:<14} {p.category:<14} {role:<10} {age:>7}")
    click.echo("\nTry your own: monitor classify HOST ... (or one host per line on stdin)")


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
