"""Observation → verdict (identity, policy) and its recording, in process, on the generated
example district; and the sensor's own Prometheus collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Raw

from monitor.district import District, DistrictLoader
from monitor.flow.metrics import Metrics
from monitor.flow.recording import DecisionLog
from monitor.incidents.events import UNKNOWN_PERSON, pseudonym
from monitor.sensor import metrics as sensor_metrics
from monitor.sensor import synth
from monitor.sensor.judge import ACTIVITY, Judge, quic_bypass
from monitor.sensor.model import Observation
from monitor.sensor.pipeline import Frame, Sensor

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-11-18"
T0 = 1795015800.0  # 2026-11-18T15:30:00Z, 10:30 in America/New_York (school hours)
DAY = 86400.0
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    out = tmp_path_factory.mktemp("district")
    subprocess.run(
        [sys.executable, str(ROOT / "examples/generate_district.py"), "--out", str(out),
         "--today", TODAY],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return DistrictLoader(out).load()


def obs(client: str, protocol: str, host: str, when: float = T0) -> Observation:
    transport = "udp" if protocol in ("dns", "quic") else "tcp"
    return Observation(when, client, "192.0.2.1", protocol, host, transport=transport)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client", "protocol", "host", "when", "expected"),
    [
        # (band, school, decision, rule, incident)
        ("127.0.0.11", "tls", "www.tiktok.com", T0, ("under13", "ms", "block", "under13", None)),
        ("127.0.0.11", "quic", "www.tiktok.com", T0,
         ("under13", "ms", "block", "quic-bypass:under13", "medium")),
        ("127.0.0.11", "dns", "www.youtubekids.com", T0,
         ("under13", "ms", "allow", "kids-platforms", None)),
        # the age edge: 12 today, 13 tomorrow (America/New_York midnight)
        ("127.0.0.12", "tls", "www.tiktok.com", T0, ("under13", "ms", "block", "under13", None)),
        ("127.0.0.12", "tls", "www.tiktok.com", T0 + DAY,
         ("teen", "ms", "block", "student-social", None)),
        # a teen on YouTube in school hours is restricted: over QUIC the headers cannot be
        # injected, but restrict is not block, so no bypass incident
        ("127.0.0.13", "quic", "www.youtube.com", T0,
         ("teen", "ms", "restrict", "approved-youtube-school-hours", None)),
        ("127.0.0.13", "tls", "dns.google", T0, ("teen", "ms", "block", "bypass-student", "high")),
        ("127.0.0.13", "quic", "dns.google", T0,
         ("teen", "ms", "block", "quic-bypass:bypass-student", "high")),
        ("127.0.0.13", "dns", "cloudflare-dns.com", T0,
         ("teen", "ms", "block", "bypass-student", "high")),
        ("127.0.0.50", "quic", "www.tiktok.com", T0, ("staff", "hs", "allow", "staff", None)),
        # nobody known at this address: the policy's unknown (the strictest student band)
        ("127.0.0.1", "quic", "www.tiktok.com", T0,
         ("unknown", "unknown", "block", "quic-bypass:under13", "medium")),
    ],
)  # fmt: skip
def test_verdicts(
    district: District,
    client: str,
    protocol: str,
    host: str,
    when: float,
    expected: tuple[str, str, str, str, str | None],
) -> None:
    v = Judge(district, KEY).judge(obs(client, protocol, host, when))
    d = v.decision
    assert (v.age_band, v.school, d.action, d.rule_id, d.incident) == expected
    assert v.judged


@pytest.mark.parametrize(
    "host",
    ["www.example.org", "tiktok\\000.com", "192.0.2.7", ""],
    ids=["not-in-catalogue", "escaped-bytes", "ip-literal", "empty"],
)
def test_not_judged(district: District, host: str) -> None:
    v = Judge(district, KEY).judge(obs("127.0.0.11", "tls", host))
    assert (v.person, v.age_band, v.school, v.platform) == ("-", "-", "-", None)
    assert (v.decision.action, v.decision.rule_id) == ("allow", "not-in-catalogue")


@pytest.mark.parametrize(
    ("protocol", "host", "platform", "via"),
    [
        # a DNS query name whose CNAME chain reaches TikTok's CDN: judged as TikTok
        ("dns", "video.example.net", "tiktok", "v16.tiktokcdn.com"),
        ("ip", "video.example.net", None, "v16.tiktokcdn.com"),  # the sensor had no classifier
        # a STUN realm that names an app, and a software value that is no host name at all
        ("stun", "turner.facebook", "messenger", "messenger.com"),
        ("stun", "telegram\\032desktop", "telegram", "telegram.org"),
        ("stun", "signal.org", "signal", None),
    ],
)
def test_a_name_is_judged_as_its_alias_platform(
    district: District, protocol: str, host: str, platform: str | None, via: str | None
) -> None:
    o = Observation(T0, "127.0.0.13", "192.0.2.1", protocol, host, transport="udp",  # type: ignore[arg-type]
                    platform=platform, via=via)  # fmt: skip
    v = Judge(district, KEY).judge(o)
    assert v.judged and v.platform == (platform or "tiktok")
    assert v.host == (host if "\\" not in host else via)
    assert (v.age_band, v.school) == ("teen", "ms")


def test_person_is_a_pseudonym(district: District) -> None:
    v = Judge(district, KEY).judge(obs("127.0.0.13", "tls", "www.tiktok.com"))
    assert v.person == pseudonym(KEY, "stu-00554")  # district.yaml maps .13 to this person
    assert Judge(district, KEY).judge(obs("127.0.0.1", "tls", "www.tiktok.com")).person == "-"


def test_recording_counts_and_raises_incidents(district: District) -> None:
    metrics = Metrics(CollectorRegistry())
    judge = Judge(district, KEY, DecisionLog(metrics, None, KEY))
    quiet = judge.judge(obs("127.0.0.11", "tls", "www.tiktok.com"))
    assert metrics.registry.get_sample_value("monitor_requests_total", {}) is None  # pure

    assert judge.record(obs("127.0.0.11", "tls", "www.tiktok.com"), quiet) is None
    event = judge.record(
        o := obs("127.0.0.11", "quic", "WWW.TikTok.com."),
        judge.judge(o),
    )
    assert event is not None
    assert (event.source, event.platform, event.activity, event.rule_id, event.severity) == (
        "sensor", "tiktok", ACTIVITY, "quic-bypass:under13", "medium",
    )  # fmt: skip
    assert event.host == "www.tiktok.com" and event.person.startswith("p-")
    assert "bypassed over QUIC" in event.reason
    unknown = judge(obs("127.0.0.1", "quic", "www.tiktok.com"))
    assert unknown.person == "-"
    judge(obs("127.0.0.11", "dns", "www.example.org"))  # not in the catalogue: not counted

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    base = {"platform": "tiktok", "activity": "view", "decision": "block", "source": "sensor"}
    assert sample("monitor_requests_total", **base, age_band="under13", school="ms") == 2.0
    assert sample("monitor_requests_total", **base, age_band="unknown", school="unknown") == 1.0
    assert sample(
        "monitor_incidents_total", platform="tiktok", severity="medium", school="ms",
        source="sensor",
    ) == 1.0  # fmt: skip
    total = sum(
        s.value
        for m in metrics.registry.collect()
        if m.name == "monitor_requests"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert total == 3.0


def test_unknown_person_incident_has_no_pseudonym(district: District) -> None:
    judge = Judge(district, KEY, DecisionLog(Metrics(CollectorRegistry()), None, KEY))
    o = obs("127.0.0.1", "quic", "www.tiktok.com")
    event = judge.record(o, judge.judge(o))
    assert event is not None and event.person == UNKNOWN_PERSON and event.age_band == ""


def test_quic_bypass_keeps_the_rule_severity_and_clause() -> None:
    from monitor.model import Decision

    d = quic_bypass(Decision("block", "r1", "Because the policy says so.", "high"))
    assert (d.action, d.rule_id, d.incident) == ("block", "quic-bypass:r1", "high")
    assert d.reason.endswith("Because the policy says so.")
    assert quic_bypass(Decision("block", "r2", "x" * 2000)).incident == "medium"
    assert len(quic_bypass(Decision("block", "r2", "x" * 2000)).reason) == 1000


def test_sensor_collector_reads_counters_at_scrape_time() -> None:
    registry = CollectorRegistry()
    sensor = Sensor()
    sensor_metrics.register(registry, sensor)
    dns_q = IP(src="192.0.2.10", dst="198.51.100.53") / UDP(sport=1, dport=53)
    frames = [
        Frame(101, bytes(dns_q / Raw(synth.dns_query([("a.example", 1)]))), 1.0),
        Frame(101, bytes(dns_q / Raw(synth.dns_query([("a.example", 1)]))), 1.1),
        Frame(
            101,
            bytes(
                IP(src="192.0.2.10", dst="198.51.100.1")
                / TCP(sport=2, dport=443)
                / Raw(synth.tls_records(synth.client_hello("t.example")))
            ),
            1.2,
        ),
        Frame(101, b"\x45\x00", 1.3),
    ]
    assert registry.get_sample_value("monitor_sensor_packets_total") == 0.0
    list(sensor.run(frames))

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert get("monitor_sensor_packets_total") == 4.0
    assert get("monitor_sensor_observations_total", protocol="dns") == 1.0
    assert get("monitor_sensor_observations_total", protocol="tls") == 1.0
    assert get("monitor_sensor_duplicates_total") == 1.0
    assert get("monitor_sensor_malformed_total", kind="ip_truncated") == 1.0
    assert get("monitor_sensor_dedup_entries") == 2.0
    tunnelled = synth.ipv4("203.0.113.1", "203.0.113.2", 41, synth.ipv6(
        "2001:db8::10", "2001:db8::53", 17, synth.udp(1, 53, synth.dns_query([("b.example", 1)]))
    ))  # fmt: skip
    whole = synth.ipv4(
        "192.0.2.10",
        "198.51.100.53",
        17,
        synth.udp(2, 53, synth.dns_query([("c.example", 1)]) + bytes(40)),
        ident=3,
    )
    list(sensor.run([Frame(101, tunnelled, 2.0)]
                    + [Frame(101, f, 2.0) for f in synth.fragment_ipv4(whole, 32)]))  # fmt: skip
    assert get("monitor_sensor_tunnelled_total", kind="6in4") == 1.0
    assert get("monitor_sensor_reassembly_total", outcome="ipv4") == 1.0
    assert get("monitor_sensor_observations_total", protocol="dns") == 3.0
