"""Capture files → observations, against the committed fixtures and golden outputs."""

from __future__ import annotations

import json
from pathlib import Path

import make_fixtures as fx
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

from monitor.platforms.classify import Classifier
from monitor.sensor import output, synth
from monitor.sensor.pcap import BPF_FILTER, observe_pcap, packet_handler, read_frames
from monitor.sensor.pipeline import Sensor

DATA = fx.DATA
NAMES = sorted(fx.FIXTURES)


def capture(name: str) -> Path:
    return DATA / f"{name}.{fx.FIXTURES[name][1]}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_outputs(name: str, classifier: Classifier) -> None:
    sensor = Sensor(classifier)
    observations = list(observe_pcap(capture(name), sensor=sensor))
    assert (
        "".join(output.tsv_line(o) + "\n" for o in observations)
        == (DATA / f"{name}.out").read_text()
    )
    assert (
        "".join(output.json_line(o) + "\n" for o in observations)
        == (DATA / f"{name}.jsonl.out").read_text()
    )
    assert sensor.counters.as_dict() == json.loads((DATA / f"{name}.stats.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_are_reproducible(name: str, tmp_path: Path) -> None:
    """The committed capture is what make_fixtures.py builds today (frames and times)."""
    fresh = fx.write_fixture(name, tmp_path)
    assert list(read_frames(fresh)) == list(read_frames(capture(name)))


# What each fixture must show, stated independently of the golden files:
# (fixture, hostname, protocol, client, platform, ech)
EXPECTED = [
    ("dns", "www.tiktok.com", "dns", "192.0.2.10", "tiktok", False),
    ("dns", "youtube.com", "dns", "192.0.2.11", "youtube", False),  # behind a compression pointer
    ("dns", "dns.google", "dns", "192.0.2.10", "doh-google", False),  # over TCP
    ("dns", "www.example.org", "dns", "2001:db8::10", None, False),
    ("tls", "www.tiktok.com", "tls", "192.0.2.10", "tiktok", False),  # split over 3 segments
    ("tls", "public.example.com", "tls", "192.0.2.11", None, True),
    ("tls", "dns.example.net", "tls", "192.0.2.11", None, False),  # port 853
    ("tls", "video.example.org", "tls", "192.0.2.11", None, False),  # port 8443
    ("tls", "www.tiktok.com", "tls", "2001:db8::10", "tiktok", False),
    ("quic", "www.youtube.com", "quic", "192.0.2.10", "youtube", False),
    ("quic", "www.tiktok.com", "quic", "192.0.2.11", "tiktok", False),  # QUIC v2
    ("quic", "i.ytimg.com", "quic", "192.0.2.10", "youtube", False),  # CRYPTO over 2 Initials
    ("quic", "example.com", "quic", "2001:db8::10", None, False),
    ("vlan", "www.tiktok.com", "dns", "192.0.2.20", "tiktok", False),
    ("vlan", "www.youtube.com", "tls", "192.0.2.20", "youtube", False),  # QinQ
    ("cooked", "www.tiktok.com", "tls", "2001:db8::10", "tiktok", False),
    ("rawip", "dns.google", "tls", "192.0.2.11", "doh-google", False),
    ("mixed", "www.tiktok.com", "quic", "192.0.2.10", "tiktok", False),
    ("tunnels", "www.instagram.com", "tls", "2001:db8::10", "instagram", False),  # 6in4
    ("tunnels", "www.tiktok.com", "dns", "192.0.2.10", "tiktok", False),  # 4in4
    ("tunnels", "www.snapchat.com", "dns", "2001:db8::10", "snapchat", False),  # 6in6
    ("tunnels", "discord.com", "tls", "192.0.2.11", "discord", False),  # 4in6
    ("tunnels", "www.youtube.com", "tls", "192.0.2.10", "youtube", False),  # GRE
    ("tunnels", "www.reddit.com", "dns", "2001:db8::10", "reddit", False),  # GRE, options
    ("tunnels", "www.pinterest.com", "tls", "192.0.2.11", "pinterest", False),  # GRE 0x6558
    ("tunnels", "web.whatsapp.com", "dns", "192.0.2.11", "whatsapp", False),  # PPTP
    ("tunnels", "www.twitch.tv", "tls", "192.0.2.10", "twitch", False),  # ERSPAN II
    ("tunnels", "www.roblox.com", "dns", "192.0.2.10", "roblox", False),  # VXLAN
    ("links", "www.tiktok.com", "dns", "192.0.2.10", "tiktok", False),  # null, AF_INET
    ("links", "discord.com", "tls", "2001:db8::10", "discord", False),  # null, AF 30 big-endian
    ("links", "www.reddit.com", "dns", "2001:db8::10", "reddit", False),  # loop, AF 24
    ("links", "www.snapchat.com", "tls", "192.0.2.11", "snapchat", False),  # SLL2
    ("links", "www.pinterest.com", "tls", "192.0.2.11", "pinterest", False),  # 0x9100 QinQ
    ("links", "www.threads.net", "dns", "2001:db8::10", "threads", False),  # PPPoE, IPv6
    ("fragments", "www.tiktok.com", "dns", "192.0.2.10", "tiktok", False),  # answer, 4 pieces
    ("fragments", "www.youtube.com", "tls", "192.0.2.11", "youtube", False),  # reversed
    ("fragments", "www.instagram.com", "quic", "2001:db8::10", "instagram", False),  # IPv6
    ("fragments", "www.reddit.com", "tls", "2001:db8::10", "reddit", False),  # 6in4 outside
    ("tcp_order", "www.youtube.com", "tls", "192.0.2.10", "youtube", False),
    ("cname", "video.example.net", "ip", "192.0.2.10", "tiktok", False),
    ("stun", "signal.org", "stun", "192.0.2.10", "signal", False),
    ("stun", "telegram.org", "stun", "192.0.2.10", "telegram", False),  # the relay's answer
    ("stun", "turner.facebook", "stun", "192.0.2.11", "messenger", False),
    ("stun", "viber.com", "stun", "192.0.2.10", "viber", False),  # TURN over TCP
]


@pytest.mark.parametrize(("name", "host", "protocol", "client", "platform", "ech"), EXPECTED)
def test_fixture_contents(
    name: str,
    host: str,
    protocol: str,
    client: str,
    platform: str | None,
    ech: bool,
    classifier: Classifier,
) -> None:
    hits = [
        o
        for o in observe_pcap(capture(name), classifier)
        if (o.hostname, o.protocol, o.client) == (host, protocol, client)
    ]
    assert len(hits) == 1
    assert (hits[0].platform, hits[0].ech) == (platform, ech)


def test_fixture_counters() -> None:
    def counters(name: str) -> dict[str, object]:
        s = Sensor()
        list(observe_pcap(capture(name), sensor=s))
        return s.counters.as_dict()

    assert counters("dns")["malformed"] == {"dns_pointer_loop": 1}
    assert counters("dns")["duplicates"] == 2  # A and AAAA from one socket, and the answer
    assert counters("tls")["malformed"] == {"tls_bad_sni": 1}
    assert counters("quic")["malformed"] == {"quic_decrypt_failed": 1}
    assert counters("rawip")["skipped"] == {"ip_fragment": 1}
    assert counters("cooked")["skipped"] == {"not_ip": 1}
    tunnels = counters("tunnels")
    assert tunnels["tunnels"] == {"4in4": 1, "4in6": 1, "6in4": 1, "6in6": 1, "erspan": 1,
                                  "gre": 3, "pptp": 1, "vxlan": 1}  # fmt: skip
    assert tunnels["malformed"] == {"encap_too_deep": 1}
    assert tunnels["skipped"] == {"tunnel_unsupported": 1}
    frags = counters("fragments")
    assert frags["reassembly"] == {"ipv4": 3, "ipv6": 1, "expired": 1}
    assert frags["malformed"] == {"ip_fragment_overlap": 1, "ip_fragment_refused": 1}
    assert counters("tcp_order")["malformed"] == {"tcp_overlap_conflict": 1}
    assert counters("stun")["protocols"] == {"stun": 5}


def test_fixture_via(classifier: Classifier) -> None:
    cls = classifier
    got = {(o.protocol, o.hostname, o.via) for o in observe_pcap(capture("cname"), cls)}
    assert ("dns", "video.example.net", "v16-webapp.tiktokcdn.com") in got
    assert ("dns", "video.example.net", None) in got  # the query itself: no platform
    assert ("dns", "www.instagram.com", None) in got  # its own platform wins
    got = {(o.hostname, o.via) for o in observe_pcap(capture("stun"), cls)}
    assert ("turner.facebook", "messenger.com") in got and ("signal.org", None) in got


def test_pcapng_and_linktypes() -> None:
    assert {f.linktype for f in read_frames(DATA / "mixed.pcapng")} == {1}
    assert {f.linktype for f in read_frames(DATA / "cooked.pcap")} == {113}
    assert {f.linktype for f in read_frames(DATA / "rawip.pcap")} == {101}
    times = [f.time for f in read_frames(DATA / "mixed.pcapng")]
    assert times == pytest.approx([fx.T0, fx.T0 + 0.001, fx.T0 + 0.002], abs=1e-6)


def test_nanosecond_pcap(tmp_path: Path) -> None:
    path = tmp_path / "nano.pcap"
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
        src="192.0.2.1", dst="198.51.100.1"
    )
    frame = frame / UDP(sport=1, dport=53) / Raw(synth.dns_query([("nano.example", 1)]))
    with PcapWriter(str(path), nano=True) as w:
        w.write_header(None)
        w.write_packet(bytes(frame), sec=1714550400, usec=123456789)
    (obs,) = observe_pcap(path)
    assert obs.hostname == "nano.example"
    assert output.iso_time(obs.time) == "2024-05-01T08:00:00.123457Z"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot open"),
        (b"", "not a pcap or pcapng file"),
        (b"hello, this is text and not a capture\n", "not a pcap or pcapng file"),
    ],
)
def test_bad_capture_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.pcap"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as e:
        read_frames(path)
    assert str(path) in str(e.value)


def test_truncated_capture_file_reads_what_is_there(tmp_path: Path) -> None:
    data = capture("dns").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-10])  # the last record is cut short
    frames = list(read_frames(path))
    assert len(frames) == 7 and frames[:6] == list(read_frames(capture("dns")))[:6]
    sensor = Sensor()
    hosts = [o.hostname for o in sensor.run(frames)]
    assert "www.example.org" not in hosts and len(hosts) == 4  # the IPv6 query was in the cut
    assert sensor.counters.malformed["ip_truncated"] == 1


def test_bpf_filter_names_the_parsed_ports() -> None:
    for clause in ("udp port 53", "tcp port 53", "tcp port 443", "tcp port 853", "udp port 443"):
        assert clause in BPF_FILTER


@pytest.mark.parametrize("name", ["dns", "vlan", "cooked", "rawip"])
def test_live_packet_handler_on_offline_sniff(name: str, classifier: Classifier) -> None:
    """The live adapter's callback, fed by scapy's sniff over a file (nothing captured live)."""
    from scapy.sendrecv import sniff

    sensor = Sensor(classifier)
    got: list[str] = []
    sniff(
        offline=str(capture(name)),
        prn=packet_handler(sensor, lambda o: got.append(output.tsv_line(o))),
        store=False,
    )
    assert "".join(line + "\n" for line in got) == (DATA / f"{name}.out").read_text()
