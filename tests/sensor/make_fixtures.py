"""Build the sensor's pcap fixtures and their golden outputs under tests/sensor/data/.

    /tmp/v/bin/python tests/sensor/make_fixtures.py          # rewrite pcaps and goldens

Packets are made with scapy from the synthetic messages of ``monitor.sensor.synth``, with
explicit MAC addresses (scapy would otherwise resolve them with ARP) and documentation
addresses only (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32). Nothing is ever sent: the
packets go straight into pcap files. Golden files:

- ``<name>.out``: ``monitor sensor --pcap <name>.<ext> --format tsv`` with the shipped catalogue;
- ``<name>.jsonl.out``: the same with ``--format json``;
- ``<name>.stats.json``: the sensor's counters after the file.

Review a golden diff by eye before committing it: the tests compare against these exactly.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
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


# name -> (builder, file extension, linktype to force or None)
FIXTURES: dict[str, tuple[Callable[[], list[Packet]], str, int | None]] = {
    "dns": (dns_packets, "pcap", None),
    "tls": (tls_packets, "pcap", None),
    "quic": (quic_packets, "pcap", None),
    "vlan": (vlan_packets, "pcap", None),
    "cooked": (cooked_packets, "pcap", None),
    "rawip": (rawip_packets, "pcap", 101),
    "mixed": (pcapng_packets, "pcapng", None),
}


def write_fixture(name: str, outdir: Path) -> Path:
    """Build one fixture's packets (times 1 ms apart from T0) and write its capture file."""
    build, ext, linktype = FIXTURES[name]
    packets = build()
    for i, p in enumerate(packets):
        p.time = T0 + i / 1000
    path = outdir / f"{name}.{ext}"
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
