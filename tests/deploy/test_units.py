"""The systemd units of deploy/systemd/: hardened (``systemd-analyze security --offline``),
valid (``systemd-analyze verify``), and their ExecStart/ExecStartPost lines run as systemd
would run them, with the unit's own ports, inside network namespaces of the test's own (so the
ports are free and nothing else on the machine is touched). systemd itself does not start
them here: CI has no systemd as PID 1."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from proxyharness import example_district
from unitfile import Unit

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
# the highest overall exposure each unit may have (systemd-analyze's 0-10 scale; "OK" < 4);
# the report's units are tested in tests/notify/test_notify_units.py
EXPOSURE = {
    "student-monitor.service": 2.0,
    "student-monitor-worker@.service": 2.0,
    "student-monitor-sensor.service": 2.5,  # a packet capture: CAP_NET_RAW, AF_PACKET
    "student-monitor-report.service": 2.0,
    "student-monitor-notify.service": 2.0,
}
UNITS = [SYSTEMD / name for name in EXPOSURE]

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def moves(district: Path) -> dict[str, str]:
    return {"/opt/student-monitor": str(ROOT), "/etc/student-monitor": str(district)}


def test_every_unit_is_tested_somewhere() -> None:
    """A unit in deploy/systemd/ that no test names is shipped untested."""
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    untested = [u.name for u in SYSTEMD.glob("*.service") if u.name not in tests]
    untested += [u.name for u in SYSTEMD.glob("*.timer") if u.name not in tests]
    assert not untested


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_security_exposure(unit: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, cwd=unit.parent,
    )  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= EXPOSURE[unit.name], r.stdout
    for must in ("NoNewPrivileges=", "ProtectSystem=", "SystemCallFilter=", "PrivateTmp="):
        assert re.search(rf"✓ {must}", r.stdout), f"{unit.name}: {must} not set"


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_verify(unit: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` with the install paths moved to this checkout (it checks that
    every Exec binary exists and is executable): no error and no warning."""
    text = unit.read_text()
    for old, new in moves(tmp_path).items():
        text = text.replace(old, new)
    text = text.replace(f"WorkingDirectory={ROOT}", f"WorkingDirectory={tmp_path}")
    copy = tmp_path / unit.name
    copy.write_text(text)
    name = copy.name.replace("@.service", "@0.service")
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", name],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr


def test_wait_ready_refuses_bad_arguments() -> None:
    tool = str(SYSTEMD / "wait-ready")
    for args in ([], ["127.0.0.1"], ["127.0.0.1", "x"], ["127.0.0.1", "1", "-1"]):
        r = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "usage: wait-ready" in r.stderr


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_district(tmp_path_factory.mktemp("units"))


@pytest.fixture
def lab() -> Iterator[netns.Lab]:
    with netns.lab() as the_lab:
        yield the_lab


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 45) -> int:
    """As systemd stops a unit: ``sig`` (KillSignal=), then SIGKILL after TimeoutStopSec."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


def blocked_for_a_child(ns: netns.Namespace, port: int) -> str:
    """A request from the 11-year-old's demo address through the worker on ``port``: its
    status (the block page is answered by the proxy itself, no platform needed)."""
    r = ns.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
         "--interface", "127.0.0.11", "-x", f"http://127.0.0.1:{port}", "http://www.tiktok.com/"],
        check=False,
    )  # fmt: skip
    return r.stdout


def test_worker_template_units_run_as_systemd_runs_them(
    lab: netns.Lab, district: Path, tmp_path: Path
) -> None:
    gw = lab.namespace("gw")
    procs = []
    try:
        for i in ("0", "1"):  # @0 first: it makes the CA (as deploy/README.md says)
            unit = Unit.read(SYSTEMD / "student-monitor-worker@.service", instance=i)
            argv = unit.command("ExecStart", moves(district))
            assert argv[:2] == ["/bin/sh", "-c"]
            assert f"--metrics 127.0.0.1:$((9464 + {i}))" in argv[2]
            assert f"monitor_instance=w{i}" in argv[2]
            with (tmp_path / f"w{i}.log").open("wb") as log:
                procs.append(gw.popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
            post = gw.run(unit.command("ExecStartPost", moves(district)), check=False, timeout=120)
            assert post.returncode == 0, post.stderr + (tmp_path / f"w{i}.log").read_text()
            assert f"ready on 127.0.0.1 ports {9464 + int(i)}-{9464 + int(i)}" in post.stdout
        for port in (13128, 13129):  # the ports of the worker map (nftables)
            assert blocked_for_a_child(gw, port) == "403"
        r = gw.run([sys.executable, "-m", "monitor", "status", "--config", str(district),
                    "--workers", "2", "--json"], check=False, cwd=ROOT)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        names = {i["name"]: i for i in json.loads(r.stdout)["instances"]}
        assert names["w0"]["metrics"] == "127.0.0.1:9464"
        assert names["w1"]["metrics"] == "127.0.0.1:9465"
        for p in procs:  # KillMode=mixed: SIGTERM to the main process
            assert stop(p) in (0, -signal.SIGTERM)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_supervisor_unit_runs_as_systemd_runs_it(
    lab: netns.Lab, district: Path, tmp_path: Path
) -> None:
    gw = lab.namespace("gw")
    unit = Unit.read(SYSTEMD / "student-monitor.service")
    argv = unit.command("ExecStart", moves(district))
    assert "--workers" in argv and argv[argv.index("--workers") + 1] == "auto"
    log_path = tmp_path / "supervisor.log"
    with log_path.open("wb") as log:
        proc = gw.popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        post = gw.run(unit.command("ExecStartPost", moves(district)), check=False, timeout=150)
        assert post.returncode == 0, post.stderr + log_path.read_text()
        cores = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
        assert f"{cores} ready on 127.0.0.1 ports 9464-{9464 + cores - 1}" in post.stdout
        assert blocked_for_a_child(gw, 13128) == "403"
        assert stop(proc) == 0
        assert "stopped" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sensor_unit_runs_as_systemd_runs_it(
    lab: netns.Lab, district: Path, tmp_path: Path
) -> None:
    gw, cl = lab.namespace("gw"), lab.namespace("cl")
    lab.link(gw, "lan0", ["192.0.2.1/24"], cl, "eth0", ["192.0.2.11/24"])
    unit = Unit.read(SYSTEMD / "student-monitor-sensor.service")
    argv = unit.command("ExecStart", moves(district))
    assert argv[argv.index("--iface") + 1] == "lan0"
    assert unit.value("KillSignal") == "SIGINT"
    log_path = tmp_path / "sensor.log"
    with log_path.open("wb") as log:
        # StandardOutput=null
        proc = gw.popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    try:
        post = gw.run(unit.command("ExecStartPost", moves(district)), check=False, timeout=90)
        assert post.returncode == 0, post.stderr + log_path.read_text()
        state = district / "state"
        assert (state / "instances" / "sensor.json").exists()
        assert stop(proc, signal.SIGINT) == 0, log_path.read_text()
        assert not (state / "instances" / "sensor.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
