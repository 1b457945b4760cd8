"""Hand-written link/IP/transport decoding, checked on frames scapy builds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Packet, Raw

from monitor.sensor import decode as dec
from monitor.sensor.decode import Segment

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:fe"}
V4 = IP(src="192.0.2.10", dst="198.51.100.53")
V6 = IPv6(src="2001:db8::10", dst="2001:db8::53")
UDP53 = UDP(sport=40000, dport=53) / Raw(b"query")
TCP443 = TCP(sport=50000, dport=443, seq=123456, flags="PA") / Raw(b"hello")

SRC4, DST4 = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
SRC6 = bytes.fromhex("20010db8000000000000000000000010")
DST6 = bytes.fromhex("20010db8000000000000000000000053")
UDP4 = Segment(SRC4, DST4, dec.UDP, 40000, 53, b"query")
UDP6 = Segment(SRC6, DST6, dec.UDP, 40000, 53, b"query")
TCP4 = Segment(SRC4, DST4, dec.TCP, 50000, 443, b"hello", 123456, 0x18)


def sll2(proto: int) -> bytes:
    return (
        proto.to_bytes(2, "big")
        + bytes(2)
        + (3).to_bytes(4, "big")
        + b"\x00\x01\x00\x06"
        + bytes(8)
    )


def b(p: Packet) -> bytes:
    return bytes(p)


@pytest.mark.parametrize(
    ("linktype", "frame", "expected"),
    [
        pytest.param(1, b(Ether(**MACS) / V4 / UDP53), UDP4, id="ethernet-ipv4-udp"),
        pytest.param(1, b(Ether(**MACS) / V4 / TCP443), TCP4, id="ethernet-ipv4-tcp"),
        pytest.param(1, b(Ether(**MACS) / V6 / UDP53), UDP6, id="ethernet-ipv6-udp"),
        pytest.param(1, b(Ether(**MACS) / Dot1Q(vlan=7) / V4 / UDP53), UDP4, id="vlan"),
        pytest.param(
            1, b(Ether(**MACS) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / V4 / UDP53), UDP4, id="qinq"
        ),
        pytest.param(
            1,
            b(Ether(**MACS) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / V4 / UDP53),
            UDP4,
            id="three-tags",  # counted against the nesting bound (MAX_DEPTH), not refused
        ),
        pytest.param(1, b(Ether(**MACS) / ARP()), dec.NOT_IP, id="arp"),
        pytest.param(1, b(Ether(**MACS) / V4 / ICMP()), dec.NOT_TCP_UDP, id="icmp"),
        pytest.param(113, b(CookedLinux(proto=0x0800) / V4 / UDP53), UDP4, id="sll"),
        pytest.param(276, sll2(0x86DD) + b(V6 / UDP53), UDP6, id="sll2"),
        pytest.param(101, b(V4 / UDP53), UDP4, id="raw-ipv4"),
        pytest.param(101, b(V6 / UDP53), UDP6, id="raw-ipv6"),
        pytest.param(12, b(V4 / UDP53), UDP4, id="dlt-raw-bsd"),
        pytest.param(228, b(V4 / UDP53), UDP4, id="linktype-ipv4"),
        pytest.param(229, b(V6 / UDP53), UDP6, id="linktype-ipv6"),
        pytest.param(0, (2).to_bytes(4, "little") + b(V4 / UDP53), UDP4, id="null-little-endian"),
        pytest.param(
            0, (30).to_bytes(4, "big") + b(V6 / UDP53), UDP6, id="null-big-endian-macos-inet6"
        ),
        pytest.param(108, (24).to_bytes(4, "big") + b(V6 / UDP53), UDP6, id="loop-inet6"),
        pytest.param(
            0, (99).to_bytes(4, "little") + b(V4 / UDP53), dec.NOT_IP, id="null-other-family"
        ),
        pytest.param(147, b(V4 / UDP53), dec.UNSUPPORTED_LINKTYPE, id="user-linktype"),
    ],
)
def test_decode(linktype: int, frame: bytes, expected: Segment | str) -> None:
    assert dec.decode(linktype, frame) == expected


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        pytest.param(
            V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP53,
            UDP6,
            id="hop-by-hop-and-dest-opts",
        ),
        pytest.param(V6 / IPv6ExtHdrFragment(offset=0, m=0) / UDP53, UDP6, id="atomic-fragment"),
        pytest.param(
            V6 / IPv6ExtHdrFragment(offset=0, m=1, id=7, nh=17) / Raw(b"y" * 16),
            dec.Fragment(6, SRC6, DST6, 17, 7, 0, True, b"y" * 16, 0),
            id="first-fragment",
        ),
        pytest.param(
            V6 / IPv6ExtHdrFragment(offset=8, m=0, id=7, nh=17) / Raw(b"x" * 8),
            dec.Fragment(6, SRC6, DST6, 17, 7, 64, False, b"x" * 8, 0),
            id="later-fragment",
        ),
        pytest.param(V4.copy() / UDP53, UDP4, id="plain"),
        pytest.param(
            IP(src="192.0.2.10", dst="198.51.100.53", flags="MF", id=9, proto=17) / Raw(b"y" * 16),
            dec.Fragment(4, SRC4, DST4, 17, 9, 0, True, b"y" * 16, 0),
            id="v4-mf",
        ),
        pytest.param(
            IP(src="192.0.2.10", dst="198.51.100.53", frag=10, id=9, proto=17) / Raw(b"x" * 8),
            dec.Fragment(4, SRC4, DST4, 17, 9, 80, False, b"x" * 8, 0),
            id="v4-offset",
        ),
        pytest.param(
            IP(src="192.0.2.10", dst="198.51.100.53", flags="DF") / UDP53,
            UDP4,
            id="v4-dont-fragment",
        ),
    ],
)
def test_ip_options_and_fragments(packet: Packet, expected: Segment | str) -> None:
    assert dec.decode(101, bytes(packet)) == expected


def test_ipv6_extension_chain_is_bounded() -> None:
    chain: Packet = V6.copy()
    for _ in range(9):
        chain = chain / IPv6ExtHdrDestOpt()
    assert dec.decode(101, bytes(chain / UDP53)) == dec.IP_BAD_HEADER


def test_ethernet_padding_is_trimmed() -> None:
    frame = bytes(Ether(**MACS) / V4 / UDP(sport=1, dport=53) / Raw(b"q")) + bytes(20)
    seg = dec.decode(1, frame)
    assert isinstance(seg, Segment) and seg.payload == b"q"


def test_ipv4_options_are_skipped() -> None:
    frame = bytes(IP(src="192.0.2.10", dst="198.51.100.53", options=b"\x01\x01\x01\x00") / UDP53)
    assert frame[0] & 0x0F == 6
    assert dec.decode(101, frame) == UDP4


@pytest.mark.parametrize(
    ("linktype", "frame", "expected"),
    [
        pytest.param(1, b"\x02\x00\x00", dec.LINK_TRUNCATED, id="ethernet-cut"),
        pytest.param(1, b(Ether(**MACS) / Dot1Q())[:16], dec.LINK_TRUNCATED, id="vlan-tag-cut"),
        pytest.param(113, b"\x00" * 10, dec.LINK_TRUNCATED, id="sll-cut"),
        pytest.param(276, b"\x00" * 10, dec.LINK_TRUNCATED, id="sll2-cut"),
        pytest.param(0, b"\x02", dec.LINK_TRUNCATED, id="null-cut"),
        pytest.param(101, b"", dec.IP_TRUNCATED, id="empty"),
        pytest.param(101, b(V4 / UDP53)[:15], dec.IP_TRUNCATED, id="ipv4-header-cut"),
        pytest.param(101, b(V4 / UDP53)[:30], dec.IP_TRUNCATED, id="snaplen"),
        pytest.param(101, b(V6 / UDP53)[:50], dec.IP_TRUNCATED, id="ipv6-snaplen"),
        pytest.param(
            101,
            b"\x45" + b(V4 / UDP53)[1:2] + b"\x00\x10" + b(V4 / UDP53)[4:],
            dec.IP_BAD_HEADER,
            id="total-below-ihl",
        ),
        pytest.param(101, b"\x43" + b(V4 / UDP53)[1:], dec.IP_BAD_HEADER, id="ihl-3"),
        pytest.param(101, b"\x15" + bytes(40), dec.NOT_IP, id="version-1"),
        pytest.param(228, b"\x65" + b(V4 / UDP53)[1:], dec.IP_BAD_HEADER, id="v6-nibble-in-v4"),
        pytest.param(
            101,
            b(V4 / UDP(sport=1, dport=53, len=200) / Raw(b"x")),
            dec.UDP_TRUNCATED,
            id="udp-length-lies",
        ),
        pytest.param(101, b(V4 / TCP(dataofs=3)), dec.TCP_TRUNCATED, id="tcp-data-offset-3"),
        pytest.param(101, b(V4 / TCP(dataofs=15)), dec.TCP_TRUNCATED, id="tcp-options-past-end"),
        pytest.param(
            101,
            b(IP(src="192.0.2.10", dst="198.51.100.53", proto=17) / Raw(b"abc")),
            dec.UDP_TRUNCATED,
            id="udp-header-cut",
        ),
        pytest.param(
            101,
            b(IP(src="192.0.2.10", dst="198.51.100.53", proto=6) / Raw(b"abc")),
            dec.TCP_TRUNCATED,
            id="tcp-header-cut",
        ),
    ],
)
def test_broken_frames(linktype: int, frame: bytes, expected: str) -> None:
    assert dec.decode(linktype, frame) == expected


def test_reasons_split_into_malformed_and_skipped() -> None:
    assert dec.IP_TRUNCATED in dec.MALFORMED_REASONS
    assert dec.IP_FRAGMENT not in dec.MALFORMED_REASONS and dec.NOT_IP not in dec.MALFORMED_REASONS


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (bytes([192, 0, 2, 1]), "192.0.2.1"),
        (bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
        (bytes.fromhex("00000000000000000000ffffc0000201"), "::ffff:192.0.2.1"),
    ],
)
def test_address_text(raw: bytes, text: str) -> None:
    assert dec.address_text(raw) == text


def nflog(family: int, packet: bytes | None, *, big_endian: bool = False) -> bytes:
    order = "big" if big_endian else "little"

    def tlv(kind: int, value: bytes) -> bytes:
        head = (4 + len(value)).to_bytes(2, order) + kind.to_bytes(2, order)
        return head + value + bytes(-len(value) % 4)

    prefix = tlv(10, b"prefix\x00") + tlv(1, bytes(4))  # NFULA_PREFIX, NFULA_PACKET_HDR
    payload = tlv(9, packet) if packet is not None else b""  # NFULA_PAYLOAD
    return bytes([family, 0, 0, 1]) + prefix + payload


def pktap(inner_linktype: int, packet: bytes) -> bytes:
    # pth_length, pth_type_next, pth_dlt, then interface name and process fields (zeros)
    head = (108).to_bytes(4, "little") + (1).to_bytes(4, "little")
    return head + inner_linktype.to_bytes(4, "little") + bytes(96) + packet


def wifi(*, fc0: int = 0x88, fc1: int = 0x01, qos: bool = True, snap: bool = True) -> bytes:
    """An 802.11 data frame (QoS data to the AP by default) carrying V4 / UDP53."""
    head = bytes([fc0, fc1]) + bytes(2) + bytes(18) + bytes(2)  # duration, 3 addresses, seq
    if qos:
        head += bytes(2)
    llc = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" if snap else b"\x42\x42\x03"
    return head + llc + b(V4 / UDP53)


def radiotap(frame: bytes) -> bytes:
    return b"\x00\x00" + (12).to_bytes(2, "little") + bytes(8) + frame


@pytest.mark.parametrize(
    ("linktype", "frame", "expected"),
    [
        pytest.param(
            1, b(Ether(**MACS) / PPPoE(sessionid=7) / PPP(proto=0x0021) / V4 / UDP53), UDP4,
            id="pppoe",
        ),
        pytest.param(
            1, b(Ether(**MACS) / PPPoE() / PPP(proto=0x0057) / V6 / UDP53), UDP6, id="pppoe-v6"
        ),
        pytest.param(
            1, b(Ether(**MACS) / PPPoE() / PPP(proto=0xC021) / Raw(bytes(20))), dec.NOT_IP,
            id="pppoe-lcp",
        ),
        pytest.param(
            1, b(Ether(**MACS) / MPLS(label=16, s=0) / MPLS(label=17, s=1) / V4 / UDP53), UDP4,
            id="mpls-two-labels",
        ),
        pytest.param(1, b(Ether(**MACS) / Dot1Q(vlan=5) / MPLS(s=1) / V6 / UDP53), UDP6,
                     id="vlan-mpls"),
        pytest.param(113, b(CookedLinux(proto=0x8100)) + b(Dot1Q(vlan=3) / V4 / UDP53), UDP4,
                     id="sll-with-vlan-tag"),
        pytest.param(9, b"\xff\x03\x00\x21" + b(V4 / UDP53), UDP4, id="ppp-hdlc-framing"),
        pytest.param(9, b"\x00\x57" + b(V6 / UDP53), UDP6, id="ppp"),
        pytest.param(50, b"\xff\x03\x21" + b(V4 / UDP53), UDP4, id="ppp-compressed-protocol"),
        pytest.param(104, b"\x0f\x00\x08\x00" + b(V4 / UDP53), UDP4, id="cisco-hdlc"),
        pytest.param(239, nflog(2, b(V4 / UDP53)), UDP4, id="nflog"),
        pytest.param(239, nflog(10, b(V6 / UDP53), big_endian=True), UDP6, id="nflog-big-endian"),
        pytest.param(239, nflog(2, None), dec.NOT_IP, id="nflog-no-payload"),
        pytest.param(258, pktap(1, b(Ether(**MACS) / V4 / UDP53)), UDP4, id="pktap-ethernet"),
        pytest.param(258, pktap(12, b(V6 / UDP53)), UDP6, id="pktap-raw"),
        pytest.param(105, wifi(), UDP4, id="wifi-qos-data"),
        pytest.param(105, wifi(fc0=0x08, qos=False), UDP4, id="wifi-data"),
        pytest.param(105, wifi(fc1=0x41), dec.NOT_IP, id="wifi-protected"),
        pytest.param(105, wifi(fc0=0x80), dec.NOT_IP, id="wifi-beacon"),
        pytest.param(105, wifi(snap=False), dec.NOT_IP, id="wifi-not-snap"),
        pytest.param(127, radiotap(wifi()), UDP4, id="radiotap"),
        pytest.param(
            192, b"\x00\x00\x08\x00" + (1).to_bytes(4, "little") + b(Ether(**MACS) / V4 / UDP53),
            UDP4, id="ppi-ethernet",
        ),
    ],
)  # fmt: skip
def test_more_link_types(linktype: int, frame: bytes, expected: Segment | str) -> None:
    assert dec.decode(linktype, frame) == expected
    assert linktype in dec.LINKTYPES


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        pytest.param(1, b(Ether(**MACS) / PPPoE())[:18], id="pppoe-cut"),
        pytest.param(1, b(Ether(**MACS) / MPLS(s=0))[:18], id="mpls-cut"),
        pytest.param(104, b"\x0f\x00", id="cisco-hdlc-cut"),
        pytest.param(105, wifi()[:20], id="wifi-cut"),
        pytest.param(127, b"\x00\x00\x40", id="radiotap-cut"),
        pytest.param(258, pktap(1, b"")[:8], id="pktap-cut"),
        pytest.param(239, b"\x02\x00", id="nflog-cut"),
    ],
)
def test_more_link_types_cut(linktype: int, frame: bytes) -> None:
    assert dec.decode(linktype, frame) in (dec.LINK_TRUNCATED, dec.IP_TRUNCATED)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([*sorted(dec.LINKTYPES), 9999]), st.binary(max_size=120))
def test_fuzz_never_raises(linktype: int, frame: bytes) -> None:
    got = dec.decode(linktype, frame)
    assert isinstance(got, Segment | dec.Fragment | str)
    if isinstance(got, Segment):
        assert len(got.src) in (4, 16) and len(got.dst) == len(got.src)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=4), st.integers(0, 60))
def test_fuzz_mutated_frames_never_raise(patch: bytes, at: int) -> None:
    for frame in (bytes(Ether(**MACS) / Dot1Q() / V6 / TCP443), bytes(Ether(**MACS) / V4 / UDP53)):
        data = frame[:at] + patch + frame[at + len(patch) :]
        assert isinstance(dec.decode(1, data), Segment | dec.Fragment | str)


def test_ipv4_total_length_zero_from_segmentation_offload() -> None:
    frame = bytearray(bytes(Ether(**MACS) / V4 / TCP443))
    frame[16:18] = b"\x00\x00"  # what a capture of a locally sent TSO segment shows
    assert dec.decode(1, bytes(frame)) == TCP4
