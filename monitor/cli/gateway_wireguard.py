"""``monitor gateway wireguard-client``: a device's WireGuard configuration for the proxy's
WireGuard mode, from the key file mitmproxy's WireGuard server uses, with the device's tunnel
address checked against the district's address map."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click

from monitor.cli._common import load_district
from monitor.cli.gateway import gateway_group
from monitor.district import District
from monitor.gateway import wireguard as wg


@gateway_group.command("wireguard-client")
@click.option("--config", required=True, type=click.Path(exists=True, file_okay=False),
              help="The district configuration directory (with district.yaml).")  # fmt: skip
@click.option("--endpoint", required=True, metavar="HOST[:PORT]",
              help="Where devices reach the proxy's WireGuard server: the gateway's public "
              f"name or address and the UDP port of its --mode wireguard:FILE@PORT "
              f"(default {wg.DEFAULT_PORT}).")  # fmt: skip
@click.option("--server-conf", type=click.Path(dir_okay=False), default=None,
              help="The WireGuard server's key file, as in --mode wireguard:FILE (default: "
              "wireguard.conf in the proxy's confdir, STATE_DIR/mitmproxy).")  # fmt: skip
@click.option("--address", default=wg.DEFAULT_ADDRESS, show_default=True,
              help="The device's IPv4 address inside the tunnel: the proxy sees the device "
              "by it, so district.yaml's addresses must map it to the device.")  # fmt: skip
@click.option("--address6", default=None, metavar="IPV6",
              help="The device's IPv6 address inside the tunnel, mapped like --address. "
              "IPv6 enters the tunnel either way; without it the device's IPv6 connections "
              "come from its home network's address, an unknown device.")  # fmt: skip
@click.option("--create", is_flag=True,
              help="Write a new key file when there is none (mitmproxy writes one on its "
              "first start otherwise).")  # fmt: skip
@click.option("--out", type=click.File("w"), default="-", help="Where to write (default: stdout).")
def wireguard_client_cmd(
    config: str,
    endpoint: str,
    server_conf: str | None,
    address: str,
    address6: str | None,
    create: bool,
    out: TextIO,
) -> None:
    """The configuration of a device that reaches the proxy over WireGuard (off the district
    network): import it in the device's WireGuard app or push it by device management.

    mitmproxy's WireGuard server has one client key: one server (its own key file and UDP
    port) per device. The device's tunnel address identifies it to the proxy, like a device's
    address on the district network."""
    try:
        host_port = wg.parse_endpoint(endpoint)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--endpoint") from e
    try:
        tunnel = wg.parse_tunnel_address(address)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--address") from e
    try:
        tunnel6 = wg.parse_tunnel_address6(address6) if address6 is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--address6") from e
    district = load_district(config)
    path = Path(server_conf) if server_conf else district.state_dir / "mitmproxy" / "wireguard.conf"
    if not path.exists():
        if not create:
            raise click.ClickException(
                f"{path}: no such key file: start the proxy once with --mode wireguard:{path} "
                "(mitmproxy writes it), or add --create"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wg.new_server_conf(), encoding="utf-8")
        path.chmod(0o600)
        click.echo(f"monitor: wrote a new WireGuard key file {path}", err=True)
    keys = wg.read_server_conf(path)
    out.write(wg.render_client(keys, host_port, tunnel, tunnel6, server_file=str(path)))
    for one in (tunnel, tunnel6):
        if one is not None:
            _say_who(district, str(one))


def _say_who(district: District, address: str) -> None:
    """Which device the district maps a tunnel address to, or a warning that none."""
    prefix = 128 if ":" in address else 32
    who = district.resolver.resolve(address)
    if who.person is None and who.device is None:
        click.echo(
            f"monitor: warning: {address} is in no entry of district.yaml's addresses: the "
            "proxy will treat this device as unknown (under 13). Add e.g. "
            f'{{cidr: "{address}/{prefix}", device: DEVICE-ID}}',
            err=True,
        )
    else:
        named = f"device {who.device.device_id}" if who.device else "a person"
        click.echo(f"monitor: tunnel address {address} is {named} ({who.source})", err=True)
