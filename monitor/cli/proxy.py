"""``monitor proxy``: start mitmdump with the monitor's addons and production options; with
``--workers N``, N of them on one gateway, supervised (:mod:`monitor.gateway.workers`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from monitor.cli._common import load_district
from monitor.gateway import workers as workers_mod
from monitor.gateway.failover import NftFailover


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
    mode: str | tuple[str, ...],
    metrics: str,
    confdir: str,
    extra: tuple[str, ...],
    verbose: bool,
    scripts: tuple[str, ...] = (),
) -> list[str]:
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"'{listen}' is not HOST:PORT", param_hint="--listen")
    host = host.strip("[]")
    argv = [
        mitmdump_path(),
        "--listen-host",
        # '*': every address, IPv4 and IPv6 (mitmproxy's empty listen_host)
        "" if host == "*" else host or "127.0.0.1",
        "--listen-port",
        port,
    ]
    for one in (mode,) if isinstance(mode, str) else mode:  # mitmproxy runs one server each
        argv += ["--mode", one]
    for script in scripts:
        argv += ["-s", str(Path(script).resolve())]
    argv += [
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
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    help="HOST:PORT the proxy listens on ('*' as HOST: every IPv4 and IPv6 address). With "
    "--workers: the workers listen on HOST, and PORT is the port devices use, which the "
    "nftables ruleset redirects to them (nothing listens on it).",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    default=("regular",),
    help="mitmproxy mode: regular (explicit proxy), transparent (gateway with nftables "
    "redirect, see deploy/), wireguard[:CONF][@PORT]. Repeatable without --workers: e.g. "
    "one wireguard:FILE@PORT per device (each WireGuard server has one client key).",
)
@click.option(
    "--metrics",
    default="127.0.0.1:9464",
    help="HOST:PORT of the Prometheus endpoint ('' disables). With --workers: the first "
    "worker's; worker i serves on PORT+i (one scrape target per worker).",
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
@click.option(
    "--workers",
    "workers",
    default=None,
    metavar="N|auto",
    show_default=False,
    help="Run N mitmdump workers and keep them running (auto: one per core). Worker i "
    "listens on --worker-port-base + i, serves metrics on the --metrics port + i and keeps its "
    "own incident journal (instance wI). Spread devices over them with `monitor gateway "
    "nftables`. Without --workers: one process, as before.",
)
@click.option(
    "--worker-port-base",
    type=int,
    default=workers_mod.DEFAULT_PORT_BASE,
    help="The first worker's port (with --workers).",
)
@click.option(
    "--nft-failover",
    is_flag=True,
    help="With --workers, on a gateway with the ruleset of `monitor gateway nftables` loaded "
    "(needs CAP_NET_ADMIN): while a worker is down, send its devices to the next live worker "
    "(its bucket in the map `workers`), and back when it listens again.",
)
@click.option(
    "--script",
    "scripts",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="For tests only: another mitmproxy addon script, loaded before the monitor's.",
)
def proxy_cmd(
    config: str,
    listen: str,
    modes: tuple[str, ...],
    metrics: str,
    confdir: str,
    extra: tuple[str, ...],
    verbose: bool,
    workers: str | None,
    worker_port_base: int,
    nft_failover: bool,
    scripts: tuple[str, ...],
) -> None:
    """Run the proxy: selective interception, enforcement, metrics and incidents."""
    count = 0
    if workers is not None:
        try:
            count = workers_mod.parse_count(workers)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--workers") from e
    district = load_district(config)  # fail here, with the file and line, before mitmdump starts
    state = district.state_dir
    state.mkdir(parents=True, exist_ok=True)
    conf = confdir or str(state / "mitmproxy")
    mode = modes[0] if len(modes) == 1 else ", ".join(modes)
    if count:
        sys.exit(
            run_workers(
                str(district.config_dir),
                district.policy.district,
                count,
                listen,
                mode,
                metrics,
                conf,
                extra,
                verbose,
                scripts,
                worker_port_base,
                nft_failover=nft_failover,
            )
        )
    if nft_failover:
        raise click.BadParameter("only with --workers", param_hint="--nft-failover")
    argv = proxy_argv(
        str(district.config_dir), listen, modes, metrics, conf, extra, verbose, scripts
    )
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


WORKER_MODES = ("regular", "transparent")


def run_workers(
    config: str,
    district_name: str,
    count: int,
    listen: str,
    mode: str,
    metrics: str,
    conf: str,
    extra: tuple[str, ...],
    verbose: bool,
    scripts: tuple[str, ...],
    port_base: int,
    *,
    nft_failover: bool = False,
) -> int:
    """Plan and check the workers' ports, then supervise them until a signal; the exit status."""
    if mode not in WORKER_MODES:
        raise click.BadParameter(
            f"{mode!r} with --workers: choose regular or transparent (a WireGuard server is "
            "one process)",
            param_hint="--mode",
        )
    taken = [o for o in extra if o.split("=", 1)[0].strip() == "monitor_instance"]
    if taken:
        raise click.BadParameter(
            f"{taken[0]!r}: with --workers each worker is named w0, w1, …; drop this --set",
            param_hint="--set",
        )
    try:
        host, front = workers_mod.split_hostport(listen, "--listen")
        plan = workers_mod.plan(count, host, port_base, metrics, front)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    try:
        workers_mod.check_free(plan)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    first, last = plan[0], plan[-1]
    ports = f"{first.port}-{last.port}" if count > 1 else str(first.port)
    metrics_text = "off"
    if metrics:
        m_last = last.metrics.rpartition(":")[2]
        metrics_text = first.metrics if count == 1 else f"{first.metrics} to port {m_last}"
    click.echo(
        f"monitor: {count} proxy workers ({mode} mode) on {first.host} ports {ports}, "
        f"metrics on {metrics_text}, district {district_name}",
        err=True,
    )
    rules = (
        f"monitor gateway nftables --mode {mode} --workers {count} --worker-port-base {port_base}"
    )
    if mode == "regular":
        rules += f" --listen-port {front}"
        click.echo(f"monitor: devices use port {front}, redirected to the workers by:", err=True)
    else:
        click.echo("monitor: devices' catalogue traffic is redirected to the workers by:", err=True)
    click.echo(f"monitor:   {rules} --lan-if IF --device-nets CIDR,… | nft -f -", err=True)
    if first.host in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            "monitor: warning: the workers listen on loopback, which a redirect from the "
            "district's network cannot reach: use --listen 0.0.0.0:PORT (or *:PORT for IPv6 too)",
            err=True,
        )
    warning = workers_mod.ephemeral_overlap(plan)
    if warning:
        click.echo(f"monitor: warning: {warning}", err=True)
    click.echo(
        f"monitor: CA certificate for managed devices: {conf}/mitmproxy-ca-cert.pem "
        "(created on first start)",
        err=True,
    )

    def argv_of(w: workers_mod.Worker) -> list[str]:
        options = (*extra, f"monitor_instance={w.name}")
        return proxy_argv(config, w.listen, mode, w.metrics, conf, options, verbose, scripts)

    on_ready = None
    if nft_failover:
        failover = NftFailover(
            [w.port for w in plan], lambda t: click.echo(f"monitor: {t}", err=True)
        )
        problem = failover.check()
        if problem:
            raise click.ClickException(f"--nft-failover: {problem}")
        on_ready = failover.update
    supervisor = workers_mod.Supervisor(plan, argv_of, out=sys.stderr, on_ready=on_ready)
    return supervisor.run()


def register(group: click.Group) -> None:
    group.add_command(proxy_cmd)
