"""``monitor up``: the proxy and the counselors' review app together, as the README's run
command starts them. Each runs in its own process; a signal stops both, and if one exits the
other is stopped too."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

import click

from monitor.cli._common import load_district


def _children(config: str, listen: str, metrics: str, review: str) -> list[tuple[str, list[str]]]:
    me = [sys.executable, "-m", "monitor"]
    out = [("proxy", [*me, "proxy", "--config", config, "--listen", listen, "--metrics", metrics])]
    if review:
        out.append(("review", [*me, "review", "--config", config, "--listen", review]))
    return out


@click.command("up", context_settings={"show_default": True})
@click.option(
    "--config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (with district.yaml).",
)
@click.option("--listen", default="127.0.0.1:8080", help="HOST:PORT of the proxy.")
@click.option("--metrics", default="127.0.0.1:9464", help="HOST:PORT of the Prometheus endpoint.")
@click.option(
    "--review",
    default="127.0.0.1:8000",
    help="HOST:PORT of the counselors' review app ('' to run the proxy alone).",
)
def up_cmd(config: str, listen: str, metrics: str, review: str) -> None:
    """Run the proxy and the review app until interrupted."""
    load_district(config)  # a bad configuration stops here, with file, line and field
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, argv in _children(config, listen, metrics, review):
        procs.append((name, subprocess.Popen(argv)))
    code = 0
    try:
        while not stopping:
            for name, p in procs:
                rc = p.poll()
                if rc is not None:
                    click.echo(f"monitor: the {name} exited with status {rc}; stopping", err=True)
                    code = rc or 1
                    stopping = True
                    break
            time.sleep(0.2)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.terminate()  # the proxy flushes queued incidents on SIGTERM
        deadline = time.monotonic() + 30
        for _, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(code)


def register(group: click.Group) -> None:
    group.add_command(up_cmd)
