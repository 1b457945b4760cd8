"""The sensor pipeline: dispatch, deduplication, classification, counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from monitor.platforms.classify import Classifier
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
    assert s.dedup_size == 2


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


def test_dns_answer_counts_for_the_query_flow() -> None:
    answer = udp(
        synth.dns_query([("r.example", 1)], response=True),
        src=SERVER,
        sport=53,
        dst=CLIENT,
        dport=40000,
    )
    # alone (the query was not captured), the answer names the host, in the query's direction
    (obs,) = run(answer)
    assert (obs.client, obs.client_port, obs.server, obs.server_port) == (
        CLIENT,
        40000,
        SERVER,
        53,
    )
    # with its query: one observation
    s = Sensor()
    assert len(run(udp(query("r.example"), sport=40000), answer, sensor=s)) == 1
    assert s.counters.duplicates == 1


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
        bytes(IP(src=CLIENT, dst=SERVER, flags="MF") / UDP(dport=53) / Raw(b"x" * 8)),  # held
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


# -- deduplication over time ---------------------------------------------------------------


def test_dedup_is_time_bounded() -> None:
    s = Sensor(dedup_ttl=60)
    frames = [
        Frame(RAW, udp(query("a.example")), 1000.0),
        Frame(RAW, udp(query("a.example")), 1059.0),  # within a minute: the same observation
        Frame(RAW, udp(query("b.example")), 1061.0),  # expires a.example's entry
        Frame(RAW, udp(query("a.example")), 1062.0),  # a minute on: reported again
    ]
    got = list(s.run(frames))
    assert [(o.hostname, o.time) for o in got] == [
        ("a.example", 1000.0),
        ("b.example", 1061.0),
        ("a.example", 1062.0),
    ]
    assert s.counters.duplicates == 1
    # a long quiet spell empties the table: a long capture does not keep every flow
    list(s.run([Frame(RAW, udp(query("c.example"), sport=1), 5000.0)]))
    assert s.dedup_size == 1


def test_dedup_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="dedup_ttl"):
        Sensor(dedup_ttl=0)


def test_one_quic_flow_of_hundreds_of_packets_is_one_observation() -> None:
    dcid = b"\x31" * 8
    initials = synth.quic_initials(
        synth.client_hello("www.youtube.com", alpn=["h3"], pad_to=1800), dcid=dcid, packets=2
    )
    ack = quic.protect_initial(
        quic.V1, b"\x5e" * 8, b"", 2, b"\x02\x00\x00\x00\x00" + bytes(1100),
        keys=quic.initial_keys(quic.V1, dcid),
    )  # fmt: skip
    datagrams = [*initials, initials[0], ack] + [b"\x41" + bytes(100 + i) for i in range(300)]
    s = Sensor()
    got = run(*(udp(d, sport=50123, dport=443) for d in datagrams), sensor=s)
    assert [(o.protocol, o.hostname) for o in got] == [("quic", "www.youtube.com")]
    assert not s.counters.malformed and s.counters.duplicates == 0  # later ones never decrypted


# -- QUIC on other ports ---------------------------------------------------------------------


def initial(name: str, dcid: bytes = b"\x32" * 8) -> bytes:
    return synth.quic_initials(synth.client_hello(name, alpn=["h3"]), dcid=dcid)[0]


def test_quic_initial_on_another_port() -> None:
    (obs,) = run(udp(initial("alt.example"), sport=50000, dport=4433))
    assert (obs.protocol, obs.hostname, obs.server_port, obs.version) == (
        "quic", "alt.example", 4433, 1,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("datagram", "sport", "why"),
    [
        pytest.param(initial("srv.example"), 443, "from port 443: a server's packet", id="server"),
        pytest.param(b"\xc0\x12\x34\x56\x78" + bytes(1300), 50000, "unknown version", id="ver"),
        pytest.param(initial("small.example")[:1100], 50000, "below 1200 bytes", id="small"),
        pytest.param(b"\xc0\x00\x00\x00\x01\x04" + bytes(1300), 50000, "DCID < 8", id="dcid"),
    ],
)
def test_not_guessed_as_quic_elsewhere(datagram: bytes, sport: int, why: str) -> None:
    s = Sensor()
    assert run(udp(datagram, sport=sport, dport=4433), sensor=s) == [], why
    assert not s.counters.malformed and not s.counters.skipped


def test_a_failed_guess_is_skipped_not_malformed() -> None:
    broken = bytearray(initial("x.example"))
    broken[200] ^= 0xFF
    s = Sensor()
    assert run(udp(bytes(broken), sport=50000, dport=8443), sensor=s) == []
    assert s.counters.skipped == {"quic_other_port_unreadable": 1} and not s.counters.malformed


# -- TLS shapes real clients send ----------------------------------------------------------


def with_grease(msg: bytes) -> bytes:
    """Add GREASE extensions (RFC 8701) first and last, as Chrome does."""
    body = msg[4:]
    p = 34
    p += 1 + body[p]  # session id
    p += 2 + int.from_bytes(body[p : p + 2], "big")  # cipher suites
    p += 1 + body[p]  # compression methods
    exts = body[p + 2 :]
    exts = b"\x0a\x0a\x00\x00" + exts + b"\xfa\xfa\x00\x01\x00"
    body = body[:p] + len(exts).to_bytes(2, "big") + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


def test_record_header_alone_then_the_hello_in_the_second_segment() -> None:
    hello = synth.tls_records(with_grease(synth.client_hello("www.instagram.com", pad_to=1900)))
    got = run(
        tcp(b"", seq=100, flags="S"),
        tcp(hello[:5], seq=101),
        tcp(hello[5:1400], seq=106),
        tcp(hello[1400:], seq=101 + 1400),
    )
    assert [(o.protocol, o.hostname) for o in got] == [("tls", "www.instagram.com")]


def test_hello_after_a_connect_to_an_outside_proxy() -> None:
    connect = b"CONNECT www.tiktok.com:443 HTTP/1.1\r\nHost: www.tiktok.com:443\r\n\r\n"
    s = Sensor()
    got = run(
        tcp(connect, dport=3128, seq=1),
        tcp(hello("www.tiktok.com"), dport=3128, seq=1 + len(connect)),
        tcp(hello("www.youtube.com"), dport=3128, seq=1, sport=50001),
        sensor=s,
    )
    # the ClientHello after the CONNECT is read too, and names the same host on the same flow
    assert [(o.protocol, o.hostname, o.client_port) for o in got] == [
        ("http", "www.tiktok.com", 50000),
        ("tls", "www.youtube.com", 50001),
    ]
    assert s.counters.duplicates == 1


# -- flows named by an earlier DNS answer ----------------------------------------------------

WA = "192.0.2.50"  # the address a DNS answer gives for g.whatsapp.net


def answer(name: str, address: str, client: str = CLIENT) -> bytes:
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    msg = DNS(id=1, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", rdata=address))
    return udp(bytes(msg), src=SERVER, sport=53, dst=client, dport=40000)


def syn(dst: str, sport: int = 51000, src: str = CLIENT, dport: int = 5222) -> bytes:
    return tcp(b"", sport=sport, dport=dport, flags="S", src=src, dst=dst, seq=0)


def data(payload: bytes, dst: str, sport: int = 51000, dport: int = 5222, seq: int = 1) -> bytes:
    return tcp(payload, sport=sport, dport=dport, dst=dst, seq=seq)


NOISE = b"WA\x05\x02" + bytes(40)  # a messenger's own protocol: no name in it


def test_a_nameless_connection_is_named_by_the_dns_answer(classifier: Classifier) -> None:
    s = Sensor(classifier)
    got = run(answer("g.whatsapp.net", WA), syn(WA), data(NOISE, WA), data(NOISE, WA, seq=45),
              sensor=s)  # fmt: skip
    assert [(o.protocol, o.hostname, o.platform, o.server, o.server_port) for o in got] == [
        ("dns", "g.whatsapp.net", "whatsapp", SERVER, 53),
        ("ip", "g.whatsapp.net", "whatsapp", WA, 5222),
    ]


@pytest.mark.parametrize(
    ("frames", "why"),
    [
        pytest.param(
            [syn(WA, src="192.0.2.99"), tcp(NOISE, sport=51000, dport=5222, src="192.0.2.99",
                                            dst=WA)],
            "another client did not ask", id="other-client",
        ),
        pytest.param([data(NOISE, WA)], "no SYN seen: the connection is older", id="no-syn"),
        pytest.param([syn("192.0.2.51"), data(NOISE, "192.0.2.51")], "another address",
                     id="other-address"),
    ],
)  # fmt: skip
def test_not_named_by_the_answer(frames: list[bytes], why: str) -> None:
    got = run(answer("g.whatsapp.net", WA), *frames)
    assert [o.protocol for o in got] == ["dns"], why


def test_a_connection_that_names_its_host_keeps_its_own_name() -> None:
    # a CDN address shared by several names: the ClientHello says which one this flow wants
    got = run(answer("www.youtube.com", WA), syn(WA, dport=443),
              data(hello("www.google.com"), WA, dport=443))  # fmt: skip
    assert [(o.protocol, o.hostname) for o in got] == [
        ("dns", "www.youtube.com"),
        ("tls", "www.google.com"),
    ]
    split = hello("www.google.com", pad_to=1500)
    got = run(answer("www.youtube.com", WA), syn(WA, dport=443),
              data(split[:700], WA, dport=443), data(split[700:], WA, dport=443, seq=701))  # fmt: skip
    assert [o.protocol for o in got] == ["dns", "tls"]


def test_a_hello_without_sni_is_named_by_the_answer() -> None:
    got = run(answer("chat.signal.org", WA), syn(WA, dport=443),
              data(hello(None), WA, dport=443))  # fmt: skip
    assert [(o.protocol, o.hostname) for o in got] == [
        ("dns", "chat.signal.org"),
        ("ip", "chat.signal.org"),
    ]


def test_a_dns_answer_names_connections_for_an_hour() -> None:
    from monitor.sensor.pipeline import DNS_MAP_TTL

    s = Sensor()
    frames = [
        Frame(RAW, answer("g.whatsapp.net", WA), 0.0),
        Frame(RAW, syn(WA, sport=1), DNS_MAP_TTL - 1),
        Frame(RAW, data(NOISE, WA, sport=1), DNS_MAP_TTL - 1),
        Frame(RAW, syn(WA, sport=2), DNS_MAP_TTL + 1),
        Frame(RAW, data(NOISE, WA, sport=2), DNS_MAP_TTL + 1),
    ]
    assert [(o.protocol, o.client_port) for o in s.run(frames)] == [("dns", 40000), ("ip", 1)]


# --- CNAME chains ------------------------------------------------------------------------------


def chain_answer(qname: str, cnames: list[str], address: str = WA) -> bytes:
    msg = synth.dns_answer(qname, 1, cnames=cnames, addresses=[address])
    return udp(msg, src=SERVER, sport=53, dst=CLIENT, dport=40000)


def test_a_cname_chain_into_a_platform_names_the_query(classifier: Classifier) -> None:
    s = Sensor(classifier)
    got = run(
        udp(query("video.example.net")),
        chain_answer("video.example.net", ["edge.example.org", "v16.tiktokcdn.com",
                                           "a1.example.com"]),
        syn(WA), data(NOISE, WA),
        sensor=s,
    )  # fmt: skip
    assert [(o.protocol, o.hostname, o.platform, o.via, o.client) for o in got] == [
        ("dns", "video.example.net", None, None, CLIENT),
        ("dns", "video.example.net", "tiktok", "v16.tiktokcdn.com", CLIENT),
        ("ip", "video.example.net", "tiktok", "v16.tiktokcdn.com", CLIENT),
    ]
    # the same answer again (another question id, same flow): nothing new
    assert run(chain_answer("video.example.net", ["v16.tiktokcdn.com"]), sensor=s) == []


@pytest.mark.parametrize(
    ("qname", "cnames", "platform"),
    [
        # a name the classifier knows keeps its own platform, whatever its aliases
        ("www.instagram.com", ["z-p42-instagram.c10r.facebook.com"], "instagram"),
        # aliases only under a shared CDN: nobody's
        ("static.example.net", ["static.example.net.edgekey.net", "e1.akamaiedge.net"], None),
        ("a.example.net", ["b.example.net", "a.example.net"], None),  # a loop
    ],
)
def test_cname_chains_that_add_no_platform(
    classifier: Classifier, qname: str, cnames: list[str], platform: str | None
) -> None:
    got = run(chain_answer(qname, cnames), sensor=Sensor(classifier))
    assert [(o.hostname, o.platform, o.via) for o in got] == [(qname, platform, None)]


def test_without_a_classifier_chains_are_not_followed() -> None:
    got = run(chain_answer("video.example.net", ["v16.tiktokcdn.com"]))
    assert [(o.hostname, o.platform, o.via) for o in got] == [("video.example.net", None, None)]


# --- TCP order --------------------------------------------------------------------------------


def test_a_hello_whose_first_segment_comes_last(classifier: Classifier) -> None:
    rec = hello("www.youtube.com", pad_to=1500)
    a, b, c = synth.split(rec, 3)
    for port in (443, 8443, 5222):  # on any port: the SYN says where the data starts
        s = Sensor(classifier)
        got = run(syn(SERVER, dport=port, sport=port),
                  tcp(c, sport=port, dport=port, seq=1 + len(a) + len(b)),
                  tcp(b, sport=port, dport=port, seq=1 + len(a)),
                  tcp(a, sport=port, dport=port, seq=1), sensor=s)  # fmt: skip
        assert [(o.hostname, o.platform) for o in got] == [("www.youtube.com", "youtube")], port


def test_a_request_whose_first_segment_comes_last_is_still_read() -> None:
    req = b"GET /x HTTP/1.1\r\nHost: plain.example\r\n" + b"X-Pad: " + b"y" * 100 + b"\r\n\r\n"
    got = run(syn(SERVER, dport=80), tcp(req[60:], dport=80, seq=61), tcp(req[:60], dport=80))
    assert [(o.protocol, o.hostname) for o in got] == [("http", "plain.example")]


def test_tcp_fast_open_data_in_the_syn() -> None:
    rec = hello("tfo.example.com", pad_to=900)
    got = run(tcp(rec[:400], flags="S", seq=7000), tcp(rec[400:], seq=7401))
    assert [o.hostname for o in got] == ["tfo.example.com"]


def test_an_overlap_that_changes_the_hello_is_refused() -> None:
    real, fake = hello("www.tiktok.com", pad_to=800), hello("www.tiktok.org", pad_to=800)
    s = Sensor()
    got = run(tcp(real[:300]), tcp(fake[:600]), tcp(real[600:], seq=601), sensor=s)
    assert got == [] and s.counters.malformed == {"tcp_overlap_conflict": 1}
