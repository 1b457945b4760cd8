"""Incidents survive what a real proxy meets: a SIGKILL in the middle of a stream of blocked
requests, and a store that is broken when the proxy starts.

Real mitmdump processes with the monitor's addons, real TLS clients bound to the example
district's loopback addresses, the real SQLite store. The proxy is restarted on the same port
with the same configuration, as a service manager would."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from proxyharness import (
    ROOT,
    Origin,
    OriginCA,
    Proxy,
    curl,
    free_port,
    make_origin_ca,
    mitmdump_bin,
    wait_port,
)

from monitor.incidents.store import open_store

pytestmark = pytest.mark.slow

TZ = ZoneInfo("America/New_York")
HOSTS = ["www.tiktok.com", "www.school-site.example"]
HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
# Students the example district treats as 12 and under: an 11-year-old's Chromebook, a
# 12-year-old, a student with no birthDate, a spare device with no user, an unknown address.
UNDER13 = ["127.0.0.11", "127.0.0.12", "127.0.0.16", "127.0.0.99", "127.0.0.1"]
RULE = "under13-activity"  # /login is activity "login": blocked, with an incident


def poll(cond: Callable[[], bool], timeout: float) -> bool:
    """True as soon as ``cond()`` is; False when ``timeout`` seconds passed without."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    if not poll(cond, timeout):
        raise AssertionError(f"not reached in {timeout}s: {what}")


@dataclass
class Setup:
    base: Path
    district: Path
    origin: Origin
    ca: OriginCA
    store_url: str
    port: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    started: list[Proxy] = field(default_factory=list)

    def start(self) -> Proxy:
        """mitmdump as tests/proxyharness.py starts it, on this setup's fixed ports."""
        confdir = self.base / "mitmconf"
        confdir.mkdir(exist_ok=True)
        log = self.base / f"mitmdump-{len(self.started)}.log"
        options = {
            "confdir": str(confdir),
            "ssl_verify_upstream_trusted_ca": str(self.ca.cert_pem),
            "test_upstream": f"127.0.0.1:{self.origin.https_port}",
            "test_upstream_plain": f"127.0.0.1:{self.origin.http_port}",
            "monitor_config": str(self.district),
            "monitor_store": self.store_url,
            "monitor_metrics_listen": f"127.0.0.1:{self.metrics}",
            "connection_strategy": "lazy",
        }
        cmd = [mitmdump_bin(), "--listen-host", "127.0.0.1", "--listen-port", str(self.port)]
        cmd += ["-s", str(ROOT / "tests" / "upstream_map.py")]
        cmd += ["-s", str(ROOT / "addons" / "student_monitor.py")]
        for k, v in options.items():
            cmd += ["--set", f"{k}={v}"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        proxy = Proxy(self.port, confdir, proc, log)
        self.started.append(proxy)
        wait_port(self.port, proc=proc)
        wait_port(self.metrics, proc=proc)  # up once the district is loaded
        wait_until(lambda: proxy.ca_cert.exists(), 10, "mitmproxy's CA")
        return proxy

    def metric(self, name: str) -> float | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=5) as r:
            text = r.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stored(self) -> tuple[int, int]:
        """(sum of the counts of RULE's incidents, applied event ids) in the store."""
        store = open_store(self.store_url, create=False)
        try:
            rows = store.list(limit=100_000)
            return sum(i.count for i in rows if i.rule_id == RULE), store.applied_count()
        finally:
            store.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    district = tmp_path / "district"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "generate_district.py"), "--out", str(district),
         "--today", datetime.now(TZ).date().isoformat()],
        check=True, capture_output=True,
    )  # fmt: skip
    ca = make_origin_ca(tmp_path / "ca", HOSTS)
    origin = Origin().start(ca)
    s = Setup(
        tmp_path, district, origin, ca, f"sqlite:///{tmp_path / 'state' / 'incidents.sqlite'}"
    )
    (tmp_path / "state").mkdir()
    try:
        yield s
    finally:
        for p in s.started:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        origin.stop()


class BlockedClient(threading.Thread):
    """One student's browser: keep-alive HTTPS through the proxy, ``rate`` blocked requests a
    second, reconnecting whenever the proxy goes away. Counts what it sent and which answers
    were the block page."""

    def __init__(self, address: str, setup: Setup, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.address, self.setup, self.rate, self.stop = address, setup, rate, stop
        self.sent = self.pages = self.failed = 0
        self.unexpected: list[str] = []

    def _connect(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.setup.base / "mitmconf" /
                                                    "mitmproxy-ca-cert.pem"))  # fmt: skip
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.setup.port, timeout=10, context=ctx,
            source_address=(self.address, 0),
        )  # fmt: skip
        conn.set_tunnel("www.tiktok.com", 443)
        return conn

    def run(self) -> None:
        conn: http.client.HTTPSConnection | None = None
        period = 1 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                self.sent += 1
                conn.request("GET", "/login", headers=HTML)
                r = conn.getresponse()
                body = r.read()
                if (
                    r.status == 403
                    and r.getheader("X-Monitor-Rule") == RULE
                    and RULE.encode() in body
                ):
                    self.pages += 1
                else:
                    self.unexpected.append(f"{r.status} {r.getheader('X-Monitor-Rule')}")
            except (OSError, http.client.HTTPException):
                self.failed += 1
                if conn is not None:
                    conn.close()
                conn = None
            next_at += period
            # pacing, not synchronisation: keep the rate while the proxy is up
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.close()


def test_sigkill_loses_no_incident_whose_block_page_was_sent(setup: Setup) -> None:
    setup.start()
    stop = threading.Event()
    clients = [BlockedClient(a, setup, rate=12, stop=stop) for a in UNDER13]  # 60 a second
    for c in clients:
        c.start()
    try:
        # a few seconds of steady traffic, so the writer has written batches and holds more
        wait_until(lambda: sum(c.pages for c in clients) >= 200, 30, "200 block pages")
        killed = setup.started[-1]
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(timeout=10)
        pages_at_kill = sum(c.pages for c in clients)
        setup.start()  # the same configuration, port and state directory
        wait_until(lambda: sum(c.pages for c in clients) >= pages_at_kill + 120, 30,
                   "block pages after the restart")  # fmt: skip
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=20)
    pages = sum(c.pages for c in clients)
    failed = sum(c.failed for c in clients)
    assert [u for c in clients for u in c.unexpected] == []
    assert failed >= 1  # the kill really cut requests off
    # the restarted proxy writes everything it got, and what the killed one had taken in
    poll(lambda: setup.stored()[0] >= pages, 30)
    log = setup.started[-1].stop()
    counted, applied = setup.stored()
    # every block page that was sent is an incident event in the store ...
    assert counted >= pages, f"{pages - counted} of {pages} incidents lost"
    # ... once (a request cut off by the kill may have been recorded without its page)
    assert counted <= pages + failed
    assert applied == counted
    assert "Traceback" not in log


def test_corrupt_store_at_start_is_loud_and_the_spool_keeps_everything(setup: Setup) -> None:
    db = Path(setup.store_url.removeprefix("sqlite:///"))
    db.write_bytes(os.urandom(4096))
    proxy = setup.start()
    # fail-safe: the proxy serves, block pages and all
    ca = [proxy.ca_cert, setup.ca.cert_pem]
    for client in UNDER13[:3]:
        r = curl(proxy, "https://www.tiktok.com/login", client=client, cacert=ca, headers=HTML)
        assert r.status == 403 and RULE in r.body
    r = curl(proxy, "https://www.school-site.example/", client="127.0.0.11", cacert=ca)
    assert r.status == 200
    # loud: an error naming the store, the store down on the metrics endpoint, and the
    # failure counter that MonitorIncidentStoreFailing reads going up without more traffic
    wait_until(lambda: "incident store unavailable: " + setup.store_url in proxy.log.read_text(),
               10, "the error line naming the store")  # fmt: skip
    wait_until(lambda: setup.metric("monitor_incident_store_up") == 0, 10, "store_up 0")
    wait_until(lambda: (setup.metric("monitor_store_write_failures_total") or 0) >= 3, 20,
               "repeated store failures")  # fmt: skip
    wait_until(lambda: setup.metric("monitor_incident_spool_events") == 3, 10, "3 spooled")
    assert setup.metric("monitor_incident_spooled_total") == 3
    log = proxy.stop()
    assert "Traceback" not in log
    # a good store in its place: the next start writes everything the spool kept
    db.unlink()
    open_store(setup.store_url).close()
    setup.start()
    wait_until(lambda: setup.stored()[0] == 3, 20, "the spool replayed into the good store")
    wait_until(lambda: setup.metric("monitor_incident_store_up") == 1, 10, "store_up 1")
    wait_until(lambda: setup.metric("monitor_incident_spool_events") == 0, 10, "spool empty")
    assert setup.stored() == (3, 3)


def test_store_errors_never_show_a_password(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    """In process: a PostgreSQL URL with a password, nothing listening. The error line names
    the store with the password masked."""
    from mitmproxy.test import taddons

    from addons.runtime import Runtime

    secret = "s3cret-Pa55"
    url = f"postgresql://monitor:{secret}@127.0.0.1:{free_port()}/incidents"
    rt = Runtime()
    with caplog.at_level(logging.INFO), taddons.context(rt) as tctx:
        tctx.configure(rt, monitor_config=str(setup.district), monitor_metrics_listen="",
                       monitor_store=url)  # fmt: skip
        wait_until(lambda: any(r.levelno == logging.ERROR for r in caplog.records), 20,
                   "an error about the store")  # fmt: skip
        rt.log.update_recorder_metrics()
        up = rt.metrics.registry.get_sample_value("monitor_incident_store_up")
        rt.done()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("postgresql+psycopg://monitor:***@127.0.0.1" in m for m in errors), errors
    assert secret not in caplog.text
    assert up == 0


def test_each_instance_has_its_own_journal_and_a_live_one_is_not_shared(setup: Setup) -> None:
    """In process: two proxy processes on one state directory need two instance names."""
    from mitmproxy import exceptions
    from mitmproxy.test import taddons

    from addons.runtime import Runtime

    state = setup.district / "state"
    first, second, third = Runtime(), Runtime(), Runtime()
    opts = {"monitor_config": str(setup.district), "monitor_metrics_listen": "",
            "monitor_store": setup.store_url}  # fmt: skip
    try:
        with taddons.context(first) as t1:
            t1.configure(first, monitor_instance="w1", **opts)
            with taddons.context(second) as t2, pytest.raises(exceptions.OptionsError,
                                                              match="in use"):  # fmt: skip
                t2.configure(second, monitor_instance="w1", **opts)
            with taddons.context(third) as t3:
                t3.configure(third, monitor_instance="w2", **opts)
            assert (state / "incident-journal-w1.jsonl").exists()
            assert (state / "incident-journal-w2.jsonl").exists()
            assert (state / "incident-spool-w2.jsonl").exists()
    finally:
        for rt in (first, second, third):
            rt.done()


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x" * 64, "w 1"])
def test_instance_names_are_plain_file_name_parts(tmp_path: Path, name: str) -> None:
    from monitor.flow.recording import recorder_files

    with pytest.raises(ValueError, match="instance name"):
        recorder_files(tmp_path, name)
    assert recorder_files(tmp_path, "worker-2.a_b") == (
        tmp_path / "incident-journal-worker-2.a_b.jsonl",
        tmp_path / "incident-spool-worker-2.a_b.jsonl",
    )
