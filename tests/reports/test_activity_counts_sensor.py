"""End to end: ``monitor sensor --pcap`` counts what it judges into the daily activity
aggregates, on the capture's day in the district's time zone, with source "sensor"."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap
from sqlalchemy import create_engine, select

from monitor.incidents.store.aggregateschema import daily_activity
from monitor.sensor import synth

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# 00:30 UTC on 19 November is 19:30 on the 18th in New York: the district's day counts
T0 = datetime(2026, 11, 19, 0, 30, tzinfo=UTC).timestamp()
MAC_C, MAC_G = "02:00:00:00:00:01", "02:00:00:00:00:fe"
KID, TEEN, RESOLVER, WEB, DOH = (
    "127.0.0.11",
    "127.0.0.13",
    "127.0.0.53",
    "127.0.0.200",
    "127.0.0.201",
)


def ip(src: str, dst: str) -> Packet:
    return Ether(src=MAC_C, dst=MAC_G) / IP(src=src, dst=dst)


def tls(src: str, sport: int, dst: str, name: str) -> Packet:
    hello = synth.tls_records(synth.client_hello(name, alpn=["h2"], pad_to=517))
    return ip(src, dst) / TCP(sport=sport, dport=443, seq=1, flags="PA") / Raw(hello)


def dns(src: str, sport: int, name: str) -> Packet:
    return ip(src, RESOLVER) / UDP(sport=sport, dport=53) / Raw(synth.dns_query([(name, 1)]))


def test_the_sensor_counts_by_the_districts_day(tmp_path: Path) -> None:
    district = tmp_path / "district"
    subprocess.run(
        [sys.executable, str(ROOT / "examples/generate_district.py"), "--out", str(district),
         "--today", "2026-11-18"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    packets = [
        dns(KID, 40001, "www.tiktok.com"),
        tls(KID, 50001, WEB, "www.tiktok.com"),
        tls(KID, 50002, WEB, "www.tiktok.com"),
        tls(TEEN, 50003, DOH, "dns.google"),
        dns(KID, 40003, "www.example.org"),  # not in the catalogue: not counted
    ]
    for i, p in enumerate(packets):
        p.time = T0 + i
    capture = tmp_path / "c.pcap"
    wrpcap(str(capture), packets)
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "sensor", "--config", str(district), "--pcap",
         str(capture), "--format", "json"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    observed = sum(1 for line in r.stdout.splitlines() if json.loads(line).get("platform"))
    engine = create_engine(f"sqlite:///{district / 'state' / 'incidents.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(select(daily_activity)).all()
    engine.dispose()
    got = {(r.day, r.school, r.age_band, r.platform, r.decision, r.rule_id, r.source): r.requests
           for r in rows}  # fmt: skip
    day = date(2026, 11, 18)
    assert got == {
        (day, "ms", "under13", "tiktok", "block", "under13", "sensor"): 3,
        (day, "ms", "teen", "doh-google", "block", "bypass-student", "sensor"): 1,
    }
    assert sum(got.values()) == observed  # one count per judged observation
    assert all(r.refused == 0 for r in rows)  # the sensor only watches
