"""The sensor pipeline: dispatch, deduplication, classification, counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from monitor.classify import Classifier
from monitor.sensor import quic, synth
from monitor.sensor.model import Observation
from monitor.sensor.pcap import read_frames
from monitor.sensor.pipeline import Frame, Sensor, observe
from monitor.sensor.tls import TlsReassembler

RAW = 101
CLIENT, SERVER = "192.0.2.10", "198.51.100.10"


def udp(
    payload: bytes, sport: int = 40000, dport: int = 53, src: str = CLIENT, dst: str = SERVER
) -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def tcp(
    payload: bytes,
    sport: int = 50000,
    dport: int = 443,
    seq: int = 1,
    flags: str = "PA",
    src: str = CLIENT,
    dst: str = SERVER,
) -> bytes:
    return bytes(
        IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq, flags=flags) / Raw(payload)
    )


def hello(sni: str | None, **kw: object) -> bytes:
    return synth.tls_records(synth.client_hello(sni, **kw))  # type: ignore[arg-type]


def query(name: str, qtype: int = 1) -> bytes:
    return synth.dns_query([(name, qtype)])


def run(*frames: bytes, sensor: Sensor | None = None) -> list[Observation]:
    s = sensor or Sensor()
    return list(s.run(Frame(RAW, f, 1000.0 + i) for i, f in enumerate(frames)))


def test_one_observation_per_flow_and_host() -> None:
    s = Sensor()
    got = run(
        udp(query("a.example")),
        udp(query("a.example", 28)),  # same socket, same name
        udp(query("a.example"), sport=40001),  # another socket
        udp(query("b.example")),  # another name
        sensor=s,
    )
    assert [(o.hostname, o.client_port, o.qtype) for o in got] == [
        ("a.example", 40000, 1),
        ("a.example", 40001, 1),
        ("b.example", 40000, 1),
    ]
    assert s.counters.duplicates == 1 and s.counters.observations == 3


def test_dedup_set_is_bounded() -> None:
    s = Sensor(max_dedup=2)
    frames = [udp(query(n)) for n in ("a.example", "b.example", "c.example", "a.example")]
    assert [o.hostname for o in run(*frames, sensor=s)] == [
        "a.example",
        "b.example",
        "c.example",
        "a.example",
    ]
    assert len(s._seen) == 2


def test_observation_fields() -> None:
    (dns_obs,) = run(udp(query("www.example.com", 28), sport=41000))
    assert dns_obs == Observation(
        time=1000.0,
        client=CLIENT,
        server=SERVER,
        protocol="dns",
        hostname="www.example.com",
        transport="udp",
        client_port=41000,
        server_port=53,
        qtype=28,
    )
    (tls_obs,) = run(tcp(hello("tls.example.com", alpn=["h2"], ech=True)))
    assert (tls_obs.protocol, tls_obs.transport, tls_obs.alpn, tls_obs.ech, tls_obs.version) == (
        "tls",
        "tcp",
        ("h2",),
        True,
        None,
    )
    (pkt,) = synth.quic_initials(
        synth.client_hello("q.example.com", alpn=["h3"]), version=quic.V2, dcid=b"\x01" * 8
    )
    (quic_obs,) = run(udp(pkt, sport=60000, dport=443))
    assert (quic_obs.protocol, quic_obs.transport, quic_obs.version, quic_obs.alpn) == (
        "quic",
        "udp",
        quic.V2,
        ("h3",),
    )


def test_ipv6_addresses_are_text() -> None:
    frame = bytes(
        IPv6(src="2001:db8::10", dst="2001:db8:1::443")
        / UDP(sport=5, dport=53)
        / Raw(query("v6.example"))
    )
    (obs,) = run(frame)
    assert (obs.client, obs.server) == ("2001:db8::10", "2001:db8:1::443")


def test_classify_callback_sets_platform(classifier: Classifier) -> None:
    got = list(
        observe(
            [
                Frame(RAW, udp(query("www.tiktok.com")), 0.0),
                Frame(RAW, udp(query("a.example")), 0.0),
            ],
            classifier,
        )
    )
    assert [(o.hostname, o.platform) for o in got] == [
        ("www.tiktok.com", "tiktok"),
        ("a.example", None),
    ]
    seen: list[str] = []

    def classify(host: str) -> str | None:
        seen.append(host)
        return "fake"

    (obs,) = run(udp(query("x.example")), sensor=Sensor(classify))
    assert obs.platform == "fake" and seen == ["x.example"]


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        pytest.param(
            udp(synth.dns_query([("r.example", 1)], response=True), sport=53, dport=40000),
            "answer",
            id="dns-answer",
        ),
        pytest.param(
            udp(synth.dns_query([("r.example", 1)], response=True)),
            "answer to port 53",
            id="dns-answer-to-53",
        ),
        pytest.param(udp(synth.dns_query([(".", 2)])), "root query", id="dns-root"),
        pytest.param(
            tcp(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", sport=443, dport=50000),
            "a ServerHello",
            id="tls-from-server",
        ),
        pytest.param(tcp(b"\x17\x03\x03\x00\x02hi"), "application data", id="tls-app-data"),
        pytest.param(tcp(b"", dport=443, flags="A"), "empty payload", id="tcp-no-payload"),
        pytest.param(tcp(b"GET / HTTP/1.1\r\n\r\n", dport=80), "plain HTTP", id="http"),
        pytest.param(
            udp(hello("u.example"), dport=443), "TLS over UDP is not QUIC", id="udp-443-not-quic"
        ),
        pytest.param(udp(b"\x40" + bytes(30), dport=443), "QUIC short header", id="quic-1rtt"),
        pytest.param(udp(b"", dport=53), "empty datagram", id="udp-empty"),
        pytest.param(udp(hello("d.example"), dport=8080), "unknown UDP port", id="udp-other"),
    ],
)
def test_nothing_to_observe(frame: bytes, why: str) -> None:
    s = Sensor()
    assert run(frame, sensor=s) == [], why
    assert not s.counters.malformed


def test_tls_on_any_port_when_it_starts_a_handshake() -> None:
    (obs,) = run(tcp(hello("alt.example"), dport=8443))
    assert (obs.hostname, obs.server_port) == ("alt.example", 8443)


def test_tls_split_and_dot_port_853() -> None:
    data = hello("dot.example", pad_to=1000)
    a, b = data[:500], data[500:]
    got = run(tcp(a, dport=853, seq=10), tcp(b, dport=853, seq=510))
    assert [(o.hostname, o.server_port) for o in got] == [("dot.example", 853)]


def test_dns_over_tcp() -> None:
    payload = synth.dns_tcp(query("t1.example")) + synth.dns_tcp(query("t2.example"))
    got = run(tcp(payload, dport=53))
    assert [(o.hostname, o.transport) for o in got] == [
        ("t1.example", "tcp"),
        ("t2.example", "tcp"),
    ]


def test_fin_drops_a_half_hello() -> None:
    s = Sensor()
    data = hello("fin.example", pad_to=1000)
    run(tcp(data[:500], seq=1), sensor=s)
    assert len(s.tls) == 1
    run(tcp(b"", seq=501, flags="FA"), sensor=s)
    assert len(s.tls) == 0


def test_counters_by_kind() -> None:
    s = Sensor(tls=TlsReassembler(max_flows=1))
    data = hello("c.example", pad_to=1000)
    run(
        b"\x45\x00",  # cut IPv4 header
        udp(b"\x00\x01"),  # DNS message shorter than its header
        tcp(b"\x16\x03\x01\x00\x00\x01"),  # TLS record of length 0
        tcp(hello(None)),  # a ClientHello without SNI
        tcp(data[:500], sport=1),
        tcp(data[:500], sport=2),  # evicts the first flow
        udp(
            synth.quic_initials(synth.client_hello("x.example"), dcid=b"\x07" * 8)[0][:-1]
            + b"\x00",
            dport=443,
        ),
        bytes(IP(src=CLIENT, dst=SERVER, flags="MF") / UDP(dport=53) / Raw(b"x")),
        sensor=s,
    )
    c = s.counters
    assert c.packets == 8 and c.undecodable == 1 and c.evicted == 1 and c.observations == 0
    assert dict(c.malformed) == {
        "ip_truncated": 1,
        "dns_truncated": 1,
        "tls_bad_length": 1,
        "quic_decrypt_failed": 1,
    }
    assert dict(c.skipped) == {"tls_no_sni": 1, "ip_fragment": 1}
    d = c.as_dict()
    assert d["malformed"] == dict(sorted(c.malformed.items())) and d["packets"] == 8


FIXTURE_FRAMES = [
    f
    for name in ("dns.pcap", "tls.pcap", "quic.pcap", "vlan.pcap")
    for f in read_frames(Path(__file__).parent / "data" / name)
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1, 101, 113, 276]), st.binary(max_size=200))
def test_fuzz_random_frames_never_raise(linktype: int, data: bytes) -> None:
    s = Sensor()
    assert all(isinstance(o, Observation) for o in s.feed(linktype, data, 0.0))
    assert s.counters.packets == 1


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(FIXTURE_FRAMES),
    st.binary(min_size=1, max_size=6),
    st.integers(0, 1500),
    st.booleans(),
)
def test_fuzz_mutated_fixture_frames_never_raise(
    frame: Frame, patch: bytes, at: int, cut: bool
) -> None:
    data = frame.data[:at] + patch + (b"" if cut else frame.data[at + len(patch) :])
    s = Sensor()
    for obs in s.feed(frame.linktype, frame.data, 0.0) + s.feed(frame.linktype, data, 1.0):
        assert (
            isinstance(obs, Observation) and "\n" not in obs.hostname and "\t" not in obs.hostname
        )
