"""``monitor gateway nftables``: the ruleset that spreads devices over the proxy workers
(:mod:`monitor.gateway.nftables`). Adds itself to ``monitor gateway``."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import TextIO

import click

from monitor.cli.gateway import gateway_group
from monitor.gateway import nftables, workers


@gateway_group.command("nftables", context_settings={"show_default": True})
@click.option(
    "--workers",
    "count",
    default="auto",
    metavar="N|auto",
    help="How many proxy workers (`monitor proxy --workers`); auto: one per core of this host.",
)
@click.option(
    "--worker-port-base",
    type=int,
    default=workers.DEFAULT_PORT_BASE,
    help="The first worker's port (`monitor proxy --worker-port-base`); worker i is on base + i.",
)
@click.option(
    "--mode",
    type=click.Choice(nftables.MODES),
    default="regular",
    help="regular: redirect the proxy port devices use; transparent: redirect TCP 80/443 to "
    "catalogue addresses (sets catalogue4/catalogue6, filled by the resolver).",
)
@click.option(
    "--listen-port",
    type=int,
    default=3128,
    help="Regular mode: the proxy port devices are told (the PAC file's, `monitor proxy "
    "--listen`'s port).",
)
@click.option("--lan-if", default="", help="The devices' interface (default: every interface).")
@click.option(
    "--device-nets",
    default="",
    metavar="CIDR,…",
    help="Device networks, IPv4 and IPv6 (default: every source). A family without a network "
    "here matches all its traffic on the interface.",
)
@click.option(
    "--resolver",
    default="",
    metavar="ADDR,…",
    help="Transparent mode: the district resolver(s) devices may use for DNS (default: none "
    "besides the gateway itself, so forwarded DNS is refused).",
)
@click.option("--out", type=click.File("w"), default="-", help="Where to write (default: stdout).")
@click.option(
    "--check",
    is_flag=True,
    help="Have nft check the ruleset against this host's kernel and tables (`nft --check`, "
    "nothing is changed; needs root) and write it only when accepted; a rejected ruleset "
    "exits with status 1, each error naming the ruleset line.",
)
def nftables_cmd(
    count: str,
    worker_port_base: int,
    mode: str,
    listen_port: int,
    lan_if: str,
    device_nets: str,
    resolver: str,
    out: TextIO,
    check: bool,
) -> None:
    """The nftables ruleset sending devices to the proxy workers, by a hash of their address."""
    try:
        n = workers.parse_count(count)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--workers") from e
    try:
        nets = nftables.parse_networks(device_nets)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--device-nets") from e
    try:
        resolvers = nftables.parse_addresses(resolver)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--resolver") from e
    command = ["monitor", "gateway", "nftables", "--mode", mode, "--workers", str(n)]
    command += ["--worker-port-base", str(worker_port_base)]
    if mode == "regular":
        command += ["--listen-port", str(listen_port)]
    if lan_if:
        command += ["--lan-if", lan_if]
    if nets:
        command += ["--device-nets", ",".join(str(n) for n in nets)]
    if resolvers:
        command += ["--resolver", ",".join(str(a) for a in resolvers)]
    try:
        spec = nftables.ruleset_spec(
            mode,
            n,
            worker_port_base,
            listen_port=listen_port,
            lan_if=lan_if,
            device_nets=nets,
            resolvers=resolvers,
            command=shlex.join(command),
        )
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    ruleset = nftables.render_ruleset(spec)
    if check:
        check_ruleset(ruleset)
    out.write(ruleset)


def check_ruleset(ruleset: str) -> None:
    """``nft --check`` on ``ruleset``; ClickException naming each rejected line."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        raise click.ClickException("--check: nft not found (apt-get install nftables)")
    try:
        r = subprocess.run(
            [nft, "--check", "--file", "-"],
            input=ruleset,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise click.ClickException(f"--check: nft did not run: {e}") from e
    if r.returncode != 0:
        errors = nftables.explain_nft_errors(r.stderr, ruleset) or [f"nft exited {r.returncode}"]
        raise click.ClickException("nft rejected the ruleset:\n  " + "\n  ".join(errors))
