"""``monitor proxy``: start mitmdump with the monitor's addons and production options."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from monitor.cli._common import load_district


def addon_script() -> Path:
    import addons

    return Path(next(iter(addons.__path__))).resolve() / "student_monitor.py"


def mitmdump_path() -> str:
    here = Path(sys.executable).with_name("mitmdump")
    if here.exists():
        return str(here)
    found = shutil.which("mitmdump")
    if not found:
        raise click.ClickException("mitmdump not found: install the project (pip install -e .)")
    return found


def proxy_argv(
    config: str,
    listen: str,
    mode: str,
    metrics: str,
    confdir: str,
    extra: tuple[str, ...],
    verbose: bool,
) -> list[str]:
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"'{listen}' is not HOST:PORT", param_hint="--listen")
    argv = [
        mitmdump_path(),
        "--listen-host",
        host.strip("[]") or "127.0.0.1",
        "--listen-port",
        port,
        "--mode",
        mode,
        "-s",
        str(addon_script()),
        "--set",
        f"monitor_config={config}",
        "--set",
        f"monitor_metrics_listen={metrics}",
        "--set",
        f"confdir={confdir}",
        # lazy: no upstream connection until a request needs one, so a blocked request never
        # reaches the platform and a refused connection costs nothing upstream
        "--set",
        "connection_strategy=lazy",
        # flows are not kept or printed: metadata goes to metrics and incidents only
        "--set",
        "flow_detail=0",
        "--set",
        f"termlog_verbosity={'info' if verbose else 'warn'}",
        # large bodies (video) stream through instead of being buffered in memory
        "--set",
        "stream_large_bodies=1m",
    ]
    for opt in extra:
        argv += ["--set", opt]
    return argv


@click.command("proxy", context_settings={"show_default": True})
@click.option(
    "--config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (with district.yaml).",
)
@click.option("--listen", default="127.0.0.1:8080", help="HOST:PORT the proxy listens on.")
@click.option(
    "--mode",
    default="regular",
    help="mitmproxy mode: regular (explicit proxy), transparent (gateway with nftables "
    "redirect, see deploy/), wireguard[:CONF].",
)
@click.option(
    "--metrics",
    default="127.0.0.1:9464",
    help="HOST:PORT of the Prometheus endpoint ('' disables).",
)
@click.option(
    "--confdir",
    default="",
    help="Where the proxy's CA lives (default: STATE_DIR/mitmproxy of the district).",
)
@click.option(
    "--set", "extra", multiple=True, metavar="OPTION=VALUE", help="Any other mitmproxy option."
)
@click.option("--verbose", is_flag=True, help="Log each reload and connection at info level.")
def proxy_cmd(
    config: str,
    listen: str,
    mode: str,
    metrics: str,
    confdir: str,
    extra: tuple[str, ...],
    verbose: bool,
) -> None:
    """Run the proxy: selective interception, enforcement, metrics and incidents."""
    district = load_district(config)  # fail here, with the file and line, before mitmdump starts
    state = district.state_dir
    state.mkdir(parents=True, exist_ok=True)
    conf = confdir or str(state / "mitmproxy")
    argv = proxy_argv(str(district.config_dir), listen, mode, metrics, conf, extra, verbose)
    click.echo(
        f"monitor: proxy on {listen} ({mode} mode), metrics on {metrics or 'off'}, "
        f"district {district.policy.district}",
        err=True,
    )
    click.echo(
        f"monitor: CA certificate for managed devices: {conf}/mitmproxy-ca-cert.pem "
        "(created on first start)",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


def register(group: click.Group) -> None:
    group.add_command(proxy_cmd)
