"""deploy/prometheus/prometheus.yml and deploy/grafana/provisioning/: promtool accepts the
configuration and its rules; its targets are the ports the units give the workers and the
sensor; and a real Prometheus with this very file scrapes real workers and a real sensor
started from the units' command lines, inside a network namespace of the test's own (so the
ports are exactly the shipped ones). Grafana is not in Debian: its files are checked against
the Prometheus configuration and the dashboards, not loaded by a Grafana."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import netns
import pytest
import yaml
from promharness import require_tool, run_promtool
from proxyharness import example_district
from unitfile import Unit

from monitor.gateway import workers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
SYSTEMD = DEPLOY / "systemd"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def monitor_groups() -> dict[str, list[str]]:
    (job,) = [j for j in load(CONFIG)["scrape_configs"] if j["job_name"] == "monitor"]
    return {g["labels"]["component"]: g["targets"] for g in job["static_configs"]}


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_promtool_accepts_the_config_and_loads_both_rule_files() -> None:
    r = run_promtool("check", "config", str(CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 rule files found" in r.stdout
    assert "Checking dashboards/rules/alerts.yaml" in r.stdout.replace(str(ROOT) + "/", "")


def test_targets_are_the_ports_of_the_units() -> None:
    groups = monitor_groups()
    supervisor = Unit.read(SYSTEMD / "student-monitor.service").command("ExecStart")
    # four workers of `monitor proxy --workers 4` with the unit's --metrics
    plan = workers.plan(4, "0.0.0.0", 13128, option(supervisor, "--metrics"), 3128)
    assert groups["proxy"] == [w.metrics for w in plan]
    # the template unit: worker i on 9464 + i, the same ports
    template = Unit.read(SYSTEMD / "student-monitor-worker@.service", instance="3")
    assert "--metrics 127.0.0.1:$((9464 + 3))" in template.command("ExecStart")[2]
    sensor = Unit.read(SYSTEMD / "student-monitor-sensor.service").command("ExecStart")
    assert groups["sensor"] == [option(sensor, "--metrics")]
    assert not set(groups["sensor"]) & set(groups["proxy"])


def test_grafana_provisioning_points_at_this_prometheus_and_the_dashboards() -> None:
    prom = load(CONFIG)
    (ds,) = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")[
        "datasources"
    ]
    own = [j for j in prom["scrape_configs"] if j["job_name"] == "prometheus"]
    assert ds["url"] == f"http://{own[0]['static_configs'][0]['targets'][0]}"
    assert ds["jsonData"]["timeInterval"] == prom["global"]["scrape_interval"]
    (provider,) = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "monitor.yaml")[
        "providers"
    ]
    # the install prefix of the units (/opt/student-monitor), where the checkout is
    path = Path(provider["options"]["path"].replace("/opt/student-monitor", str(ROOT)))
    shipped = sorted(path.glob("*.json"))
    assert path == ROOT / "dashboards" and len(shipped) >= 3
    for board in shipped:  # every dashboard takes any Prometheus data source, this one too
        variables = json.loads(board.read_text())["templating"]["list"]
        assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in variables)


@pytest.fixture
def lab() -> Iterator[netns.Lab]:
    with netns.lab() as the_lab:
        yield the_lab


def moved(district: Path) -> dict[str, str]:
    return {"/opt/student-monitor": str(ROOT), "/etc/student-monitor": str(district)}


def test_real_prometheus_scrapes_workers_and_sensor_with_this_file(
    lab: netns.Lab, tmp_path: Path
) -> None:
    district = example_district(tmp_path)
    gw, cl = lab.namespace("gw"), lab.namespace("cl")
    lab.link(gw, "lan0", ["192.0.2.1/24"], cl, "eth0", ["192.0.2.11/24"])
    procs: list[subprocess.Popen[bytes]] = []
    # the shipped file with two changes: scrape every second, rule paths made absolute
    text = CONFIG.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s")
    text = text.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    text = text.replace("../../dashboards/", f"{ROOT}/dashboards/")
    (tmp_path / "prometheus.yml").write_text(text)
    try:
        for name in ("student-monitor.service", "student-monitor-sensor.service"):
            unit = Unit.read(SYSTEMD / name)
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs.append(
                    gw.popen(
                        unit.command("ExecStart", moved(district)),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                    )  # fmt: skip
                )
            post = gw.run(unit.command("ExecStartPost", moved(district)), check=False, timeout=150)
            assert post.returncode == 0, post.stderr + (tmp_path / f"{name}.log").read_text()
        with (tmp_path / "prometheus.log").open("wb") as log:
            procs.append(
                gw.popen(
                    [
                        require_tool("prometheus"),
                        f"--config.file={tmp_path / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'data'}",
                        "--log.level=warn",
                        "--web.listen-address=127.0.0.1:9090",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )  # fmt: skip
            )

        def api(path: str) -> Any:
            r = gw.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:9090/api/v1/{path}"],
                       check=False)  # fmt: skip
            return json.loads(r.stdout)["data"] if r.returncode == 0 and r.stdout else None

        cores = workers.default_count()
        expected_up = {f"127.0.0.1:{9464 + i}" for i in range(min(cores, 4))} | {"127.0.0.1:9463"}
        deadline = time.monotonic() + 60
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            data = api("targets")
            if data:
                health = {
                    t["labels"]["instance"]: t["health"]
                    for t in data["activeTargets"]
                    if t["labels"]["job"] == "monitor"
                }
                if all(health.get(i) == "up" for i in expected_up):
                    break
            time.sleep(0.5)
        assert {i for i, h in health.items() if h == "up"} == expected_up, health
        # listed workers beyond this host's cores are down: MonitorProxyDown says so
        assert {i for i, h in health.items() if h != "up"} == (
            {f"127.0.0.1:{9464 + i}" for i in range(4)} - expected_up
        )
        groups = api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert any(r["type"] == "alerting" and r["name"] == "MonitorProxyDown" for r in rules)
        assert any(r["type"] == "recording" for r in rules)
        # the dashboards' sums see the sensor and every worker's store state
        result = api("query?query=count(monitor_incident_store_up%7Bjob%3D%22monitor%22%7D)")
        assert result and int(result["result"][0]["value"][1]) == len(expected_up)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=45)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
