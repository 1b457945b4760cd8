"""/healthz and /readyz on the metrics port of a real mitmdump with the monitor's addons, and of
a real live sensor, asked with curl; the announcement files `monitor status` reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proxyharness import example_district, free_port, start_world, wait_port

from monitor.flow import health

ROOT = Path(__file__).resolve().parents[2]


def curl_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    r = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    body, _, code = r.stdout.rpartition("\n")
    return int(code), json.loads(body)


def test_proxy_health_ready_metrics_and_announcement(tmp_path: Path) -> None:
    world = start_world(tmp_path, {"monitor_instance": "w3"})
    state = world.district / "state"
    try:
        code, body = curl_json(world.metrics_port, "/healthz")
        assert code == 200 and body["status"] == "alive"
        pid = world.proxy.proc.pid
        assert body["pid"] == pid and body["kind"] == "proxy"

        code, body = curl_json(world.metrics_port, "/readyz")
        assert code == 200, body
        assert body["status"] == "ready" and body["store"] == "up"
        assert body["instance"] == "w3" and body["pid"] == pid
        assert body["district"] == "Example Unified School District"
        versions = body["versions"]
        assert isinstance(versions, dict) and set(versions) >= {"roster", "policy", "catalogue"}
        assert body["spool_events"] == 0 and body["last_reload"]
        assert "reason" not in body

        # /metrics is served as before, on the same port
        assert world.metric("monitor_build_info") == 1.0

        (announced,) = health.announcements(state)
        path, data = announced
        assert path.name == "w3.json"
        assert isinstance(data, dict)
        assert data["pid"] == pid and data["kind"] == "proxy"
        assert data["metrics"] == f"127.0.0.1:{world.metrics_port}"
    finally:
        world.stop()
    assert health.announcements(state) == []  # withdrawn on a clean stop


def test_store_down_is_ready_while_spooling(tmp_path: Path) -> None:
    closed = free_port()
    url = f"postgresql+psycopg://monitor:pw@127.0.0.1:{closed}/incidents"
    world = start_world(tmp_path, {"monitor_store": url})
    try:
        deadline = time.monotonic() + 20
        while True:
            code, body = curl_json(world.metrics_port, "/readyz")
            if body.get("store") != "up" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert code == 200 and body["status"] == "ready"
        assert body["store"] == "spooling"
        assert "pw@" not in json.dumps(body)
    finally:
        world.stop()


def test_not_ready_and_stalled_answer_503_with_a_reason() -> None:
    """The server itself, with a process state that real processes rarely hold long enough to
    ask: no district yet, and an event loop that stopped beating."""
    from prometheus_client import CollectorRegistry

    probe = health.Health("proxy", "w0", district=lambda: None, recorder=lambda: None)
    port = free_port()
    server = health.serve("127.0.0.1", port, CollectorRegistry(), probe)
    try:
        code, body = curl_json(port, "/readyz")
        assert code == 503
        assert body["status"] == "not ready"
        assert body["reason"] == "no district configuration loaded"
        code, body = curl_json(port, "/healthz")
        assert code == 200  # alive: nothing has beaten yet, so nothing stalled

        probe.stall_after = 0.05
        probe.beat()
        time.sleep(0.2)
        code, body = curl_json(port, "/healthz")
        assert code == 503 and body["status"] == "stalled"
        assert "event loop has not run for" in str(body["reason"])

        started = [False]
        probe.started = lambda: started[0]
        code, body = curl_json(port, "/readyz")
        assert code == 503 and body["reason"] == "starting: not listening yet"
        assert health.address(server) == f"127.0.0.1:{port}"
    finally:
        health.stop(server)


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_live_sensor_health_and_ready(tmp_path: Path) -> None:
    district = example_district(tmp_path)
    port = free_port()
    log = tmp_path / "sensor.log"
    cmd = [str(Path(sys.executable).with_name("monitor")), "sensor", "--iface", "lo",
           "--config", str(district), "--metrics", f"127.0.0.1:{port}", "--format", "json"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_port(port, timeout=60, proc=proc)
        deadline = time.monotonic() + 20
        while True:
            code, body = curl_json(port, "/readyz")
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert code == 200, (body, log.read_text())
        assert body["kind"] == "sensor" and body["instance"] == "sensor"
        assert body["store"] == "up" and body["last_reload"]
        code, body = curl_json(port, "/healthz")
        assert code == 200 and body["pid"] == proc.pid
        (announced,) = health.announcements(district / "state")
        assert announced[0].name == "sensor.json"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert health.announcements(district / "state") == []
