"""``monitor sensor --config``: identity, policy, metrics and incidents, end to end.

The example district is generated into tmp_path for a fixed date; a pcap is built with scapy
(explicit MAC addresses, loopback demo addresses, never sent) and the sensor runs as a real
subprocess writing to the district's real SQLite incident store.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from monitor.incidents.events import pseudonym
from monitor.sensor import quic, synth

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-11-18"  # a Wednesday in the example school year, no holiday
T0 = datetime(2026, 11, 18, 15, 30, tzinfo=UTC).timestamp()  # 10:30 in America/New_York
MAC_C, MAC_G = "02:00:00:00:00:01", "02:00:00:00:00:fe"
KID, TEEN, TEACHER = "127.0.0.11", "127.0.0.13", "127.0.0.50"
RESOLVER, WEB, DOH = "127.0.0.53", "127.0.0.200", "127.0.0.201"


# -- the district ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("district")
    subprocess.run(
        [sys.executable, str(ROOT / "examples/generate_district.py"), "--out", str(out),
         "--today", TODAY],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def assigned_user(district: Path, device: str) -> str:
    with open(district / "devices.csv", newline="") as f:
        return next(r["assignedUser"] for r in csv.DictReader(f) if r["deviceId"] == device)


def pseudonyms(district: Path) -> dict[str, str]:
    """Expected pseudonym per demo address, from the key the sensor created."""
    key = bytes.fromhex((district / "state" / "pseudonym.key").read_text().strip())
    return {
        KID: pseudonym(key, assigned_user(district, "cb-00240")),  # district.yaml's device
        TEEN: pseudonym(key, "stu-00554"),  # district.yaml's person
        TEACHER: pseudonym(key, assigned_user(district, "lt-00824")),
    }


# -- the capture ---------------------------------------------------------------------------


def ip(src: str, dst: str) -> Packet:
    return Ether(src=MAC_C, dst=MAC_G) / IP(src=src, dst=dst)


def dns(src: str, sport: int, name: str, *, answer: bool = False) -> Packet:
    msg = synth.dns_query([(name, 1)], response=answer)
    if answer:
        return ip(RESOLVER, src) / UDP(sport=53, dport=sport) / Raw(msg)
    return ip(src, RESOLVER) / UDP(sport=sport, dport=53) / Raw(msg)


def tls(src: str, sport: int, dst: str, name: str) -> Packet:
    hello = synth.tls_records(synth.client_hello(name, alpn=["h2"], pad_to=517))
    return ip(src, dst) / TCP(sport=sport, dport=443, seq=1, flags="PA") / Raw(hello)


def quic_flow(src: str, sport: int, name: str, dcid: bytes, *, packets: int = 1) -> list[Packet]:
    """A client's QUIC connection as a capture shows it: the Initial(s) with the ClientHello
    (Chrome's, with a post-quantum key share, needs two), a retransmission, an Initial
    acknowledging the server's under the server's connection ID (still the first DCID's
    keys), then 1-RTT packets."""
    hello = synth.client_hello(name, alpn=["h3"], pad_to=1800 if packets > 1 else 0)
    initials = synth.quic_initials(hello, dcid=dcid, packets=packets)
    keys = quic.initial_keys(quic.V1, dcid)
    ack = bytes([quic.FRAME_ACK, 0, 0, 0, 0])
    ack_initial = quic.protect_initial(
        quic.V1, b"\x5e" * 8, b"", packets, ack + bytes(1100), keys=keys
    )
    datagrams = [*initials, initials[0], ack_initial]
    datagrams += [bytes([0x41]) + b"\x5e" * 8 + bytes(60 + i) for i in range(100)]
    return [ip(src, WEB) / UDP(sport=sport, dport=443) / Raw(d) for d in datagrams]


def packets() -> list[Packet]:
    out = [
        dns(KID, 40001, "www.tiktok.com"),
        dns(KID, 40001, "www.tiktok.com", answer=True),  # the same flow: no new line
        tls(KID, 50001, WEB, "www.tiktok.com"),
        tls(KID, 50001, WEB, "www.tiktok.com"),  # retransmitted
        dns(KID, 40002, "www.youtubekids.com"),
        tls(KID, 50002, WEB, "www.youtubekids.com"),
        *quic_flow(KID, 60001, "www.tiktok.com", b"\x01" * 8, packets=2),
        *quic_flow(KID, 60002, "www.youtubekids.com", b"\x02" * 8),
        tls(TEEN, 50003, DOH, "dns.google"),
        tls(TEEN, 50003, DOH, "dns.google"),  # retransmitted
        tls(TEACHER, 50004, WEB, "www.tiktok.com"),
        *quic_flow(TEACHER, 60003, "www.tiktok.com", b"\x03" * 8),
        dns(KID, 40003, "www.example.org"),
    ]
    for i, p in enumerate(out):
        p.time = T0 + i / 100
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pcap") / "school.pcap"
    wrpcap(str(path), packets())
    return path


def monitor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def run(district: Path, capture: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    r = monitor("sensor", "--config", str(district), "--pcap", str(capture), "--format", "json",
                "--stats")  # fmt: skip
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    return [json.loads(line) for line in r.stdout.splitlines()], stats


def incidents(district: Path) -> list[dict[str, Any]]:
    db = f"sqlite:///{district / 'state' / 'incidents.sqlite'}"
    r = monitor("incidents", "list", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


# -- the checks ----------------------------------------------------------------------------


EXPECTED = [
    # client, protocol, hostname, platform, band, school, decision, rule, incident
    (KID, "dns", "www.tiktok.com", "tiktok", "under13", "ms", "block", "under13", None),
    (KID, "tls", "www.tiktok.com", "tiktok", "under13", "ms", "block", "under13", None),
    (KID, "dns", "www.youtubekids.com", "youtube-kids", "under13", "ms", "allow",
     "kids-platforms", None),
    (KID, "tls", "www.youtubekids.com", "youtube-kids", "under13", "ms", "allow",
     "kids-platforms", None),
    (KID, "quic", "www.tiktok.com", "tiktok", "under13", "ms", "block", "quic-bypass:under13",
     "medium"),
    (KID, "quic", "www.youtubekids.com", "youtube-kids", "under13", "ms", "allow",
     "kids-platforms", None),
    (TEEN, "tls", "dns.google", "doh-google", "teen", "ms", "block", "bypass-student", "high"),
    (TEACHER, "tls", "www.tiktok.com", "tiktok", "staff", "hs", "allow", "staff", None),
    (TEACHER, "quic", "www.tiktok.com", "tiktok", "staff", "hs", "allow", "staff", None),
]  # fmt: skip


def test_each_line_names_person_band_school_decision_rule(
    run: tuple[list[dict[str, Any]], dict[str, Any]], district: Path
) -> None:
    lines, _ = run
    names = pseudonyms(district)
    judged = [o for o in lines if o["platform"] is not None]
    got = [
        (o["client"], o["protocol"], o["hostname"], o["platform"], o["age_band"], o["school"],
         o["decision"], o["rule"], o["incident"])
        for o in judged
    ]  # fmt: skip
    assert got == EXPECTED
    assert [o["person"] for o in judged] == [names[row[0]] for row in EXPECTED]


def test_names_outside_the_catalogue_are_not_judged(
    run: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    (other,) = [o for o in run[0] if o["platform"] is None]
    assert other["hostname"] == "www.example.org"
    assert (other["person"], other["age_band"], other["school"]) == ("-", "-", "-")
    assert (other["decision"], other["rule"], other["incident"]) == (
        "allow",
        "not-in-catalogue",
        None,
    )


def test_one_observation_per_flow_and_name(
    run: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    lines, stats = run
    flows = [(o["client"], o["client_port"], o["hostname"]) for o in lines]
    assert len(flows) == len(set(flows)) == 10
    # the 104-packet QUIC flow gave one line; its later Initials were never decrypted
    assert stats["protocols"] == {"dns": 3, "quic": 3, "tls": 4}
    assert stats["malformed"] == {}
    assert stats["incidents"]["submitted"] == 2 and stats["incidents"]["written"] == 2


def test_incidents_written_once_each_with_source_sensor(
    run: tuple[list[dict[str, Any]], dict[str, Any]], district: Path
) -> None:
    names = pseudonyms(district)
    got = sorted(
        (i["platform"], i["rule_id"], i["severity"], i["source"], i["person"], i["count"],
         i["decision"], i["activity"], i["host"], i["school"], i["age_band"])
        for i in incidents(district)
    )  # fmt: skip
    assert got == [
        ("doh-google", "bypass-student", "high", "sensor", names[TEEN], 1, "block", "view",
         "dns.google", "ms", "teen"),
        ("tiktok", "quic-bypass:under13", "medium", "sensor", names[KID], 1, "block", "view",
         "www.tiktok.com", "ms", "under13"),
    ]  # fmt: skip
    quic_bypass = next(i for i in incidents(district) if i["rule_id"].startswith("quic-"))
    assert "bypassed over QUIC" in quic_bypass["reason"]
    assert "12 and under" in quic_bypass["reason"]  # the rule's own clause follows


def test_tsv_gains_five_columns_after_the_old_ones(district: Path, capture: Path) -> None:
    r = monitor("sensor", "--config", str(district), "--pcap", str(capture),
                "--store", f"sqlite:///{district / 'other.sqlite'}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert all(len(row) == 11 for row in rows)
    names = pseudonyms(district)
    assert rows[0][1:] == [KID, RESOLVER, "dns", "www.tiktok.com", "tiktok", names[KID],
                           "under13", "ms", "block", "under13"]  # fmt: skip
    assert rows[-1][4:] == ["www.example.org", "-", "-", "-", "-", "allow", "not-in-catalogue"]
    # --store sent the incidents elsewhere: the district's store did not get them twice
    assert all(i["count"] == 1 for i in incidents(district))
    db = f"sqlite:///{district / 'other.sqlite'}"
    listed = json.loads(monitor("incidents", "list", "--db", db, "--format", "json").stdout)
    assert len(listed) == 2


def test_without_config_the_output_stays_as_it_was(capture: Path) -> None:
    r = monitor("sensor", "--pcap", str(capture))
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert all(len(row) == 6 for row in rows) and len(rows) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--catalog", "x.yaml"], "--catalog cannot be combined with --config"),
        (["--metrics", "nonsense"], "expected HOST:PORT"),
    ],
)
def test_usage_errors(district: Path, capture: Path, args: list[str], message: str) -> None:
    r = monitor("sensor", "--config", str(district), "--pcap", str(capture), *args)
    assert r.returncode == 2 and message in r.stderr


def test_store_needs_config(capture: Path) -> None:
    r = monitor("sensor", "--pcap", str(capture), "--store", "sqlite:///x.sqlite")
    assert r.returncode == 2 and "--store needs --config" in r.stderr


def test_broken_config_is_rejected_naming_the_file(tmp_path: Path, capture: Path) -> None:
    (tmp_path / "district.yaml").write_text("roster: roster\nbogus: 1\n")
    r = monitor("sensor", "--config", str(tmp_path), "--pcap", str(capture))
    assert r.returncode == 1 and r.stdout == ""
    assert "district.yaml" in r.stderr and "bogus" in r.stderr


# -- --metrics, scraped while the sensor is still reading --------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int, deadline: float) -> Iterator[str]:
    import time
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                yield r.read().decode()
        except OSError:
            pass
        time.sleep(0.1)


def test_metrics_served_while_reading(district: Path, capture: Path, tmp_path: Path) -> None:
    """The capture comes through a FIFO that stays open, so the sensor is still running when
    the test scrapes it; then the FIFO closes and the sensor ends."""
    import os
    import time

    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sensor", "--config", str(district), "--pcap",
         str(fifo), "--metrics", f"127.0.0.1:{port}",
         "--store", f"sqlite:///{tmp_path / 'metrics.sqlite'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with open(fifo, "wb") as w:
            w.write(capture.read_bytes())
            w.flush()
            text = ""
            done = f"monitor_sensor_packets_total {float(len(packets()))}\n"
            for text in scrape(port, time.monotonic() + 60):
                if done in text:  # every packet read, and the sensor still running
                    break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert done in text, "never scraped the sensor with every packet read"
    want = [
        'monitor_requests_total{activity="view",age_band="under13",decision="block",'
        'platform="tiktok",school="ms",source="sensor"} 3.0',
        'monitor_requests_total{activity="view",age_band="staff",decision="allow",'
        'platform="tiktok",school="hs",source="sensor"} 2.0',
        'monitor_incidents_total{platform="doh-google",school="ms",severity="high",'
        'source="sensor"} 1.0',
        'monitor_sensor_observations_total{protocol="quic"} 3.0',
    ]
    for sample in want:
        assert sample in text


# -- live reloads ----------------------------------------------------------------------------


def test_live_session_reloads_policy_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    """What a live capture does every few seconds: a changed policy is taken, a broken one is
    rejected (counted, reported) and the one in force stays."""
    from monitor.cli.sensor import _Session
    from monitor.flow.metrics import Metrics
    from monitor.sensor.model import Observation
    from monitor.sensor.pipeline import Sensor

    conf = tmp_path / "district"
    subprocess.run(
        [sys.executable, str(ROOT / "examples/generate_district.py"), "--out", str(conf),
         "--today", TODAY],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    metrics = Metrics()
    session = _Session(str(conf), f"sqlite:///{tmp_path / 'x.sqlite'}", metrics)
    try:
        sensor = Sensor(session.judge.district.classifier)
        teacher = Observation(T0, TEACHER, WEB, "tls", "www.tiktok.com", platform="tiktok")
        assert session.judge.judge(teacher).decision.rule_id == "staff"

        policy = conf / "policy.yaml"
        good = policy.read_text()
        policy.write_text(good.replace("  - id: staff\n    match: {who: staff}\n    action: allow",
                                       "  - id: staff\n    match: {who: staff}\n    action: block"))  # fmt: skip
        session.reload(sensor)
        assert session.judge.judge(teacher).decision.action == "block"

        policy.write_text(good + "\nthis is: [not valid\n")
        session.reload(sensor)
        assert session.judge.judge(teacher).decision.action == "block"  # the last good one
        failures = metrics.registry.get_sample_value(
            "monitor_config_reloads_total", {"component": "policy", "result": "failure"}
        )
        assert failures == 1.0

        # a changed catalogue reaches the sensor's classifier too
        extra = conf / "extra.yaml"
        extra.write_text(
            "version: 1\nplatforms:\n  - id: fakevideo\n    name: Fake Video\n"
            "    owner: Example Org\n    category: video\n    min_age: 13\n"
            "    suffixes: [video.example]\n"
        )
        settings = (conf / "district.yaml").read_text()
        (conf / "district.yaml").write_text(
            settings.replace("catalogue: []", "catalogue: [extra.yaml]")
        )
        policy.write_text(good)
        session.reload(sensor)
        assert sensor.classify is not None and sensor.classify("www.video.example") == "fakevideo"
    finally:
        session.close()
