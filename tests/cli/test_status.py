"""`monitor status` against real processes: a supervisor with two mitmdump workers, a store
that is down, a left-over spool, a bad configuration directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxyharness import example_district, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
MONITOR = str(Path(sys.executable).with_name("monitor"))


def status(district: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, "status", "--config", str(district), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def start_workers(
    district: Path, count: int, log: Path, reload_interval: str = "0.3"
) -> tuple[subprocess.Popen[bytes], int]:
    """`monitor proxy --workers N` on loopback; returns the supervisor and the first metrics
    port."""
    metrics, base = free_port(), free_port()
    while abs(metrics - base) < 8:
        base = free_port()
    cmd = [MONITOR, "proxy", "--config", str(district), "--workers", str(count),
           "--listen", f"127.0.0.1:{free_port()}", "--worker-port-base", str(base),
           "--metrics", f"127.0.0.1:{metrics}",
           "--set", f"monitor_reload_interval={reload_interval}"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, metrics


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, Path]]:
    base = tmp_path_factory.mktemp("status")
    district = example_district(base)
    log = base / "supervisor.log"
    proc, metrics = start_workers(district, 2, log)
    try:
        wait_port(metrics + 1, timeout=90, proc=proc)
        yield district, metrics, log
    finally:
        stop(proc)


def test_two_workers_ready_with_their_versions_store_and_spools(
    two_workers: tuple[Path, int, Path],
) -> None:
    district, metrics, log = two_workers
    r = status(district, "--workers", "2", "--wait", "60")
    assert r.returncode == 0, r.stdout + r.stderr + log.read_text()
    out = r.stdout
    assert "Example Unified School District" in out
    assert "store      reachable: sqlite:///" in out
    for name in ("w0", "w1"):
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert row.split()[1:4][0] == "proxy"
        assert " ready " in row and " up " in row and " current " in row, row
    assert out.rstrip().endswith("ready")

    r = status(district, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ready"] is True and report["problems"] == []
    assert report["store"]["reachable"] is True
    by_name = {i["name"]: i for i in report["instances"]}
    assert set(by_name) == {"w0", "w1"}
    for i, name in enumerate(("w0", "w1")):
        w = by_name[name]
        assert w["kind"] == "proxy" and w["running"] and w["ready"]
        assert w["metrics"] == f"127.0.0.1:{metrics + i}"
        assert w["versions"] == report["versions"]  # what it has in force is on disk
        assert w["versions"]["roster"] and w["versions"]["policy"].isdigit()
        assert w["spool_events"] == 0 and w["last_reload"]
    assert by_name["w0"]["pid"] != by_name["w1"]["pid"]


def test_more_workers_expected_than_ready_is_not_ready(
    two_workers: tuple[Path, int, Path],
) -> None:
    district, _, _ = two_workers
    r = status(district, "--workers", "3")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "2 proxy processes ready, 3 expected" in r.stdout


def test_a_killed_worker_is_seen_and_then_back(two_workers: tuple[Path, int, Path]) -> None:
    district, _, log = two_workers
    report = json.loads(status(district, "--json").stdout)
    w1 = next(i for i in report["instances"] if i["name"] == "w1")
    os.kill(w1["pid"], signal.SIGKILL)
    r = status(district, "--json")
    after = {i["name"]: i for i in json.loads(r.stdout)["instances"]}
    if after["w1"]["pid"] == w1["pid"]:  # not restarted yet: the announcement is stale
        assert r.returncode == 3 or after["w1"]["running"] is False
        assert not after["w1"]["running"] and "is gone" in after["w1"]["reason"]
    # the supervisor starts it again; status waits for it
    r = status(district, "--workers", "2", "--wait", "60", "--json")
    assert r.returncode == 0, r.stdout + log.read_text()[-3000:]
    again = {i["name"]: i for i in json.loads(r.stdout)["instances"]}
    assert again["w1"]["pid"] != w1["pid"] and again["w1"]["ready"]


def test_store_down_workers_spool_and_status_says_so(tmp_path: Path) -> None:
    district = example_district(tmp_path)
    closed = free_port()  # nothing listens there
    yaml = district / "district.yaml"
    url = f"postgresql+psycopg://monitor:s3cret-pw@127.0.0.1:{closed}/incidents"
    yaml.write_text(yaml.read_text() + f'\nstore: "{url}"\n')
    (district / "state").mkdir(exist_ok=True)
    # a stopped instance's left-over spool: shown, with its depth
    (district / "state" / "incident-spool-w7.jsonl").write_text('{"a": 1}\n{"a": 2}\n\n')
    proc, metrics = start_workers(district, 1, tmp_path / "supervisor.log")
    try:
        wait_port(metrics, timeout=90, proc=proc)
        r = status(district, "--wait", "20", "--timeout", "2")
        # the store stays down: not ready overall, but the worker itself is ready (spooling)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "UNREACHABLE" in r.stdout and "s3cret-pw" not in r.stdout
        assert "monitor:***@127.0.0.1" in r.stdout
        row = next(line for line in r.stdout.splitlines() if line.startswith("w0 "))
        assert " ready " in row and " spooling " in row, r.stdout
        row = next(line for line in r.stdout.splitlines() if line.startswith("w7 "))
        assert row.split()[5] == "2", row  # SPOOL column
        assert "w7: not running (a spool is left)" in r.stdout
    finally:
        stop(proc)


def test_nothing_running_and_a_bad_configuration(tmp_path: Path) -> None:
    district = example_district(tmp_path)
    r = status(district)
    assert r.returncode == 3
    assert "(no process has announced itself)" in r.stdout
    assert "no running process announced" in r.stdout

    # a stale announcement: its process is gone
    folder = district / "state" / "instances"
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / "w0.json").write_text(
        json.dumps({"kind": "proxy", "instance": "w0", "pid": dead.pid, "metrics": "x:1"})
    )
    (folder / "w1.json").write_text("{not json")
    r = status(district, "--json")
    by_name = {i["name"]: i for i in json.loads(r.stdout)["instances"]}
    assert by_name["w0"]["reason"] == f"not running (process {dead.pid} is gone)"
    assert "unreadable" in by_name["w1"]["reason"]

    policy = district / "policy.yaml"
    policy.write_text(policy.read_text().replace("rules:", "rulez:", 1))
    r = status(district)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ") and "policy.yaml" in r.stderr
    assert "Traceback" not in r.stderr

    r = status(district, "--workers", "many")
    assert r.returncode == 2 and "--workers" in r.stderr


def test_a_policy_on_disk_that_the_worker_does_not_have_differs(tmp_path: Path) -> None:
    """The same number of rules, another text: the policy's hash tells them apart."""
    district = example_district(tmp_path)
    proc, metrics = start_workers(district, 1, tmp_path / "supervisor.log", "3600")
    try:
        wait_port(metrics, timeout=90, proc=proc)
        before = json.loads(status(district, "--wait", "30", "--json").stdout)
        (w0,) = before["instances"]
        assert w0["config_current"] is True and w0["versions"]["policy_sha256"]
        policy = district / "policy.yaml"
        text = policy.read_text()
        policy.write_text(text.replace("reason:", "reason: Revised.", 1))
        r = status(district)
        assert r.returncode == 0, r.stdout + r.stderr  # still ready: it serves the old one
        row = next(line for line in r.stdout.splitlines() if line.startswith("w0 "))
        assert " DIFFERS " in row
        old, new = (
            w0["versions"]["policy_sha256"],
            json.loads(status(district, "--json").stdout)["versions"]["policy_sha256"],
        )
        assert old != new
        assert f"w0: in force: roster {w0['versions']['roster']}, policy " in r.stdout
        assert f"sha256 {old}" in r.stdout and f"sha256 {new}" in r.stdout
    finally:
        stop(proc)
