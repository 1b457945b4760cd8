"""IPv4 and IPv6 fragment reassembly: order, duplicates, overlaps, bounds, and in the pipeline."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, fragment6
from scapy.packet import Raw

from monitor.platforms.classify import Classifier
from monitor.sensor import decode as dec
from monitor.sensor import ipfrag, synth
from monitor.sensor.decode import Fragment, Segment
from monitor.sensor.ipfrag import FragmentReassembler
from monitor.sensor.pipeline import Sensor

SRC, DST = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])


def frag(offset: int, data: bytes, more: bool, ident: int = 1, version: int = 4) -> Fragment:
    return Fragment(version, SRC, DST, 17, ident, offset, more, data)


def pieces(payload: bytes, size: int, ident: int = 1) -> list[Fragment]:
    return [
        frag(i, payload[i : i + size], i + size < len(payload), ident)
        for i in range(0, len(payload), size)
    ]


PAYLOAD = bytes(range(256)) * 5  # 1280 bytes


@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_reassembles_in_any_order(order: str) -> None:
    parts = pieces(PAYLOAD, 200)
    if order == "reversed":
        parts.reverse()
    elif order == "shuffled":
        random.Random(5).shuffle(parts)
    r = FragmentReassembler()
    results = [r.feed(p, 1.0) for p in parts]
    assert all(x is None for x in results[:-1])
    last = results[-1]
    assert isinstance(last, tuple) and last[1] == PAYLOAD and last[0].offset == 0
    assert len(r) == 0 and r.buffered_bytes == 0


def test_consistent_duplicates_and_overlaps_are_accepted() -> None:
    r = FragmentReassembler()
    assert r.feed(frag(0, PAYLOAD[:400], True), 1.0) is None
    assert r.feed(frag(0, PAYLOAD[:400], True), 1.0) is None  # a duplicate
    assert r.feed(frag(200, PAYLOAD[200:600], True), 1.0) is None  # overlaps, same bytes
    got = r.feed(frag(600, PAYLOAD[600:], False), 1.0)
    assert isinstance(got, tuple) and got[1] == PAYLOAD


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(frag(0, b"B" * 16, True), id="same-offset"),
        pytest.param(frag(8, b"B" * 8 + b"A" * 8, True), id="partial"),
        pytest.param(frag(8, b"B" * 8, False), id="last-inside"),
    ],
)
def test_inconsistent_overlap_refuses_the_datagram(second: Fragment) -> None:
    r = FragmentReassembler()
    assert r.feed(frag(0, b"A" * 16, True), 1.0) is None
    assert r.feed(second, 1.0) is ipfrag.OVERLAP
    assert len(r) == 0 and r.buffered_bytes == 0
    # its other fragments are refused until the timeout, then it may start again
    assert r.feed(frag(16, b"A" * 8, False), 2.0) is ipfrag.REFUSED
    assert r.feed(frag(0, b"A" * 16, True), 40.0) is None


@pytest.mark.parametrize(
    ("fragments", "why"),
    [
        pytest.param([frag(0, b"x" * 12, True)], ipfrag.BAD_LENGTH, id="not-8-aligned"),
        pytest.param([frag(0, b"", True)], ipfrag.BAD_LENGTH, id="empty-not-last"),
        pytest.param([frag(65528, b"x" * 16, False)], ipfrag.BAD_LENGTH, id="past-64KiB"),
        pytest.param(
            [frag(16, b"x" * 8, False), frag(8, b"x" * 8, False)], ipfrag.BAD_LENGTH,
            id="two-ends",
        ),
        pytest.param(
            [frag(16, b"x" * 8, False), frag(16, b"x" * 16, True)], ipfrag.BAD_LENGTH,
            id="past-the-end",
        ),
    ],
)  # fmt: skip
def test_bad_fragments_are_refused(fragments: list[Fragment], why: object) -> None:
    r = FragmentReassembler()
    results = [r.feed(f, 1.0) for f in fragments]
    assert results[-1] is why and len(r) == 0


def test_too_many_fragments() -> None:
    r = FragmentReassembler(max_fragments=4)
    parts = pieces(PAYLOAD[:80], 8)
    results = [r.feed(p, 1.0) for p in parts[:5]]
    assert results[:4] == [None] * 4 and results[4] is ipfrag.TOO_MANY


def test_timeout_expires_unfinished_datagrams() -> None:
    r = FragmentReassembler(timeout=30.0)
    r.feed(frag(0, b"x" * 8, True, ident=1), 0.0)
    r.feed(frag(0, b"x" * 8, True, ident=2), 20.0)
    r.feed(frag(0, b"x" * 8, True, ident=3), 31.0)  # the first is now 31 s old
    assert r.expired == 1 and len(r) == 2
    # the rest of an expired datagram starts nothing that completes
    assert r.feed(frag(8, b"x" * 8, False, ident=1), 31.5) is None


def test_memory_is_bounded() -> None:
    r = FragmentReassembler(max_datagrams=3, max_total_bytes=100)
    for i in range(5):
        r.feed(frag(0, b"x" * 16, True, ident=i), 1.0)
    assert len(r) == 3 and r.evicted == 2
    r.feed(frag(0, b"y" * 96, True, ident=99), 1.0)
    assert r.buffered_bytes <= 100


def test_ipv6_key_ignores_next_header_and_keeps_the_first() -> None:
    r = FragmentReassembler()
    first = Fragment(6, SRC * 4, DST * 4, 17, 9, 0, True, b"a" * 8)
    last = Fragment(6, SRC * 4, DST * 4, 59, 9, 8, False, b"b" * 8)  # next header differs
    assert r.feed(last, 1.0) is None
    got = r.feed(first, 1.0)
    assert isinstance(got, tuple) and got == (first, b"a" * 8 + b"b" * 8)


@settings(max_examples=200)
@given(
    st.binary(min_size=1, max_size=600),
    st.integers(1, 20).map(lambda n: n * 8),
    st.randoms(use_true_random=False),
    st.integers(0, 3),
)
def test_any_order_with_duplicates_gives_the_payload(
    payload: bytes, size: int, rnd: random.Random, dups: int
) -> None:
    parts = pieces(payload, size)
    stream = parts + [rnd.choice(parts) for _ in range(dups)]
    rnd.shuffle(stream)
    r = FragmentReassembler()
    done = [x for x in (r.feed(p, 1.0) for p in stream) if x is not None]
    assert done and isinstance(done[0], tuple) and done[0][1] == payload


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(0, 9000), st.booleans(), st.binary(max_size=64),
            st.floats(0, 100),
        ),
        max_size=40,
    )
)  # fmt: skip
def test_fuzz_never_raises_and_stays_bounded(
    feeds: list[tuple[int, int, bool, bytes, float]],
) -> None:
    r = FragmentReassembler(max_datagrams=2, max_total_bytes=200, max_fragments=8)
    for ident, offset, more, data, now in feeds:
        got = r.feed(frag(offset, data, more, ident), now)
        assert got is None or isinstance(got, tuple | ipfrag.Malformed)
        assert len(r) <= 2 and r.buffered_bytes <= 200


# --- in the decoder and the pipeline ----------------------------------------------------------


def test_ipv6_extension_header_after_the_fragment_header() -> None:
    packet = (
        IPv6(src="2001:db8::10", dst="2001:db8::53")
        / IPv6ExtHdrFragment(id=4)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=1, dport=53)
        / Raw(b"q" * 300)
    )
    parts = fragment6(packet, 200)
    assert len(parts) >= 2
    r = FragmentReassembler()
    got = [dec.decode(101, bytes(p)) for p in parts]
    assert all(isinstance(g, Fragment) for g in got)
    whole = [r.feed(g, 1.0) for g in got if isinstance(g, Fragment)][-1]
    assert isinstance(whole, tuple)
    seg = dec.decode_reassembled(*whole)
    assert isinstance(seg, Segment) and seg.dport == 53 and seg.payload == b"q" * 300


def test_a_fragment_header_inside_a_reassembled_payload_is_refused() -> None:
    first = Fragment(6, SRC * 4, DST * 4, 44, 1, 0, False, bytes([17, 0, 0, 1]) + bytes(20))
    assert dec.decode_reassembled(first, first.payload) == dec.IP_BAD_HEADER


def udp_frames(payload: bytes, size: int) -> list[bytes]:
    return [
        bytes(p)
        for p in fragment(
            IP(src="198.51.100.53", dst="192.0.2.10", id=77) / UDP(sport=53, dport=40000)
            / Raw(payload),
            size,
        )
    ]  # fmt: skip


def test_a_dns_answer_in_fragments_is_read(classifier: Classifier) -> None:
    answer = synth.dns_answer(
        "www.tiktok.com", 1, addresses=[f"198.51.100.{i}" for i in range(1, 80)]
    )
    s = Sensor(classifier)
    frames = udp_frames(answer, 800)
    assert len(frames) >= 3
    out = [o for f in reversed(frames) for o in s.feed(101, f, 1.0)]
    assert [(o.hostname, o.platform, o.client) for o in out] == [
        ("www.tiktok.com", "tiktok", "192.0.2.10")
    ]
    assert s.counters.reassembly == {"ipv4": 1}
    assert s.counters.skipped["ip_fragment"] == len(frames) - 1


def test_fragments_inside_and_outside_a_tunnel(classifier: Classifier) -> None:
    hello = synth.tls_records(synth.client_hello("www.reddit.com", pad_to=1300))
    inner = synth.ipv6("2001:db8::10", "2001:db8:1::443", 6, synth.tcp(50000, 443, hello))
    # outside: the 6in4 packet is fragmented on the IPv4 path
    outer = synth.ipv4("203.0.113.1", "203.0.113.2", 41, inner, ident=5)
    s = Sensor(classifier)
    out = [o for f in synth.fragment_ipv4(outer, 400) for o in s.feed(101, f, 1.0)]
    assert [(o.hostname, o.platform) for o in out] == [("www.reddit.com", "reddit")]
    assert s.counters.tunnels == {"6in4": 1} and s.counters.reassembly == {"ipv4": 1}
    # inside: the IPv6 packet was fragmented before it entered the tunnel
    s = Sensor(classifier)
    out = [
        o
        for f in synth.fragment_ipv6(inner, 512, ident=6)
        for o in s.feed(101, synth.ipv4("203.0.113.1", "203.0.113.2", 41, f), 1.0)
    ]
    assert [(o.hostname, o.platform) for o in out] == [("www.reddit.com", "reddit")]
    assert s.counters.tunnels == {"6in4": 1} and s.counters.reassembly == {"ipv6": 1}


def test_overlap_in_the_pipeline_is_counted() -> None:
    s = Sensor()
    a = synth.ipv4("192.0.2.10", "198.51.100.53", 17, b"A" * 16, ident=3, more=True)
    b = synth.ipv4("192.0.2.10", "198.51.100.53", 17, b"B" * 16, ident=3, more=True)
    s.feed(101, a, 1.0)
    s.feed(101, b, 1.0)
    assert s.counters.malformed == {"ip_fragment_overlap": 1}
    assert s.counters.skipped == {"ip_fragment": 1}
