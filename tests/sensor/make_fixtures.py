"""Build the sensor's pcap fixtures and their golden outputs under tests/sensor/data/.

    /tmp/v/bin/python tests/sensor/make_fixtures.py          # rewrite pcaps and goldens

Packets are made with scapy from the synthetic messages of ``monitor.sensor.synth``, with
explicit MAC addresses (scapy would otherwise resolve them with ARP) and documentation
addresses only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); the fixture
of several link types is written by hand as pcapng (one interface per link type). Tunnels,
fragments and STUN are built with scapy's own layers, so that the decoder is checked against
an encoder that is not ``synth``'s. Nothing is ever sent: the packets go straight into capture
files. Golden files:

- ``<name>.out``: ``monitor sensor --pcap <name>.<ext> --format tsv`` with the shipped catalogue;
- ``<name>.jsonl.out``: the same with ``--format json``;
- ``<name>.stats.json``: the sensor's counters after the file.

Review a golden diff by eye before committing it: the tests compare against these exactly.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.contrib.erspan import ERSPAN_II
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import GRE, GRE_PPTP, CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter, wrpcap

from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier
from monitor.sensor import output, quic, synth
from monitor.sensor.pcap import read_frames
from monitor.sensor.pipeline import Sensor

DATA = Path(__file__).resolve().parent / "data"
T0 = 1714550400.0  # 2024-05-01T08:00:00Z

CLIENT_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:fe"
C1, C2, C3 = "192.0.2.10", "192.0.2.11", "192.0.2.20"
RESOLVER = "198.51.100.53"
C6, RESOLVER6, SERVER6 = "2001:db8::10", "2001:db8::53", "2001:db8:1::443"

A, AAAA, HTTPS = 1, 28, 65


def eth() -> Ether:
    return Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)


def eth_back() -> Ether:
    return Ether(src=GATEWAY_MAC, dst=CLIENT_MAC)


def udp4(src: str, sport: int, dst: str, dport: int, payload: bytes) -> Packet:
    return IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)


def udp6(src: str, sport: int, dst: str, dport: int, payload: bytes) -> Packet:
    return IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)


def tcp4(src: str, sport: int, dst: str, dport: int, payload: bytes, seq: int = 1000) -> Packet:
    return (
        IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=1)
        / Raw(payload)
    )


def tcp6(src: str, sport: int, dst: str, dport: int, payload: bytes, seq: int = 1000) -> Packet:
    return (
        IPv6(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=1)
        / Raw(payload)
    )


def hello(sni: str | None, **kw: Any) -> bytes:
    return synth.tls_records(synth.client_hello(sni, **kw))


def pointer_loop_query() -> bytes:
    # header, then a name that is one pointer to itself (offset 12)
    return bytes.fromhex("beef01000001000000000000") + b"\xc0\x0c" + b"\x00\x01\x00\x01"


def dns_packets() -> list[Packet]:
    return [
        eth() / udp4(C1, 40001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", A)], msg_id=1)),
        # the AAAA query on the same socket names the same host: one observation
        eth()
        / udp4(C1, 40001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", AAAA)], msg_id=2)),
        # the answer repeats the question: not an observation
        eth_back()
        / udp4(RESOLVER, 53, C1, 40001, synth.dns_query([("www.tiktok.com", A)], response=True)),
        # two questions, the second compressed to a pointer into the first
        eth()
        / udp4(
            C2,
            40002,
            RESOLVER,
            53,
            synth.dns_query([("m.youtube.com", A), ("youtube.com", HTTPS)], msg_id=3),
        ),
        eth() / tcp4(C1, 40003, RESOLVER, 53, synth.dns_tcp(synth.dns_query([("dns.google", A)]))),
        eth() / udp4(C2, 40004, RESOLVER, 53, pointer_loop_query()),
        eth() / udp6(C6, 40005, RESOLVER6, 53, synth.dns_query([("WWW.Example.ORG.", AAAA)])),
    ]


def tls_packets() -> list[Packet]:
    split_hello = hello("www.tiktok.com", alpn=["h2"], pad_to=1400)
    parts = synth.split(split_hello, 3)
    seq = [1000, 1000 + len(parts[0]), 1000 + len(parts[0]) + len(parts[1])]
    flow = (C1, 50002, "198.51.100.11", 443)
    return [
        eth()
        / tcp4(C1, 50001, "198.51.100.10", 443, hello("www.youtube.com", alpn=["h2", "http/1.1"])),
        eth() / tcp4(*flow, parts[0], seq=seq[0]),
        # another flow's packet between the segments of a split ClientHello
        eth() / tcp4(C2, 50009, "198.51.100.19", 443, b"\x17\x03\x03\x00\x05hello"),
        eth() / tcp4(*flow, parts[1], seq=seq[1]),
        eth() / tcp4(*flow, parts[1], seq=seq[1]),  # retransmitted
        eth() / tcp4(*flow, parts[2], seq=seq[2]),
        eth()
        / tcp4(C2, 50003, "198.51.100.12", 443, hello("public.example.com", ech=True, alpn=["h2"])),
        eth() / tcp4(C2, 50004, "198.51.100.13", 853, hello("dns.example.net", alpn=["dot"])),
        eth() / tcp4(C2, 50005, "198.51.100.14", 8443, hello("video.example.org")),
        eth() / tcp6(C6, 50006, SERVER6, 443, hello("www.tiktok.com", alpn=["h2"])),
        # the server's reply starts with a handshake record too, but is no ClientHello
        eth_back() / tcp4("198.51.100.10", 443, C1, 50001, b"\x16\x03\x03\x00\x04\x02\x00\x00\x00"),
        # the first ClientHello again (retransmitted): deduplicated
        eth()
        / tcp4(C1, 50001, "198.51.100.10", 443, hello("www.youtube.com", alpn=["h2", "http/1.1"])),
        eth() / tcp4(C1, 50007, "198.51.100.15", 443, hello(None)),
        # an SNI extension whose list length lies
        eth() / tcp4(C1, 50008, "198.51.100.16", 443, broken_sni_hello()),
    ]


def broken_sni_hello() -> bytes:
    msg = bytearray(synth.client_hello("broken.example.com"))
    i = msg.index(b"broken.example.com") - 5  # the ServerNameList length
    msg[i : i + 2] = b"\x00\xff"
    return synth.tls_records(bytes(msg))


def quic_packets() -> list[Packet]:
    v1 = synth.quic_initials(
        synth.client_hello("www.youtube.com", alpn=["h3"]),
        dcid=bytes.fromhex("0001020304050607"),
        scid=b"\x0a\x0b\x0c\x0d",
    )
    v2 = synth.quic_initials(
        synth.client_hello("www.tiktok.com", alpn=["h3"]),
        version=quic.V2,
        dcid=bytes.fromhex("1011121314151617"),
    )
    two = synth.quic_initials(
        synth.client_hello("i.ytimg.com", alpn=["h3"], pad_to=1700),
        dcid=bytes.fromhex("2021222324252627"),
        packets=2,
    )
    v6 = synth.quic_initials(
        synth.client_hello("example.com", alpn=["h3"]),
        dcid=bytes.fromhex("3031323334353637"),
    )
    corrupt = bytearray(
        synth.quic_initials(synth.client_hello("corrupt.example.com"), dcid=b"\x40" * 8)[0]
    )
    corrupt[100] ^= 0xFF  # breaks the AEAD tag check
    short_header = bytes([0x40]) + bytes(range(40))
    return [
        eth() / udp4(C1, 60001, "198.51.100.20", 443, v1[0]),
        eth() / udp4(C2, 60002, "198.51.100.21", 443, v2[0]),
        eth() / udp4(C1, 60003, "198.51.100.22", 443, two[0]),
        eth() / udp4(C1, 60001, "198.51.100.20", 443, short_header),  # 1-RTT: not read
        eth() / udp4(C1, 60003, "198.51.100.22", 443, two[1]),
        eth() / udp4(C1, 60001, "198.51.100.20", 443, v1[0]),  # retransmitted Initial
        eth() / udp6(C6, 60004, SERVER6, 443, v6[0]),
        eth() / udp4(C2, 60005, "198.51.100.23", 443, bytes(corrupt)),
    ]


def vlan_packets() -> list[Packet]:
    return [
        Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / Dot1Q(vlan=10)
        / udp4(C3, 41001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", A)])),
        Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / Dot1AD(vlan=100)
        / Dot1Q(vlan=20)
        / tcp4(C3, 51001, "198.51.100.30", 443, hello("www.youtube.com")),
        Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / Dot1Q(vlan=10)
        / udp6(C6, 41002, RESOLVER6, 53, synth.dns_query([("dns.google", HTTPS)])),
    ]


def cooked_packets() -> list[Packet]:
    def sll(proto: int) -> CookedLinux:
        return CookedLinux(
            pkttype=4,
            lladdrtype=1,
            lladdrlen=6,
            src=b"\x02\x00\x00\x00\x00\x01\x00\x00",
            proto=proto,
        )

    return [
        sll(0x0800) / udp4(C1, 42001, RESOLVER, 53, synth.dns_query([("www.youtube.com", A)])),
        sll(0x86DD) / tcp6(C6, 52001, SERVER6, 443, hello("www.tiktok.com")),
        sll(0x0806) / Raw(bytes(28)),  # ARP: skipped
    ]


def rawip_packets() -> list[Packet]:
    return [
        tcp4(C2, 53001, "198.51.100.40", 443, hello("dns.google", alpn=["h2"])),
        udp6(C6, 43001, RESOLVER6, 53, synth.dns_query([("www.tiktok.com", AAAA)])),
        IP(src=C2, dst="198.51.100.40", flags="MF", frag=0)
        / UDP(sport=1, dport=53)
        / Raw(b"x" * 8),
    ]


def pcapng_packets() -> list[Packet]:
    v1 = synth.quic_initials(
        synth.client_hello("www.tiktok.com", alpn=["h3"]),
        dcid=bytes.fromhex("5051525354555657"),
    )
    return [
        eth() / udp4(C1, 44001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", A)])),
        eth() / tcp4(C1, 54001, "198.51.100.50", 443, hello("www.youtube.com", alpn=["h2"])),
        eth() / udp4(C1, 64001, "198.51.100.51", 443, v1[0]),
    ]


# --- tunnels, link types, fragments, TCP order, CNAME chains, STUN ---------------------------

T1, T2 = "203.0.113.1", "203.0.113.2"  # tunnel endpoints
T6A, T6B = "2001:db8:ffff::1", "2001:db8:ffff::2"


def tunnel_packets() -> list[Packet]:
    inner_dns = udp4(C1, 45001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", A)]))
    deep: Packet = tcp4(C1, 55009, "198.51.100.69", 443, hello("deep.example.com"))
    for _ in range(9):  # nine IP-in-IP layers: refused (encap_too_deep)
        deep = IP(src=T1, dst=T2) / deep
    return [
        # 6in4 (IPv4 protocol 41), as a tunnel broker's: an IPv6 ClientHello inside
        eth() / IP(src=T1, dst=T2) / tcp6(C6, 55001, SERVER6, 443, hello("www.instagram.com")),
        # IP in IP (4in4)
        eth() / IP(src=T1, dst=T2) / inner_dns,
        # IPv6 in IPv6 and IPv4 in IPv6
        eth()
        / IPv6(src=T6A, dst=T6B)
        / udp6(C6, 45002, RESOLVER6, 53, synth.dns_query([("www.snapchat.com", AAAA)])),
        eth()
        / IPv6(src=T6A, dst=T6B)
        / tcp4(C2, 55002, "198.51.100.61", 443, hello("discord.com")),
        # GRE without options, carrying IPv4
        eth()
        / IP(src=T1, dst=T2)
        / GRE()
        / tcp4(C1, 55003, "198.51.100.62", 443, hello("www.youtube.com")),
        # GRE with checksum, key and sequence number, carrying IPv6
        eth()
        / IP(src=T1, dst=T2)
        / GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1, sequence_number=9)
        / udp6(C6, 45003, RESOLVER6, 53, synth.dns_query([("www.reddit.com", A)])),
        # GRE transparent Ethernet bridging (0x6558): an Ethernet frame with a VLAN tag
        eth()
        / IP(src=T1, dst=T2)
        / GRE(proto=0x6558)
        / Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / Dot1Q(vlan=30)
        / tcp4(C2, 55004, "198.51.100.63", 443, hello("www.pinterest.com")),
        # PPTP's enhanced GRE with an acknowledgement, PPP inside
        eth()
        / IP(src=T1, dst=T2)
        / GRE_PPTP(seqnum_present=1, acknum_present=1, call_id=3, sequence_number=1, ack_number=1)
        / PPP(proto=0x0021)
        / udp4(C2, 45004, RESOLVER, 53, synth.dns_query([("web.whatsapp.com", A)])),
        # ERSPAN type II: a mirrored frame
        eth()
        / IP(src=T1, dst=T2)
        / GRE(seqnum_present=1, sequence_number=1, proto=0x88BE)
        / ERSPAN_II(session_id=5)
        / Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / tcp4(C1, 55005, "198.51.100.64", 443, hello("www.twitch.tv")),
        # VXLAN (UDP 4789), as cloud traffic mirroring sends copies
        eth()
        / IP(src=T1, dst=T2)
        / UDP(sport=49152, dport=4789)
        / VXLAN(vni=42)
        / Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
        / udp4(C1, 45005, RESOLVER, 53, synth.dns_query([("www.roblox.com", A)])),
        eth() / deep,
        # GRE with source routing (RFC 1701, obsolete): refused, counted as skipped
        eth() / IP(src=T1, dst=T2) / GRE(routing_present=1) / Raw(bytes(24)),
    ]


def _pcapng(path: Path, frames: list[tuple[int, bytes]]) -> None:
    """A pcapng file with one interface per link type, packets 1 ms apart from T0."""

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", kind, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    ifaces: dict[int, int] = {}
    for linktype, _ in frames:
        if linktype not in ifaces:
            ifaces[linktype] = len(ifaces)
            out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for i, (linktype, data) in enumerate(frames):
        ts = int((T0 + i / 1000) * 1e6)
        head = struct.pack(
            "<IIIII", ifaces[linktype], ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)
        )
        out += block(6, head + data)
    path.write_bytes(out)


def link_frames() -> list[tuple[int, bytes]]:
    def af(family: int, order: str) -> bytes:
        return family.to_bytes(4, order)  # type: ignore[arg-type]

    def sll2(proto: int) -> bytes:
        return (
            proto.to_bytes(2, "big")
            + bytes(2)
            + (3).to_bytes(4, "big")
            + b"\x00\x01\x00\x06"
            + bytes(8)
        )

    v4 = bytes(udp4(C1, 46001, RESOLVER, 53, synth.dns_query([("www.tiktok.com", A)])))
    v6 = bytes(tcp6(C6, 56001, SERVER6, 443, hello("www.youtube.com")))
    return [
        (0, af(2, "little") + v4),  # BSD loopback, AF_INET
        (0, af(24, "little") + v6),  # AF_INET6 on NetBSD/OpenBSD
        (0, af(28, "little") + bytes(tcp6(C6, 56002, SERVER6, 443, hello("www.twitch.tv")))),
        (0, af(30, "big") + bytes(tcp6(C6, 56003, SERVER6, 443, hello("discord.com")))),
        (
            108,
            af(24, "big")
            + bytes(udp6(C6, 46002, RESOLVER6, 53, synth.dns_query([("www.reddit.com", AAAA)]))),
        ),
        (
            276,
            sll2(0x0800) + bytes(tcp4(C2, 56004, "198.51.100.71", 443, hello("www.snapchat.com"))),
        ),
        (
            276,
            sll2(0x86DD)
            + bytes(udp6(C6, 46003, RESOLVER6, 53, synth.dns_query([("www.roblox.com", A)]))),
        ),
        (
            1,
            bytes(
                Ether(src=CLIENT_MAC, dst=GATEWAY_MAC, type=0x9100)
                / Dot1Q(vlan=200)
                / tcp4(C2, 56005, "198.51.100.72", 443, hello("www.pinterest.com"))
            ),
        ),
        (
            1,
            bytes(
                Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
                / PPPoE(sessionid=9)
                / PPP(proto=0x0021)
                / tcp4(C2, 56006, "198.51.100.73", 443, hello("www.tumblr.com"))
            ),
        ),
        (
            1,
            bytes(
                Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)
                / PPPoE(sessionid=9)
                / PPP(proto=0x0057)
                / udp6(C6, 46004, RESOLVER6, 53, synth.dns_query([("www.threads.net", A)]))
            ),
        ),
        (101, bytes(udp4(C2, 46005, RESOLVER, 53, synth.dns_query([("www.vsco.co", A)])))),
    ]


def fragment_packets() -> list[Packet]:
    answer = synth.dns_answer(
        "www.tiktok.com", A, addresses=[f"198.51.100.{i}" for i in range(100, 200)]
    )  # 3 KB: an answer larger than the MTU
    dns_frags = fragment(
        IP(src=RESOLVER, dst=C1, id=101) / UDP(sport=53, dport=47001) / Raw(answer), 1000
    )
    hello_frags = fragment(
        IP(src=C2, dst="198.51.100.81", id=102)
        / TCP(sport=57001, dport=443, flags="PA", seq=1, ack=1)
        / Raw(hello("www.youtube.com", pad_to=1400)),
        512,
    )
    initial = synth.quic_initials(
        synth.client_hello("www.instagram.com", alpn=["h3"]), dcid=bytes.fromhex("6061626364656667")
    )[0]
    quic_frags = fragment6(
        IPv6(src=C6, dst=SERVER6)
        / IPv6ExtHdrFragment(id=103)
        / UDP(sport=47002, dport=443)
        / Raw(initial),
        800,
    )
    # an overlap that changes bytes: the datagram is refused, and its later fragments too
    evil = IP(src=C1, dst=RESOLVER, id=104, proto=17, flags="MF")
    tunnel_frags = fragment(
        IP(src=T1, dst=T2, id=105)
        / tcp6(C6, 57002, SERVER6, 443, hello("www.reddit.com", pad_to=1300)),
        600,
    )
    orphan = eth() / IP(src=C1, dst=RESOLVER, id=106, proto=17, flags="MF") / Raw(bytes(64))
    late = eth() / IP(src=C2, dst=RESOLVER, id=107, proto=17, flags="MF") / Raw(bytes(64))
    late.delay = 40.0  # type: ignore[attr-defined]  # after the timeout: the orphan expires
    return [
        *(eth_back() / f for f in dns_frags),
        *(eth() / f for f in reversed(hello_frags)),  # out of order
        eth() / quic_frags[1],
        eth() / quic_frags[1],  # a duplicate: consistent, so harmless
        eth() / quic_frags[0],
        eth() / evil.copy() / Raw(b"A" * 16),
        eth() / evil.copy() / Raw(b"B" * 16),  # the same offset, other bytes: refused
        eth() / IP(src=C1, dst=RESOLVER, id=104, proto=17, frag=2) / Raw(b"C" * 8),
        *(eth() / f for f in tunnel_frags),  # a 6in4 tunnel fragmented outside
        orphan,
        late,
    ]


def tcp_order_packets() -> list[Packet]:
    def seg(sport: int, dport: int, payload: bytes, seq: int, flags: str = "PA") -> Packet:
        return (
            eth()
            / IP(src=C1, dst="198.51.100.90")
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=1)
            / Raw(payload)
        )

    def syn(sport: int, dport: int, seq: int = 999) -> Packet:
        return (
            eth()
            / IP(src=C1, dst="198.51.100.90")
            / TCP(sport=sport, dport=dport, flags="S", seq=seq)
        )

    rec = hello("www.youtube.com", alpn=["h2"], pad_to=1500)
    a, b, c = synth.split(rec, 3)
    sa, sb, sc = 1000, 1000 + len(a), 1000 + len(a) + len(b)
    rec2 = hello("www.tiktok.com", pad_to=900)
    d, e = synth.split(rec2, 2)
    real = hello("www.tiktok.com", pad_to=800)
    fake = hello("www.tiktok.org", pad_to=800)  # same length, other bytes
    return [
        syn(58001, 443),
        seg(58001, 443, c, sc),  # the last third first
        seg(58001, 443, b, sb),
        seg(58001, 443, a, sa),  # and the first last: read once all are in
        syn(58002, 8443),  # not a TLS port: held because the SYN said where data starts
        seg(58002, 8443, e, 1000 + len(d)),
        seg(58002, 8443, d, 1000),
        seg(58003, 443, real[:300], 1000),
        seg(58003, 443, fake[:600], 1000),  # repeats 300 bytes, changed: the flow is refused
        seg(58003, 443, real[600:], 1600),
        # TCP Fast Open: the ClientHello starts in the SYN (its data begins at seq + 1)
        seg(58004, 443, rec2[:400], 4999, flags="S"),
        seg(58004, 443, rec2[400:], 5400),
    ]


def cname_packets() -> list[Packet]:
    chain = synth.dns_answer(
        "video.example.net",
        A,
        cnames=["edge.example.org", "v16-webapp.tiktokcdn.com", "a1.example.com"],
        addresses=["198.51.100.120"],
    )
    own = synth.dns_answer(
        "www.instagram.com",
        A,
        cnames=["z-p42-instagram.c10r.facebook.com"],
        addresses=["198.51.100.121"],
    )
    loop = bytearray(
        synth.dns_answer("a.example.net", A, cnames=["b.example.net", "a.example.net"])
    )
    cdn_only = synth.dns_answer(
        "static.example.net",
        A,
        cnames=["static.example.net.edgekey.net"],
        addresses=["198.51.100.122"],
    )
    return [
        eth()
        / udp4(C1, 48001, RESOLVER, 53, synth.dns_query([("video.example.net", A)], msg_id=1)),
        eth_back() / udp4(RESOLVER, 53, C1, 48001, chain),
        # a connection to the answer's address that names nothing: named by the chain
        eth() / IP(src=C1, dst="198.51.100.120") / TCP(sport=58101, dport=5222, flags="S"),
        eth()
        / IP(src=C1, dst="198.51.100.120")
        / TCP(sport=58101, dport=5222, flags="PA", seq=1, ack=1)
        / Raw(b"\x00\x00\x00\x10binary"),
        eth_back() / udp4(RESOLVER, 53, C2, 48002, own),  # keeps its own platform
        eth_back() / udp4(RESOLVER, 53, C2, 48003, bytes(loop)),  # a loop ends the chain
        eth_back() / udp4(RESOLVER, 53, C2, 48004, cdn_only),  # a shared CDN: no platform
    ]


def stun_packets() -> list[Packet]:
    user = (0x0006, b"1714550400:abcd")
    return [
        # a TURN Allocate request naming Signal's realm (UDP 3478)
        eth()
        / udp4(
            C1,
            49001,
            "198.51.100.130",
            3478,
            synth.stun_message(0x0003, [user, (0x0014, b"signal.org")]),
        ),
        # the relay's 401 answer names Telegram's realm (UDP 443): the client is the receiver
        eth_back()
        / udp4(
            "198.51.100.131",
            443,
            C1,
            49002,
            synth.stun_message(
                0x0113,
                [
                    (0x0009, b"\x00\x00\x04\x01Unauthorized"),
                    (0x0014, b"telegram.org"),
                    (0x8022, b"None"),
                ],
            ),
        ),
        # Meta's relays' realm on a port of their own: not a host name, the word names the app
        eth()
        / udp4(
            C2,
            49003,
            "198.51.100.132",
            40000,
            synth.stun_message(0x0003, [user, (0x0014, b"turner.facebook")]),
        ),
        # the same request again: one line per flow and name
        eth()
        / udp4(
            C2,
            49003,
            "198.51.100.132",
            40000,
            synth.stun_message(0x0003, [user, (0x0014, b"turner.facebook")]),
        ),
        # a binding check between peers names nothing
        eth()
        / udp4(
            C2,
            49004,
            "198.51.100.133",
            50000,
            synth.stun_message(0x0001, [(0x0006, b"aa:bb"), (0x8028, bytes(4))]),
        ),
        # RFC 3489 (no magic cookie) on 3478: read, and its server software names no app
        eth_back()
        / udp4(
            "198.51.100.134",
            3478,
            C2,
            49005,
            synth.stun_message(
                0x0101, [(0x0001, bytes(8)), (0x8022, b"Vovida.org 0.96")], classic=True
            ),
        ),
        # TURN over TCP 443 naming Viber's realm
        eth()
        / tcp4(
            C1,
            59001,
            "198.51.100.135",
            443,
            synth.stun_message(0x0003, [user, (0x0014, b"viber.com")]),
        ),
        # a STUN-looking datagram with bytes after the message: not read
        eth()
        / udp4(
            C1,
            49006,
            "198.51.100.136",
            3478,
            synth.stun_message(0x0801, [(0x4003, b"\x01")]) + bytes(28),
        ),
        eth()
        / udp6(
            C6, 49007, SERVER6, 3478, synth.stun_message(0x0003, [user, (0x0014, b"signal.org")])
        ),
    ]


# name -> (builder, file extension, linktype to force or None)
FIXTURES: dict[str, tuple[Callable[[], list[Any]], str, int | None]] = {
    "dns": (dns_packets, "pcap", None),
    "tls": (tls_packets, "pcap", None),
    "quic": (quic_packets, "pcap", None),
    "vlan": (vlan_packets, "pcap", None),
    "cooked": (cooked_packets, "pcap", None),
    "rawip": (rawip_packets, "pcap", 101),
    "mixed": (pcapng_packets, "pcapng", None),
    "tunnels": (tunnel_packets, "pcap", None),
    "links": (link_frames, "pcapng", None),  # (linktype, bytes) per frame
    "fragments": (fragment_packets, "pcap", None),
    "tcp_order": (tcp_order_packets, "pcap", None),
    "cname": (cname_packets, "pcap", None),
    "stun": (stun_packets, "pcap", None),
}


def write_fixture(name: str, outdir: Path) -> Path:
    """Build one fixture's packets (times 1 ms apart from T0) and write its capture file."""
    build, ext, linktype = FIXTURES[name]
    packets = build()
    path = outdir / f"{name}.{ext}"
    if packets and isinstance(packets[0], tuple):
        _pcapng(path, packets)
        return path
    for i, p in enumerate(packets):
        p.time = T0 + i / 1000 + getattr(p, "delay", 0.0)
    if ext == "pcapng":
        with PcapNgWriter(str(path)) as w:
            for p in packets:
                w.write(p)
    elif linktype is not None:
        # as bytes: scapy warns when IP and IPv6 classes share one forced link type
        with PcapWriter(str(path), linktype=linktype) as w:
            w.write_header(None)
            for i, p in enumerate(packets):
                w.write_packet(bytes(p), sec=int(T0), usec=i * 1000)
    else:
        wrpcap(str(path), packets)
    return path


def goldens(path: Path) -> tuple[str, str, str]:
    """(tsv, jsonl, stats) of a capture file, as the CLI prints them."""
    sensor = Sensor(Classifier(catalogue_mod.load()))
    observations = list(sensor.run(read_frames(path)))
    tsv = "".join(output.tsv_line(o) + "\n" for o in observations)
    jsonl = "".join(output.json_line(o) + "\n" for o in observations)
    stats = json.dumps(sensor.counters.as_dict(), indent=2) + "\n"
    return tsv, jsonl, stats


def main(outdir: Path = DATA) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        path = write_fixture(name, outdir)
        tsv, jsonl, stats = goldens(path)
        (outdir / f"{name}.out").write_text(tsv)
        (outdir / f"{name}.jsonl.out").write_text(jsonl)
        (outdir / f"{name}.stats.json").write_text(stats)
        print(f"{path.relative_to(outdir.parent)}: {tsv.count(chr(10))} observations")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
