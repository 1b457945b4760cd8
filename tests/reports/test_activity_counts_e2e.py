"""End to end: a real mitmdump with the monitor's addons counts what it decides into the daily
activity aggregates and flushes them at shutdown; the rows agree with its Prometheus counters
(which are unchanged), refused connections included, and hold no person."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from proxyharness import curl, start_world
from sqlalchemy import create_engine, select

from monitor.incidents.store.aggregateschema import daily_activity

pytestmark = pytest.mark.slow

CLIENTS = {"127.0.0.11": "11-year-old, ms", "127.0.0.15": "15-year-old, hs"}


def _metric_samples(text: str) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        if not line.startswith("monitor_requests_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        key = tuple(labels[k].strip('"') for k in ("platform", "decision", "age_band", "school"))
        out[key] += int(float(line.rsplit(" ", 1)[1]))
    return out


def test_the_proxy_flushes_what_its_metrics_count(tmp_path: Path) -> None:
    import urllib.request

    world = start_world(tmp_path, {"monitor_instance": "w1"})
    try:
        for client in CLIENTS:
            for url in ("https://www.tiktok.com/", "https://www.youtube.com/watch?v=x",
                        "https://www.instagram.com/", "https://www.school-site.example/",
                        "https://api16-normal-c-useast1a.tiktokv.com/"):  # fmt: skip
                curl(world.proxy, url, client=client,
                     cacert=[world.proxy.ca_cert, world.ca.cert_pem], timeout=10)  # fmt: skip
        metrics_url = f"http://127.0.0.1:{world.metrics_port}/metrics"
        with urllib.request.urlopen(metrics_url, timeout=5) as r:
            metrics = _metric_samples(r.read().decode())
        refused = world.metric("monitor_connections_total", outcome="refused")
    finally:
        log = world.stop()  # SIGTERM: the addons flush their counts
    assert sum(metrics.values()) >= 6, log
    db = Path(world.district) / "state" / "incidents.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(select(daily_activity)).all()
    engine.dispose()
    got: Counter[tuple[str, ...]] = Counter()
    for r in rows:
        got[(r.platform, r.decision, r.age_band, r.school)] += r.requests
        assert r.source == "proxy"
    assert got == metrics, log
    # the tiktok API host is refused without decrypting for the 11-year-old: one request,
    # one refused connection
    assert refused >= 1 and sum(r.refused for r in rows) == refused
    assert {r.grade for r in rows if r.age_band == "under13"} == {"06"}
    assert not (Path(world.district) / "state" / "activity-pending-w1.json").exists()
