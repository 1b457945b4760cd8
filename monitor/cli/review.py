"""``monitor review``: the counselors' review app (migrates the store, makes the first
administrator when there is no account, then serves on loopback by default)."""

from __future__ import annotations

import ipaddress
import os

import click

from monitor.incidents.retention import load_retention
from monitor.web.accounts import ADMIN_PASSWORD_ENV, FIRST_ADMIN, ensure_first_admin
from monitor.web.forwarded import parse_proxies
from monitor.yamlfile import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8000`` for IPv6) → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"'{listen}' is not HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxies(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(str(n) for n in parse_proxies(value))
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


@click.command("review", context_settings={"show_default": True})
@click.option(
    "--config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (its incident store and roster).",
)
@click.option(
    "--listen",
    default="127.0.0.1:8000",
    help="HOST:PORT to serve on. Anything but loopback belongs behind a TLS proxy.",
)
@click.option("--db", "url", help="Store URL, instead of the district's.")
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark cookies Secure even on plain HTTP (set it behind a TLS proxy).",
)
@click.option(
    "--allowed-host",
    "allowed",
    multiple=True,
    help="Host header the app answers to (repeat). Default on loopback: loopback "
    "names only (against DNS rebinding); elsewhere: any.",
)
@click.option(
    "--forwarded-allow-ips",
    "forwarded",
    multiple=True,
    callback=_proxies,
    help="Address or network (comma-separated, or repeat) of the district's reverse proxy, "
    "whose X-Forwarded-For/-Proto headers are then believed. Default: none, so the address "
    "recorded and rate-limited is the connection's own.",
)
def review_cmd(
    config: str,
    listen: str,
    url: str | None,
    secure_cookies: bool,
    allowed: tuple[str, ...],
    forwarded: tuple[str, ...],
) -> None:
    """Serve the counselors' review app.

    On the first start (no account yet) it makes the administrator account 'admin' with the
    password in MONITOR_ADMIN_PASSWORD, or a random one printed once on stderr."""
    import uvicorn

    from monitor.web import Review, ReviewSettings, create_app

    host, port = parse_listen(listen)
    hosts = allowed or (LOOPBACK_HOSTS if is_loopback(host) else ())
    try:
        settings = ReviewSettings(
            secure_cookies=secure_cookies,
            allowed_hosts=tuple(hosts),
            forwarded_allow_ips=forwarded,
            retention=load_retention(config),
        )
        review = Review.open(config, settings, store_url=url)
    except (ConfigError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    try:
        generated = ensure_first_admin(review.accounts, os.environ.get(ADMIN_PASSWORD_ENV))
    except ValueError as e:
        review.close()
        raise click.ClickException(f"{ADMIN_PASSWORD_ENV}: {e}") from e
    if generated:
        click.echo(
            f"monitor: created the administrator account '{FIRST_ADMIN}' with password "
            f"{generated}\nmonitor: it is shown only this once; change it with "
            f"`monitor users password {FIRST_ADMIN} --config {config}`",
            err=True,
        )
    click.echo(
        f"monitor: review app on http://{listen}/ ({review.district_name}); "
        f"retention: {settings.retention.describe()}",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(review),
            host=host,
            port=port,
            log_level="warning",
            # The app reads forwarded headers itself, from configured proxies only
            # (monitor.web.forwarded); uvicorn's own handling trusts loopback by default.
            proxy_headers=False,
            server_header=False,
        )
    finally:
        review.close()


def register(group: click.Group) -> None:
    group.add_command(review_cmd)
