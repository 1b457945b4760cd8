"""Many writers, one store: proxy workers and sensors, each with its own journal and spool, write
to one district store (SQLite for one small site, PostgreSQL for several processes or hosts)
and share one pseudonym key and one set of teacher overrides kept in that store.

Real OS processes throughout: writer processes with a recorder each (tests/pg.py's PostgreSQL,
SQLite files), real mitmdump proxies and a real ``monitor sensor``.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg
import pytest
from sqlalchemy import create_engine, select, text

from monitor.district import DistrictLoader, shared_overrides
from monitor.incidents.events import IncidentEvent, aggregate
from monitor.incidents.store import normalise_url, open_store
from monitor.incidents.store.schema import applied_events

pg_dsn = pg.pg_dsn
pg_cluster = pg.pg_cluster

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
KEY = "0f" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a new SQLite file, or a new database on the test cluster."""
    yield from pg.empty_store_url(request, tmp_path, "writers")


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            body = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{name} (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- writer processes

# One writer process: a recorder of its own (journal and spool named by its instance in a
# shared state directory), as a proxy worker or sensor has. It may start with events in its
# spool (left by an outage) and replays them while the others write; it waits for the "go"
# file so that all writers start at once; with "stop", it keeps running (and serving metrics)
# until that file appears.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from prometheus_client import start_http_server
    from monitor.flow.metrics import Metrics
    from monitor.flow.recording import DecisionLog, recorder_files
    from monitor.incidents.events import IncidentEvent, key_fingerprint
    from monitor.incidents.recorder import Recorder
    from monitor.incidents.spool import Spool
    from monitor.incidents.store import open_store

    cfg = json.loads(sys.argv[1])
    read = lambda p: [IncidentEvent.from_dict(json.loads(l)) for l in open(p)]
    journal, spool = recorder_files(Path(cfg["state"]), cfg["instance"])
    if cfg.get("spooled"):
        s = Spool(spool)
        s.append(read(cfg["spooled"]))
        s.close()
    events = read(cfg["events"])
    key = bytes.fromhex(cfg["key"])
    fp, url = key_fingerprint(key), cfg["url"]
    rec = Recorder(lambda: open_store(url, key_fingerprint=fp, key_source="test", timeout=3),
                   spool, journal_path=journal, batch_size=50, flush_interval=0.05,
                   retry_initial=0.1, retry_max=0.5, store_name="test", start=False)
    metrics = Metrics()
    log = DecisionLog(metrics, rec, key)
    if cfg.get("metrics"):
        start_http_server(cfg["metrics"], addr="127.0.0.1", registry=metrics.registry)
    print("ready", flush=True)
    while not Path(cfg["go"]).exists():
        time.sleep(0.002)
    rec.start()
    for i, ev in enumerate(events):
        assert rec.submit(ev)
        if i % 20 == 19:
            time.sleep(0.002)  # spread out: the writers interleave
            log.update_recorder_metrics()
    while cfg.get("stop") and not Path(cfg["stop"]).exists():
        log.update_recorder_metrics()
        time.sleep(0.05)
    closed = rec.close(timeout=60)
    st = rec.stats
    print(json.dumps({"closed": closed, "submitted": st.submitted, "written": st.written,
                      "duplicates": st.duplicates, "dropped": st.dropped,
                      "replayed": st.replayed, "spool_pending": st.spool_pending}))
    """
)


def events_file(path: Path, events: list[IncidentEvent]) -> Path:
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    return path


def start_writer(tmp_path: Path, url: str, instance: str, events: list[IncidentEvent],
                 spooled: list[IncidentEvent] | None = None, **extra: Any) -> subprocess.Popen[str]:  # fmt: skip
    cfg: dict[str, Any] = {
        "url": url, "state": str(tmp_path / "state"), "instance": instance, "key": KEY,
        "events": str(events_file(tmp_path / f"events-{instance}.jsonl", events)),
        "go": str(tmp_path / "go"), **extra,
    }  # fmt: skip
    if spooled is not None:
        cfg["spooled"] = str(events_file(tmp_path / f"spooled-{instance}.jsonl", spooled))
    p = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    assert line == "ready", p.stderr.read() if p.stderr else line
    return p


def finish(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Events:
    """Events over few dedupe groups and three windows, so that every writer folds into the
    same incidents as the others."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.persons = [f"p-{i:016x}" for i in range(8)]

    def make(self, n: int) -> list[IncidentEvent]:
        r = self.rnd
        return [
            IncidentEvent(
                time=T0 + timedelta(minutes=r.uniform(0, 180)),
                person=r.choice(self.persons),
                school="ES-TEST",
                grade="5",
                age_band="under13",
                role="student",
                platform=r.choice(["tiktok", "instagram"]),
                activity="view",
                action="block",
                rule_id=r.choice(["age.under13", "school-hours"]),
                reason="Fake reason.",
                host="www.example.test",
                source=r.choice(["proxy", "sensor"]),
                severity=r.choice(["low", "medium", "high"]),
            )  # fmt: skip
            for _ in range(n)
        ]


def check_store(url: str, unique: list[IncidentEvent]) -> None:
    """The store holds exactly these events: each id applied once, each incident's count the
    number of its events, its severity their highest."""
    buckets = aggregate(unique)
    s = open_store(url)
    try:
        got = s.list(limit=100_000)
        assert Counter({(i.dedupe_key, i.window_start): i.count for i in got}) == Counter(
            {(b.dedupe_key, b.window_start): b.count for b in buckets}
        )
        assert {(i.dedupe_key, i.window_start): i.severity for i in got} == {
            (b.dedupe_key, b.window_start): b.severity for b in buckets
        }
        assert sum(i.count for i in got) == len(unique)
        with s.engine.connect() as conn:
            ids = set(conn.execute(select(applied_events.c.event_id)).scalars())
        assert ids == {e.event_id for e in unique}
    finally:
        s.close()


def test_writer_processes_fold_exactly_while_two_replay_their_spools(
    store_url: str, tmp_path: Path
) -> None:
    """Four writer processes start together on a new store (no tables yet): w0 and w1 first
    replay spools an outage left them (100 of those events in both spools, as if a spool had
    been copied), while all four write live events of the same people, platforms, rules and
    windows. Every incident has the exact count, no event is lost or doubled."""
    gen = Events(11)
    spooled = [gen.make(1000), gen.make(1000)]
    both = gen.make(100)
    spooled[0] += both
    spooled[1][500:500] = both
    live = [gen.make(1500) for _ in range(4)]
    procs = [
        start_writer(tmp_path, store_url, f"w{n}", live[n], spooled[n] if n < 2 else None)
        for n in range(4)
    ]
    (tmp_path / "go").touch()
    stats = [finish(p) for p in procs]

    unique = {e.event_id: e for evs in spooled + live for e in evs}
    assert len(unique) == 2 * 1000 + 100 + 4 * 1500
    check_store(store_url, list(unique.values()))
    assert all(s["closed"] and s["dropped"] == 0 and s["spool_pending"] == 0 for s in stats)
    assert sum(s["written"] for s in stats) == len(unique)  # each event written by one writer
    assert sum(s["duplicates"] for s in stats) == 100  # the copied ones, skipped once
    assert stats[0]["replayed"] + stats[1]["replayed"] >= 2000
    # the journals are empty: everything settled
    for n in range(4):
        assert (tmp_path / "state" / f"incident-journal-w{n}.jsonl").stat().st_size == 0


def test_writers_start_with_postgresql_down_spool_and_replay_when_it_returns(
    pg_cluster: pg.Cluster, tmp_path: Path
) -> None:
    """PostgreSQL is down when two writers start: they run, keep their events in their spools
    and say so (monitor_incident_store_up 0); PostgreSQL starts; both replay, exactly."""
    pg_cluster.stop()
    gen = Events(5)
    live = [gen.make(400), gen.make(400)]
    ports = [free_port(), free_port()]
    stop = tmp_path / "stop"
    procs = [
        start_writer(tmp_path, pg_cluster.url, f"w{n}", live[n], metrics=ports[n], stop=str(stop))
        for n in range(2)
    ]
    (tmp_path / "go").touch()
    try:
        for port in ports:
            wait_for(lambda p=port: scrape(p, "monitor_incident_spool_events") == 400.0,  # type: ignore[misc]
                     what="all events spooled")  # fmt: skip
            assert scrape(port, "monitor_incident_store_up") == 0.0
        pg_cluster.start()
        for port in ports:
            wait_for(lambda p=port: scrape(p, "monitor_incident_spool_events") == 0.0,  # type: ignore[misc]
                     what="the spool replayed")  # fmt: skip
            assert scrape(port, "monitor_incident_store_up") == 1.0
            assert scrape(port, "monitor_incident_store_key_mismatch") == 0.0
    finally:
        stop.touch()
    stats = [finish(p) for p in procs]
    assert [s["replayed"] for s in stats] == [400, 400]
    check_store(pg_cluster.url, live[0] + live[1])


# ---------------------------------------------------------------- the district's overrides


@pytest.fixture
def district(tmp_path: Path) -> Path:
    d = tmp_path / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text_ = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text_.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


def legacy_file(district: Path, *grants: tuple[str, str]) -> Path:
    now = datetime.now(UTC)
    path = district / "state" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {"id": oid, "platform": "instagram", "granted_by": "tch-0012", "granted_by_role": "teacher",
         "class_id": None, "students": [student], "starts": (now - timedelta(minutes=5)).isoformat(),
         "ends": (now + timedelta(hours=1)).isoformat(), "reason": "", "created": None,
         "revoked_at": None, "revoked_by": None}
        for oid, student in grants
    ]  # fmt: skip
    path.write_text(json.dumps({"version": 1, "overrides": records}))
    return path


def test_the_old_overrides_file_is_imported_once_and_then_not_read(
    district: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = legacy_file(district, ("ov-old1", "stu-00555"), ("ov-old2", "stu-00554"))
    loader = DistrictLoader(district)
    with caplog.at_level("WARNING", logger="monitor"):
        d = loader.load()
    assert sorted(o.id for o in d.overrides) == ["ov-old1", "ov-old2"]
    said = [r.getMessage() for r in caplog.records if "imported" in r.getMessage()]
    assert len(said) == 1 and "(2 of 2 grants were new)" in said[0] and "no longer read" in said[0]
    assert not path.exists() and (path.parent / "overrides.json.imported").exists()
    # a second process of the same district (another proxy worker) finds them in the store
    other = DistrictLoader(district).load()
    assert sorted(o.id for o in other.overrides) == ["ov-old1", "ov-old2"]
    # the same file put back (say, restored from a backup) adds nothing twice
    legacy_file(district, ("ov-old1", "stu-00555"), ("ov-old3", "stu-00553"))
    d2, results = loader.reload()
    assert [r.component for r in results] == ["overrides"] and results[0].ok
    assert sorted(o.id for o in d2.overrides) == ["ov-old1", "ov-old2", "ov-old3"]
    book = shared_overrides(d.store_url)
    assert len(book.load()) == 3
    book.source.close()  # type: ignore[attr-defined]
    loader.close()


def test_a_grant_made_elsewhere_reaches_every_loader_at_its_next_reload(district: Path) -> None:
    loaders = [DistrictLoader(district) for _ in range(3)]
    firsts = [ld.load() for ld in loaders]
    assert all(len(d.overrides) == 0 for d in firsts)
    assert all(ld.reload()[1] == [] for ld in loaders)  # nothing changed: nothing reloaded
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "override", "grant", "--config", str(district),
         "--teacher", "tch-0012", "--platform", "instagram", "--student", "stu-00555",
         "--minutes", "30"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    oid = r.stdout.split()[1].rstrip(":")
    for ld in loaders:
        d, results = ld.reload()
        assert [(x.component, x.ok) for x in results] == [("overrides", True)]
        assert [o.id for o in d.overrides] == [oid]
        assert ld.reload()[1] == []  # and once only
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "override", "revoke", "--config", str(district), oid,
         "--by", "tch-0012"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for ld in loaders:
        d, _ = ld.reload()
        assert (
            d.overrides.active_for(d.roster.people["stu-00555"], "instagram", datetime.now(UTC))
            is None
        )
        ld.close()


def test_a_store_down_at_start_is_no_error_and_is_read_when_it_answers(
    district: Path, pg_cluster: pg.Cluster
) -> None:
    text_ = (district / "district.yaml").read_text()
    (district / "district.yaml").write_text(re.sub(r"(?m)^store:.*$", "", text_)
                                            + f"\nstore: {pg_cluster.url}\n")  # fmt: skip
    legacy_file(district, ("ov-old1", "stu-00555"))
    pg_cluster.stop()
    loader = DistrictLoader(district)
    t0 = time.monotonic()
    d = loader.load()  # no error: the file's grants apply until the import can run
    assert time.monotonic() - t0 < 15
    assert [o.id for o in d.overrides] == ["ov-old1"]
    assert (district / "state" / "overrides.json").exists()  # not imported yet
    assert loader.reload()[1] == []  # still down: not reported again and again
    pg_cluster.start()
    deadline = time.monotonic() + 40
    results: list[Any] = []
    while time.monotonic() < deadline and not results:
        time.sleep(0.5)
        d, results = loader.reload()
    assert [(r.component, r.ok) for r in results] == [("overrides", True)], results
    assert [o.id for o in d.overrides] == ["ov-old1"]
    assert not (district / "state" / "overrides.json").exists()  # imported now
    loader.close()


# ---------------------------------------------------------------- proxies and a sensor, end to end

HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
KID, TEEN, FIFTEEN = "127.0.0.11", "127.0.0.13", "127.0.0.15"


def capture_bytes(tmp_path: Path) -> bytes:
    """A capture the sensor reads: a student's device opens a DNS-over-HTTPS resolver (TLS to
    dns.google), which the example policy blocks as a bypass, with a high incident."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    from monitor.sensor import synth

    hello = synth.tls_records(synth.client_hello("dns.google", alpn=["h2"], pad_to=517))
    pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:fe") / IP(src=TEEN, dst="127.0.0.201")
           / TCP(sport=50003, dport=443, seq=1, flags="PA") / Raw(hello))  # fmt: skip
    pkt.time = time.time()
    path = tmp_path / "capture.pcap"
    wrpcap(str(path), [pkt])
    return path.read_bytes()


def monitor_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT, env=env)  # fmt: skip


def incidents_of(url: str) -> list[Any]:
    s = open_store(url)
    try:
        return s.list(limit=1000)
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_proxies_and_a_sensor_on_one_configuration_share_store_key_and_overrides(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two real mitmdump proxies and a real sensor, started on the same --config: all run
    (each has its own journal and spool), all write into the one store; a student blocked
    through both proxies is one incident with the summed count; a teacher's grant made with
    `monitor override --config` opens the platform on both proxies within seconds, and its
    revocation closes it on both."""
    from proxyharness import (
        EXAMPLE_HOSTS,
        Origin,
        curl,
        example_district,
        make_origin_ca,
        start_proxy,
    )

    district = example_district(tmp_path)
    instances = ("", "w1")  # the proxy's default instance beside a second worker
    url = f"sqlite:///{district / 'state' / 'incidents.sqlite'}"  # the default store
    if backend == "postgresql":
        url = request.getfixturevalue("store_url_pg")
        (district / "district.yaml").write_text(
            (district / "district.yaml").read_text() + f"\nstore: {url}\n"
        )
        instances = ("w0", "w1")
    ca = make_origin_ca(tmp_path / "ca", EXAMPLE_HOSTS)
    origin = Origin().start(ca)
    proxies: list[Any] = []
    sensor = None
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    try:
        for n, instance in enumerate(instances):
            opts = {"monitor_config": str(district), "monitor_metrics_listen": "",
                    "monitor_reload_interval": "0.3", "connection_strategy": "lazy"}  # fmt: skip
            if instance:
                opts["monitor_instance"] = instance
            proxies.append(start_proxy(tmp_path / f"proxy{n}", origin, ca, opts))
        sensor = subprocess.Popen(
            [sys.executable, "-m", "monitor", "sensor", "--config", str(district), "--pcap",
             str(fifo), "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        with open(fifo, "wb") as w:
            w.write(capture_bytes(tmp_path))
            w.flush()

            def get(proxy: Any, client: str, target: str, **kw: Any) -> int:
                r = curl(proxy, target, client=client, cacert=[proxy.ca_cert, ca.cert_pem], **kw)
                return r.status

            # the sensor's incident arrives while it is still running, beside the proxies
            wait_for(
                lambda: any(i.source == "sensor" for i in incidents_of(url)), what="sensor row"
            )
            assert sensor.poll() is None and all(p.proc.poll() is None for p in proxies)

            # one student, blocked through both proxies: one incident, count 5
            while time.time() % 900 > 870:  # not across a 15-minute dedupe window
                time.sleep(1)
            post = {"method": "POST", "data": "x=1",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"}}  # fmt: skip
            target = "https://www.tiktok.com/api/commit/item/post/"
            for proxy in (proxies[0], proxies[1], proxies[0], proxies[1], proxies[0]):
                assert get(proxy, KID, target, **post) == 403

            def proxy_rows() -> list[Any]:
                return [
                    i for i in incidents_of(url) if i.source == "proxy" and i.platform == "tiktok"
                ]

            wait_for(lambda: sum(i.count for i in proxy_rows()) == 5, what="5 proxy events")
            assert [i.count for i in proxy_rows()] == [5]

            # a teacher's grant reaches both proxies; its revocation too
            page = "https://www.instagram.com/"
            assert [get(p, FIFTEEN, page, headers=HTML) for p in proxies] == [403, 403]
            student = _person_of(district, FIFTEEN)
            g = monitor_cli("override", "grant", "--config", str(district), "--teacher",
                            _first_teacher(district), "--platform", "instagram", "--student",
                            student, "--minutes", "20", "--reason", "class project")  # fmt: skip
            assert g.returncode == 0, g.stderr
            t0 = time.monotonic()
            for p in proxies:
                wait_for(lambda p=p: get(p, FIFTEEN, page, headers=HTML) == 200, timeout=15,  # type: ignore[misc]
                         what="the grant in force")  # fmt: skip
            picked_up = time.monotonic() - t0
            assert get(proxies[0], KID, page, headers=HTML) == 403  # never for an under-13
            oid = g.stdout.split()[1].rstrip(":")
            r = monitor_cli("override", "revoke", "--config", str(district), oid, "--by",
                            _first_teacher(district))  # fmt: skip
            assert r.returncode == 0, r.stderr
            for p in proxies:
                wait_for(lambda p=p: get(p, FIFTEEN, page, headers=HTML) == 403, timeout=15,  # type: ignore[misc]
                         what="the revocation in force")  # fmt: skip
            assert sensor.poll() is None
        out, err = sensor.communicate(timeout=60)
        assert sensor.returncode == 0, err
        assert "in use" not in err
        rows = incidents_of(url)
        assert {i.source for i in rows} == {"proxy", "sensor"}
        (bypass,) = [i for i in rows if i.source == "sensor"]
        assert (bypass.platform, bypass.rule_id, bypass.severity) == (
            "doh-google",
            "bypass-student",
            "high",
        )
        state = district / "state"
        names = {f"incident-spool{'-' + i if i else ''}.jsonl" for i in (*instances, "sensor")}
        assert names <= {p.name for p in state.iterdir()}
        print(f"grant picked up by both proxies in {picked_up:.1f} s")
        assert picked_up < 10
    finally:
        if sensor is not None and sensor.poll() is None:
            sensor.kill()
            sensor.wait()
        logs = [p.stop() for p in proxies]
        origin.stop()
    for log in logs:
        assert "Traceback" not in log and "in use by another" not in log, log


@pytest.fixture
def store_url_pg(pg_dsn: str) -> Iterator[str]:
    dsn = normalise_url(pg_dsn)
    name = "e2e_" + secrets.token_hex(6)
    admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield dsn.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _person_of(district: Path, address: str) -> str:
    text_ = (district / "district.yaml").read_text()
    m = re.search(rf"cidr: {re.escape(address)}/32, (person|device): ([\w-]+)", text_)
    assert m
    if m.group(1) == "person":
        return m.group(2)
    for line in (district / "devices.csv").read_text().splitlines():
        if line.startswith(m.group(2) + ","):
            return line.split(",")[2]
    raise AssertionError(address)


def _first_teacher(district: Path) -> str:
    for line in (district / "roster" / "roles.csv").read_text().splitlines():
        cells = line.split(",")
        if cells[5] == "teacher":
            return cells[3]
    raise AssertionError("no teacher")


# ---------------------------------------------------------------- the pseudonym key at start


@pytest.mark.slow
def test_a_sensor_or_proxy_with_another_key_stops_at_start_naming_the_key(tmp_path: Path) -> None:
    from proxyharness import example_district, free_port

    district = example_district(tmp_path)
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(capture_bytes(tmp_path))
    first = monitor_cli("sensor", "--config", str(district), "--pcap", str(capture))
    assert first.returncode == 0, first.stderr  # the store now remembers state/pseudonym.key
    other = dict(os.environ, MONITOR_PSEUDONYM_KEY="ab" * 32)
    r = monitor_cli("sensor", "--config", str(district), "--pcap", str(capture), env=other)
    assert r.returncode == 1 and r.stdout == ""
    assert "refused: the pseudonym key from MONITOR_PSEUDONYM_KEY" in r.stderr
    assert "pseudonym_key_file in district.yaml" in r.stderr and "ab" * 32 not in r.stderr
    # the proxy: mitmdump stops during start-up with the same message
    p = subprocess.run(
        [sys.executable, "-m", "monitor", "proxy", "--config", str(district), "--listen",
         f"127.0.0.1:{free_port()}", "--metrics", "", "--confdir", str(tmp_path / "mitm")],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=other,
    )  # fmt: skip
    assert p.returncode != 0
    assert "refused: the pseudonym key from MONITOR_PSEUDONYM_KEY" in p.stdout + p.stderr
    # the district's own key file still works, and nothing of the refused runs was written
    again = monitor_cli("sensor", "--config", str(district), "--pcap", str(capture), "--stats")
    assert again.returncode == 0, again.stderr
    (row,) = incidents_of(f"sqlite:///{district / 'state' / 'incidents.sqlite'}")
    assert row.count == 2  # the first and the last run


@pytest.mark.slow
def test_sensor_instances_name_their_own_journal_and_spool(tmp_path: Path) -> None:
    from proxyharness import example_district

    district = example_district(tmp_path)
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(capture_bytes(tmp_path))
    # a running sensor (default instance "sensor") holds its files …
    first = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sensor", "--config", str(district), "--pcap", str(fifo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        with open(fifo, "wb") as w:
            lock = district / "state" / "incident-journal-sensor.lock"
            wait_for(lock.exists, what="the first sensor's journal")
            time.sleep(0.5)
            # … so a second one with the same name is refused, with a clear message …
            same = monitor_cli("sensor", "--config", str(district), "--pcap", str(capture))
            assert same.returncode == 1
            assert "incident-journal-sensor.jsonl is in use by another process" in same.stderr
            # … and one with its own name runs beside it
            own = monitor_cli("sensor", "--config", str(district), "--pcap", str(capture),
                              "--instance", "lan2")  # fmt: skip
            assert own.returncode == 0, own.stderr
            w.write(capture.read_bytes())
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    names = {p.name for p in (district / "state").iterdir()}
    assert {"incident-spool-sensor.jsonl", "incident-spool-lan2.jsonl"} <= names
    assert "incident-spool.jsonl" not in names  # the proxy's default name stays free
    (row,) = incidents_of(f"sqlite:///{district / 'state' / 'incidents.sqlite'}")
    assert row.count == 2 and row.source == "sensor"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instance", "bad name!"], "letters, digits, '.', '_' and '-'"),
        (["--instance", "x" * 64], "at most 63"),
    ],
)
def test_sensor_instance_names_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    r = monitor_cli("sensor", "--config", str(tmp_path), "--pcap", str(tmp_path / "x"), *args)
    assert r.returncode == 2 and message in r.stderr and "--instance" in r.stderr


def test_sensor_instance_needs_config(tmp_path: Path) -> None:
    r = monitor_cli("sensor", "--pcap", str(tmp_path / "x"), "--instance", "lan2")
    assert r.returncode == 2 and "--instance needs --config" in r.stderr


@pytest.mark.slow
def test_a_proxy_starts_with_postgresql_down_and_catches_up_when_it_returns(
    tmp_path: Path, pg_cluster: pg.Cluster
) -> None:
    """The district's store is a PostgreSQL that is down when the proxy starts: the proxy
    starts and filters, says the store is down (monitor_incident_store_up 0), keeps incidents
    in its spool; when PostgreSQL returns, the spool is replayed, the key claimed, and a grant
    made then reaches the proxy."""
    from proxyharness import (
        EXAMPLE_HOSTS,
        Origin,
        curl,
        example_district,
        make_origin_ca,
        start_proxy,
    )

    district = example_district(tmp_path)
    (district / "district.yaml").write_text(
        (district / "district.yaml").read_text() + f"\nstore: {pg_cluster.url}\n"
    )
    pg_cluster.stop()
    ca = make_origin_ca(tmp_path / "ca", EXAMPLE_HOSTS)
    origin = Origin().start(ca)
    port = free_port()
    proxy = None
    try:
        proxy = start_proxy(tmp_path / "proxy", origin, ca, {
            "monitor_config": str(district), "monitor_metrics_listen": f"127.0.0.1:{port}",
            "monitor_reload_interval": "0.3", "connection_strategy": "lazy",
            "monitor_instance": "w0"})  # fmt: skip

        def get(client: str, target: str, **kw: Any) -> int:
            assert proxy is not None
            return curl(
                proxy, target, client=client, cacert=[proxy.ca_cert, ca.cert_pem], **kw
            ).status

        post = {"method": "POST", "data": "x=1",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"}}  # fmt: skip
        target = "https://www.tiktok.com/api/commit/item/post/"
        for _ in range(3):
            assert get(KID, target, **post) == 403  # filtering goes on
        wait_for(lambda: scrape(port, "monitor_incident_spool_events") == 3.0, what="spooled")
        assert scrape(port, "monitor_incident_store_up") == 0.0
        pg_cluster.start()
        wait_for(lambda: scrape(port, "monitor_incident_spool_events") == 0.0, timeout=60,
                 what="the spool replayed")  # fmt: skip
        assert scrape(port, "monitor_incident_store_up") == 1.0
        assert scrape(port, "monitor_incident_store_key_mismatch") == 0.0
        rows = incidents_of(pg_cluster.url)
        assert [(i.platform, i.count, i.source) for i in rows] == [("tiktok", 3, "proxy")]
        eng = create_engine(normalise_url(pg_cluster.url))
        with eng.connect() as conn:  # the key was claimed once the store answered
            fp = conn.execute(text("SELECT value FROM store_settings")).scalar_one()
        eng.dispose()
        assert len(fp) == 64
        page = "https://www.instagram.com/"
        assert get(FIFTEEN, page, headers=HTML) == 403
        g = monitor_cli("override", "grant", "--config", str(district), "--teacher",
                        _first_teacher(district), "--platform", "instagram", "--student",
                        _person_of(district, FIFTEEN), "--minutes", "20")  # fmt: skip
        assert g.returncode == 0, g.stderr
        wait_for(lambda: get(FIFTEEN, page, headers=HTML) == 200, timeout=40, what="the grant")
    finally:
        log = proxy.stop() if proxy is not None else ""
        origin.stop()
    assert "Traceback" not in log, log
