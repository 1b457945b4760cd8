"""Tunnels and encapsulations: IP in IP, GRE (and PPTP's, ERSPAN), VXLAN, nesting depth.

Frames are built twice over: with ``synth``'s own byte builders (round trips, fuzzing) and with
scapy's layers (an encoder that is not ours)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.erspan import ERSPAN_II
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, GRE_PPTP, Dot1Q, Ether
from scapy.layers.ppp import PPP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from monitor.sensor import decode as dec
from monitor.sensor import synth
from monitor.sensor.decode import Segment
from monitor.sensor.pipeline import Sensor

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:fe"}
OUT4 = IP(src="203.0.113.1", dst="203.0.113.2")
OUT6 = IPv6(src="2001:db8:ffff::1", dst="2001:db8:ffff::2")
IN4 = IP(src="192.0.2.10", dst="198.51.100.53") / UDP(sport=40000, dport=53) / Raw(b"query")
IN6 = IPv6(src="2001:db8::10", dst="2001:db8::53") / UDP(sport=40000, dport=53) / Raw(b"query")
SRC4, DST4 = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
SRC6 = bytes.fromhex("20010db8000000000000000000000010")
DST6 = bytes.fromhex("20010db8000000000000000000000053")


def seg4(tunnel: str) -> Segment:
    return Segment(SRC4, DST4, dec.UDP, 40000, 53, b"query", tunnel=tunnel)


def seg6(tunnel: str) -> Segment:
    return Segment(SRC6, DST6, dec.UDP, 40000, 53, b"query", tunnel=tunnel)


def eth(p: Packet) -> bytes:
    return bytes(Ether(**MACS) / p)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param(eth(OUT4 / IN6), seg6("6in4"), id="6in4"),
        pytest.param(eth(OUT4 / IN4), seg4("4in4"), id="4in4"),
        pytest.param(eth(OUT6 / IN4), seg4("4in6"), id="4in6"),
        pytest.param(eth(OUT6 / IN6), seg6("6in6"), id="6in6"),
        pytest.param(eth(OUT4 / GRE() / IN4), seg4("gre"), id="gre"),
        pytest.param(eth(OUT4 / GRE(key_present=1, key=1) / IN6), seg6("gre"), id="gre-key"),
        pytest.param(
            eth(OUT4 / GRE(seqnum_present=1, sequence_number=5) / IN4), seg4("gre"), id="gre-seq"
        ),
        pytest.param(eth(OUT4 / GRE(chksum_present=1) / IN4), seg4("gre"), id="gre-checksum"),
        pytest.param(
            eth(OUT6 / GRE(chksum_present=1, key_present=1, seqnum_present=1) / IN6),
            seg6("gre"),
            id="gre-all-options-over-ipv6",
        ),
        pytest.param(
            eth(OUT4 / GRE(proto=0x6558) / Ether(**MACS) / IN4), seg4("gre"), id="gre-ethernet"
        ),
        pytest.param(
            eth(OUT4 / GRE(proto=0x6558) / Ether(**MACS) / Dot1Q(vlan=9) / IN6),
            seg6("gre"),
            id="gre-ethernet-vlan",
        ),
        pytest.param(
            eth(OUT4 / GRE_PPTP(seqnum_present=1, acknum_present=1) / PPP(proto=0x0021) / IN4),
            seg4("pptp"),
            id="pptp",
        ),
        pytest.param(
            eth(OUT4 / GRE_PPTP() / PPP(proto=0x0057) / IN6), seg6("pptp"), id="pptp-ipv6"
        ),
        pytest.param(
            eth(OUT4 / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II() / Ether(**MACS) / IN4),
            seg4("erspan"),
            id="erspan-ii",
        ),
        pytest.param(
            eth(OUT4 / UDP(sport=1, dport=4789) / VXLAN(vni=7) / Ether(**MACS) / IN4),
            seg4("vxlan"),
            id="vxlan",
        ),
        pytest.param(
            eth(OUT6 / UDP(sport=1, dport=4789) / VXLAN() / Ether(**MACS) / Dot1Q() / IN6),
            seg6("vxlan"),
            id="vxlan-over-ipv6",
        ),
        # the outermost tunnel names the packet
        pytest.param(eth(OUT4 / GRE() / OUT6 / IN4), seg4("gre"), id="gre-then-4in6"),
        pytest.param(eth(OUT4 / GRE(routing_present=1) / Raw(bytes(20))),
                     dec.TUNNEL_UNSUPPORTED, id="gre-source-routing"),
        pytest.param(eth(OUT4 / GRE(version=2) / IN4), dec.TUNNEL_UNSUPPORTED,
                     id="gre-version-2"),
        pytest.param(eth(OUT4 / GRE(proto=0x0806) / Raw(bytes(28))), dec.NOT_IP, id="gre-arp"),
        pytest.param(
            eth(OUT4 / UDP(sport=1, dport=4789) / Raw(bytes(8)) / Ether(**MACS) / IN4),
            dec.NOT_IP,
            id="vxlan-without-I-flag",
        ),
    ],
)  # fmt: skip
def test_tunnels(frame: bytes, expected: Segment | str) -> None:
    assert dec.decode(1, frame) == expected


def test_pptp_acknowledgement_without_payload() -> None:
    # K and A flags, version 1, PPP; payload length 0, call id 1, acknowledgement number 3
    ack = bytes([0x20, 0x81]) + bytes.fromhex("880b") + bytes.fromhex("00000001") + b"\0\0\0\3"
    frame = synth.ethernet(0x0800, synth.ipv4("203.0.113.1", "203.0.113.2", 47, ack))
    assert dec.decode(1, frame) == dec.NOT_IP
    cut = synth.ethernet(0x0800, synth.ipv4("203.0.113.1", "203.0.113.2", 47, ack[:6]))
    assert dec.decode(1, cut) == dec.TUNNEL_TRUNCATED


def nest(layers: int, inner: bytes) -> bytes:
    for _ in range(layers):
        inner = synth.ipv4("203.0.113.1", "203.0.113.2", 4, inner)
    return inner


INNER = synth.ipv4("192.0.2.10", "198.51.100.53", 17, synth.udp(40000, 53, b"query"))


def test_nesting_is_bounded() -> None:
    assert dec.decode(101, nest(dec.MAX_DEPTH, INNER)) == seg4("4in4")
    assert dec.decode(101, nest(dec.MAX_DEPTH + 1, INNER)) == dec.ENCAP_TOO_DEEP
    assert dec.ENCAP_TOO_DEEP in dec.MALFORMED_REASONS
    tags = [(0x8100, i) for i in range(dec.MAX_DEPTH)]
    assert dec.decode(1, synth.ethernet(0x0800, INNER, tags=tags)) == seg4("")
    deep = synth.ethernet(0x0800, INNER, tags=[*tags, (0x9100, 1)])
    assert dec.decode(1, deep) == dec.ENCAP_TOO_DEEP
    # VLAN tags and tunnels count together
    mixed = synth.ethernet(0x0800, nest(2, INNER), tags=tags[:-2])
    assert dec.decode(1, mixed) == seg4("4in4")
    assert dec.decode(1, synth.ethernet(0x0800, nest(3, INNER), tags=tags[:-2])) == (
        dec.ENCAP_TOO_DEEP
    )


def test_refused_and_too_deep_are_counted() -> None:
    s = Sensor()
    s.feed(101, nest(dec.MAX_DEPTH + 1, INNER), 1.0)
    s.feed(1, eth(OUT4 / GRE(routing_present=1) / Raw(bytes(20))), 1.0)
    s.feed(1, eth(OUT4 / GRE() / IN4), 1.0)
    c = s.counters
    assert c.malformed["encap_too_deep"] == 1 and c.undecodable == 1
    assert c.skipped == {"tunnel_unsupported": 1}
    assert c.tunnels == {"gre": 1}


# --- round trips through synth's builders ---------------------------------------------------

ADDR4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ADDR6 = st.binary(min_size=16, max_size=16).map(
    lambda b: ":".join(b[i : i + 2].hex() for i in range(0, 16, 2))
)
WRAPS = ["6in4", "4in4", "gre", "gre-key-seq-csum", "gre-eth", "pptp", "vxlan", "erspan", "vlan"]


def wrap(kind: str, packet: bytes) -> tuple[bytes, int]:
    """Put an IP packet in one more layer: (bytes, EtherType) of the new outer packet."""
    v6 = packet[0] >> 4 == 6
    if kind in ("6in4", "4in4"):
        return synth.ipv4("203.0.113.1", "203.0.113.2", 41 if v6 else 4, packet), 0x0800
    if kind == "vlan":
        raise AssertionError("handled by the caller")
    eth = synth.ethernet(0x86DD if v6 else 0x0800, packet)
    body = {
        "gre": lambda: synth.gre(0x86DD if v6 else 0x0800, packet),
        "gre-key-seq-csum": lambda: synth.gre(
            0x86DD if v6 else 0x0800, packet, checksum=True, key=1, seq=2
        ),
        "gre-eth": lambda: synth.gre(0x6558, eth),
        "pptp": lambda: synth.pptp_gre(packet, ack=4),
        "erspan": lambda: synth.gre(0x88BE, synth.erspan2(eth), seq=1),
    }
    if kind == "vxlan":
        udp = synth.udp(49152, 4789, synth.vxlan(eth))
        return synth.ipv6("2001:db8:ffff::1", "2001:db8:ffff::2", 17, udp), 0x86DD
    return synth.ipv4("203.0.113.1", "203.0.113.2", 47, body[kind]()), 0x0800


@settings(max_examples=300)
@given(
    st.booleans(),
    ADDR4,
    ADDR4,
    ADDR6,
    ADDR6,
    st.integers(1, 65535),
    st.integers(1, 65535),
    st.binary(max_size=64),
    st.booleans(),
    st.lists(st.sampled_from(WRAPS), max_size=4),
)
def test_round_trip(
    v6: bool,
    a4: str,
    b4: str,
    a6: str,
    b6: str,
    sport: int,
    dport: int,
    payload: bytes,
    use_tcp: bool,
    layers: list[str],
) -> None:
    if dport == 4789:
        dport = 4790  # VXLAN's port: a datagram to it is read as a tunnel
    transport = (
        synth.tcp(sport, dport, payload, seq=77, flags=0x18)
        if use_tcp
        else synth.udp(sport, dport, payload)
    )
    proto = 6 if use_tcp else 17
    src, dst = (a6, b6) if v6 else (a4, b4)
    packet = (
        synth.ipv6(src, dst, proto, transport) if v6 else synth.ipv4(src, dst, proto, transport)
    )
    etype = 0x86DD if v6 else 0x0800
    tags: list[tuple[int, int]] = []
    outermost = ""
    for kind in layers:
        if kind == "vlan":
            tags.insert(0, (0x88A8, 5))
            continue
        if kind in ("6in4", "4in4"):
            outermost = "6in4" if packet[0] >> 4 == 6 else "4in4"
        else:
            outermost = {"gre-key-seq-csum": "gre", "gre-eth": "gre"}.get(kind, kind)
        packet, etype = wrap(kind, packet)
    got = dec.decode(1, synth.ethernet(etype, packet, tags=tags))
    assert isinstance(got, Segment), got
    assert (got.proto, got.sport, got.dport, got.payload) == (proto, sport, dport, payload)
    assert (got.src, got.dst) == (
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
    )
    if use_tcp:
        assert (got.seq, got.flags) == (77, 0x18)
    assert got.tunnel == outermost


# --- truncation and fuzzing -------------------------------------------------------------------

SAMPLES = [
    eth(OUT4 / IN6),
    eth(OUT6 / IN4),
    eth(OUT4 / GRE(chksum_present=1, key_present=1, seqnum_present=1) / IN4),
    eth(OUT4 / GRE(proto=0x6558) / Ether(**MACS) / Dot1Q() / IN6),
    eth(OUT4 / GRE_PPTP(seqnum_present=1, acknum_present=1) / PPP(proto=0x0021) / IN4),
    eth(OUT4 / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II() / Ether(**MACS) / IN4),
    eth(OUT4 / UDP(sport=1, dport=4789) / VXLAN() / Ether(**MACS) / IN4),
    eth(OUT4 / TCP(sport=1, dport=443) / Raw(b"x")),
]


@pytest.mark.parametrize("frame", SAMPLES)
def test_truncation_at_every_length_never_raises(frame: bytes) -> None:
    for n in range(len(frame)):
        got = dec.decode(1, frame[:n])
        assert isinstance(got, str), (n, got)  # a cut frame never yields a segment


@settings(max_examples=500)
@given(st.sampled_from(SAMPLES), st.binary(min_size=1, max_size=6), st.integers(14, 120))
def test_fuzz_mutated_tunnels_never_raise(frame: bytes, patch: bytes, at: int) -> None:
    data = frame[:at] + patch + frame[at + len(patch) :]
    assert isinstance(dec.decode(1, data), Segment | dec.Fragment | str)


@settings(max_examples=500)
@given(st.sampled_from([4, 41, 47]), st.binary(max_size=200))
def test_fuzz_random_tunnel_payloads_never_raise(proto: int, body: bytes) -> None:
    frame = synth.ethernet(0x0800, synth.ipv4("203.0.113.1", "203.0.113.2", proto, body))
    got = dec.decode(1, frame)
    assert isinstance(got, Segment | dec.Fragment | str)
    vx = synth.ethernet(0x0800, synth.ipv4("203.0.113.1", "203.0.113.2", 17,
                                           synth.udp(1, 4789, body)))  # fmt: skip
    assert isinstance(dec.decode(1, vx), Segment | dec.Fragment | str)
