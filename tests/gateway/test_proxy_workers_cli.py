"""`monitor proxy` on the command line: one process exactly as before without --workers, the
checks --workers makes before anything starts (each a clear error), and `monitor up`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from netns import wait_for
from proxyharness import example_district, free_port

from monitor.cli import main
from monitor.cli import proxy as proxy_mod

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_district(tmp_path_factory.mktemp("cli"))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["proxy", *args])


def one_line(r: Result) -> str:
    return " ".join(r.output.split())


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """What `monitor proxy` would exec, instead of exec'ing it."""
    calls: list[list[str]] = []

    def fake(path: str, argv: list[str]) -> None:
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(proxy_mod.os, "execv", fake)
    return calls


def test_without_workers_one_mitmdump_with_exactly_the_options_of_before(
    district: Path, no_exec: list[list[str]]
) -> None:
    r = invoke("--config", str(district))
    assert r.exit_code == 0, r.output
    state = district / "state"
    assert no_exec == [[
        proxy_mod.mitmdump_path(),
        "--listen-host", "127.0.0.1",
        "--listen-port", "8080",
        "--mode", "regular",
        "-s", str(proxy_mod.addon_script()),
        "--set", f"monitor_config={district}",
        "--set", "monitor_metrics_listen=127.0.0.1:9464",
        "--set", f"confdir={state / 'mitmproxy'}",
        "--set", "connection_strategy=lazy",
        "--set", "flow_detail=0",
        "--set", "termlog_verbosity=warn",
        "--set", "stream_large_bodies=1m",
    ]]  # fmt: skip
    assert "proxy on 127.0.0.1:8080 (regular mode)" in r.output


def test_a_test_script_is_loaded_before_the_monitors(
    district: Path, no_exec: list[list[str]]
) -> None:
    script = ROOT / "tests" / "upstream_map.py"
    r = invoke("--config", str(district), "--listen", "*:8080", "--script", str(script))
    assert r.exit_code == 0, r.output
    (argv,) = no_exec
    assert argv[argv.index("--listen-host") + 1] == ""  # '*': every address, IPv4 and IPv6
    assert argv.index(str(script)) < argv.index(str(proxy_mod.addon_script()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "0"), "Invalid value for --workers: 0 workers: at least 1"),
        (("--workers", "-3"), "Invalid value for --workers: -3 workers: at least 1"),
        (("--workers", "many"), "'many' is not a number of workers (a whole number, or auto)"),
        (("--workers", "2", "--worker-port-base", "65535"), "gives ports 65535-65536"),
        (("--workers", "2", "--worker-port-base", "http"), "'http' is not a valid integer"),
        (
            ("--workers", "4", "--listen", "0.0.0.0:13130"),
            "the --listen port 13130 is one of the worker ports 13128-13131",
        ),
        (("--workers", "2", "--metrics", "127.0.0.1:13129"), "overlap the worker ports"),
        (("--workers", "2", "--listen", "8080"), "--listen '8080' is not HOST:PORT"),
        (("--workers", "2", "--mode", "wireguard"), "'wireguard' with --workers: choose regular"),
        (
            ("--workers", "2", "--set", "monitor_instance=gw1"),
            "with --workers each worker is named w0, w1, …; drop this --set",
        ),
    ],
)
def test_bad_worker_options_are_refused_before_anything_starts(
    district: Path, args: tuple[str, ...], message: str
) -> None:
    r = invoke("--config", str(district), *args)
    assert r.exit_code == 2, r.output
    assert message in one_line(r)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _taken_after_two_free() -> socket.socket:
    """A listening socket whose port's two neighbours below are free."""
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        if port > 1026 and _bindable(port - 1) and _bindable(port - 2):
            s.listen()
            return s
        s.close()
    raise RuntimeError("no port with two free ones below it")


def test_a_port_in_use_is_named_with_what_to_do(district: Path) -> None:
    with _taken_after_two_free() as s:
        port = s.getsockname()[1]
        r = invoke(
            "--config", str(district), "--workers", "3", "--worker-port-base", str(port - 2),
            "--metrics", f"127.0.0.1:{free_port()}",
        )  # fmt: skip
    assert r.exit_code == 1, r.output
    assert (
        f"Error: port {port} (worker w2's proxy port) is in use on 127.0.0.1:{port}: stop what "
        f"listens there (`ss -ltnp 'sport = :{port}'` names it; an earlier `monitor proxy`?) "
        "or choose another --worker-port-base"
    ) in one_line(r)


def test_a_bad_district_stops_it_before_the_workers(tmp_path: Path) -> None:
    (tmp_path / "district.yaml").write_text("roster: [\n")
    r = invoke("--config", str(tmp_path), "--workers", "2")
    assert r.exit_code == 1
    assert "district.yaml" in r.output and "Traceback" not in r.output


@pytest.fixture
def stop_on_exit() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_monitor_up_still_runs_the_proxy_and_stops_on_sigterm(
    district: Path, tmp_path: Path, stop_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    port, metrics = free_port(), free_port()
    log = tmp_path / "up.log"
    cmd = [sys.executable, "-m", "monitor", "up", "--config", str(district)]
    cmd += ["--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{metrics}", "--review", ""]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    stop_on_exit.append(proc)

    def serving() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", metrics), timeout=0.5):
                pass
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            assert proc.poll() is None, log.read_text()
            return False

    wait_for(serving, 60, "monitor up's proxy")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, log.read_text()
