"""TLS ClientHello parser and the TCP reassembler."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sensor import synth, tls
from monitor.sensor.model import Malformed
from monitor.sensor.tls import ClientHello, TlsReassembler


def record(sni: str | None, **kw: object) -> bytes:
    return synth.tls_records(synth.client_hello(sni, **kw))  # type: ignore[arg-type]


def minimal_hello(extensions: bytes | None) -> bytes:
    """A ClientHello body built by hand (no session id, one suite, null compression)."""
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    if extensions is not None:
        body += len(extensions).to_bytes(2, "big") + extensions
    return b"\x01" + len(body).to_bytes(3, "big") + body


def ext(etype: int, body: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def sni_ext(*entries: tuple[int, bytes], list_len: int | None = None) -> bytes:
    items = b"".join(bytes([k]) + len(n).to_bytes(2, "big") + n for k, n in entries)
    n = len(items) if list_len is None else list_len
    return ext(0, n.to_bytes(2, "big") + items)


@pytest.mark.parametrize(
    ("sni", "kw", "expected"),
    [
        ("www.example.com", {}, ClientHello("www.example.com")),
        ("WWW.Example.COM", {}, ClientHello("www.example.com")),
        ("a.example", {"alpn": ["h2", "http/1.1"]}, ClientHello("a.example", ("h2", "http/1.1"))),
        ("public.example.net", {"ech": True}, ClientHello("public.example.net", (), True)),
        ("big.example.org", {"pad_to": 5000}, ClientHello("big.example.org")),
        (None, {"alpn": ["h2"]}, ClientHello(None, ("h2",))),
    ],
)
def test_parse_record(sni: str | None, kw: dict[str, object], expected: ClientHello) -> None:
    assert tls.parse_record(record(sni, **kw)) == expected
    assert tls.parse_handshake(synth.client_hello(sni, **kw)) == expected  # type: ignore[arg-type]


def test_client_hello_over_several_records() -> None:
    msg = synth.client_hello("records.example.com", pad_to=600)
    data = synth.tls_records(msg, max_fragment=100)
    assert data.count(b"\x16\x03\x01") >= 6
    assert tls.parse_record(data) == ClientHello("records.example.com")


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        pytest.param(minimal_hello(None), ClientHello(None), id="no-extensions-block"),
        pytest.param(minimal_hello(b""), ClientHello(None), id="empty-extensions"),
        pytest.param(
            minimal_hello(sni_ext((1, b"other"), (0, b"second.example"))),
            ClientHello("second.example"),
            id="first-host-name-entry-wins",
        ),
        pytest.param(
            minimal_hello(sni_ext((0, b"bad\nname\\x"))),
            ClientHello("bad\\010name\\092x"),
            id="control-bytes-escaped",
        ),
        pytest.param(minimal_hello(sni_ext((0, b""))), tls.BAD_SNI, id="empty-host-name"),
        pytest.param(
            minimal_hello(sni_ext((0, b"a.example"), list_len=99)),
            tls.BAD_SNI,
            id="sni-list-length-lies",
        ),
        pytest.param(minimal_hello(sni_ext((1, b"x"))), tls.BAD_SNI, id="no-host-name-entry"),
        pytest.param(minimal_hello(ext(16, b"\x00\x03\x00h2")), tls.BAD_ALPN, id="alpn-empty-name"),
        pytest.param(
            minimal_hello(ext(16, b"\x00\x04\x05h2")), tls.BAD_ALPN, id="alpn-name-too-long"
        ),
        pytest.param(
            minimal_hello(b"\x00\x00\x00\x10abc"), tls.BAD_EXTENSION, id="extension-overruns"
        ),
        pytest.param(minimal_hello(b"\x00\x00\x00"), tls.BAD_EXTENSION, id="trailing-bytes"),
        pytest.param(minimal_hello(None)[:20], tls.TRUNCATED, id="cut-message"),
        pytest.param(b"\x01\x00\x00\x05" + b"\x03\x03abc", tls.TRUNCATED, id="body-too-short"),
        pytest.param(
            b"\x01\x00\x00\x23\x03\x03" + bytes(32) + b"\x21", tls.BAD_LENGTH, id="session-id-33"
        ),
        pytest.param(b"\x01\x01\x00\x01", tls.TOO_LARGE, id="65537-byte-message"),
        pytest.param(b"\x02\x00\x00\x00", None, id="server-hello"),
        pytest.param(b"\x01", tls.TRUNCATED, id="one-byte"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_parse_handshake(msg: bytes, expected: ClientHello | Malformed | None) -> None:
    assert tls.parse_handshake(msg) == expected


def test_extensions_block_length_mismatch() -> None:
    msg = bytearray(minimal_hello(ext(0xAAAA, b"xyz")))
    msg[-9:-7] = b"\x00\x05"  # extensions length says 5, 7 bytes follow
    assert tls.parse_handshake(bytes(msg)) == tls.BAD_LENGTH


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", None, id="http"),
        pytest.param(b"\x17\x03\x03\x00\x05hello", None, id="application-data"),
        pytest.param(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", None, id="server-hello"),
        pytest.param(b"\x16\x05\x01\x00\x04\x01\x00\x00\x00", None, id="not-tls-version"),
        pytest.param(b"\x16\x03\x01\x00\x00\x01", tls.BAD_LENGTH, id="empty-record"),
        pytest.param(b"\x16\x03\x01\x50\x00\x01", tls.BAD_LENGTH, id="record-over-limit"),
        pytest.param(record("cut.example")[:60], tls.TRUNCATED, id="cut-record"),
        pytest.param(b"\x16\x03", tls.TRUNCATED, id="cut-header"),
        pytest.param(
            synth.tls_records(synth.client_hello("x.example"), max_fragment=50)[:55]
            + b"\x17\x03\x03\x00\x01x",
            tls.BAD_RECORD,
            id="other-record-inside-hello",
        ),
    ],
)
def test_parse_record_rejects(data: bytes, expected: Malformed | None) -> None:
    assert tls.parse_record(data) == expected


def three_segments(sni: str) -> tuple[list[bytes], list[int]]:
    data = record(sni, alpn=["h2"], pad_to=1400)
    parts = synth.split(data, 3)
    seqs = [0xFFFFFF00]  # wraps around 2**32 inside the ClientHello
    for p in parts[:-1]:
        seqs.append((seqs[-1] + len(p)) & 0xFFFFFFFF)
    return parts, seqs


def test_reassemble_three_segments_in_order() -> None:
    parts, seqs = three_segments("split.example.com")
    r = TlsReassembler()
    assert r.feed("f", parts[0], seqs[0]) is None
    assert "f" in r and r.buffered_bytes == len(parts[0])
    assert r.feed("f", parts[1], seqs[1]) is None
    assert r.feed("f", parts[2], seqs[2]) == ClientHello("split.example.com", ("h2",))
    assert len(r) == 0 and r.buffered_bytes == 0


@pytest.mark.parametrize(
    "order",
    [
        pytest.param([0, 2, 1], id="out-of-order"),
        pytest.param([0, 1, 1, 2], id="retransmission"),
        pytest.param([0, 0, 2, 2, 1], id="duplicates-everywhere"),
    ],
)
def test_reassemble_with_sequence_numbers(order: list[int]) -> None:
    parts, seqs = three_segments("order.example.com")
    r = TlsReassembler()
    results = [r.feed("f", parts[i], seqs[i]) for i in order]
    assert results[-1] == ClientHello("order.example.com", ("h2",))
    assert all(x is None for x in results[:-1])


def test_reassemble_overlapping_retransmission() -> None:
    data = record("overlap.example.com", pad_to=900)
    r = TlsReassembler()
    assert r.feed("f", data[:300], 1000) is None
    # a resent segment that repeats the last 100 bytes and brings 200 new ones
    assert r.feed("f", data[200:500], 1200) is None
    assert r.feed("f", data[500:], 1500) == ClientHello("overlap.example.com")


def test_reassemble_without_sequence_numbers() -> None:
    parts, _ = three_segments("noseq.example.com")
    r = TlsReassembler()
    assert [r.feed(("k", 1), p) for p in parts][-1] == ClientHello("noseq.example.com", ("h2",))


def test_whole_hello_is_not_buffered() -> None:
    r = TlsReassembler()
    assert r.feed("f", record("whole.example.com")) == ClientHello("whole.example.com")
    assert len(r) == 0
    assert r.feed("g", b"\x17\x03\x03\x00\x01x") is None and len(r) == 0  # not a hello


def test_reassembler_evicts_least_recently_fed_flow() -> None:
    r = TlsReassembler(max_flows=2)
    a, b, c = (three_segments(f"{n}.example.com")[0] for n in "abc")
    r.feed("a", a[0])
    r.feed("b", b[0])
    r.feed("a", a[1])  # a is now the most recently fed
    r.feed("c", c[0])
    assert len(r) == 2 and r.evicted == 1 and "b" not in r
    assert r.feed("b", b[1]) is None  # the rest of an evicted hello starts nothing
    assert r.feed("a", a[2]) == ClientHello("a.example.com", ("h2",))


def test_reassembler_bounds_total_bytes() -> None:
    r = TlsReassembler(max_total_bytes=1000)
    for i in range(4):
        r.feed(i, three_segments(f"t{i}.example.com")[0][0])
    assert r.buffered_bytes <= 1000 and r.evicted >= 2


def test_reassembler_refuses_oversized_hello() -> None:
    r = TlsReassembler(max_flow_bytes=1000)
    data = record("huge.example.com", pad_to=3000)
    assert r.feed("f", data[:500]) == tls.TOO_LARGE  # the record header already says 3000
    assert len(r) == 0
    many = synth.tls_records(synth.client_hello("many.example.com", pad_to=3000), max_fragment=400)
    assert r.feed("g", many[:405]) is None
    assert r.feed("g", many[405:1200]) == tls.TOO_LARGE
    assert len(r) == 0 and r.buffered_bytes == 0


def test_reassembler_out_of_order_bound() -> None:
    r = TlsReassembler()
    data = record("gaps.example.com", pad_to=2000)
    r.feed("f", data[:100], 0)
    for i in range(20):  # segments beyond a gap: at most 16 are held
        r.feed("f", data[200 + i * 10 : 210 + i * 10], 200 + i * 10)
    assert r.buffered_bytes == 100 + 16 * 10


def test_forget_drops_the_buffer() -> None:
    r = TlsReassembler()
    r.feed("f", three_segments("bye.example.com")[0][0])
    r.forget("f")
    r.forget("never-seen")
    assert len(r) == 0 and r.buffered_bytes == 0


FUZZ = settings(max_examples=400, deadline=None)


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    for got in (tls.parse_record(data), tls.parse_handshake(data)):
        assert got is None or isinstance(got, ClientHello | Malformed)
    got = tls.parse_record(b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data)
    assert got is None or isinstance(got, ClientHello | Malformed)


VALID = record("fuzz.example.com", alpn=["h2", "http/1.1"], ech=True)


@FUZZ
@given(st.binary(min_size=1, max_size=8), st.integers(0, len(VALID) - 1), st.booleans())
def test_fuzz_mutated_hello_never_raises(patch: bytes, at: int, insert: bool) -> None:
    tail = VALID[at:] if insert else VALID[at + len(patch) :]
    data = VALID[:at] + patch + tail
    got = tls.parse_record(data)
    assert got is None or isinstance(got, ClientHello | Malformed)
    r = TlsReassembler(max_flows=4)
    for i in range(0, len(data), 97):
        got = r.feed("f", data[i : i + 97], i)
        assert got is None or isinstance(got, ClientHello | Malformed)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.binary(max_size=200), st.integers(0, 2**32 - 1)),
        max_size=30,
    )
)
def test_fuzz_reassembler_stays_bounded(feeds: list[tuple[int, bytes, int]]) -> None:
    r = TlsReassembler(max_flows=2, max_total_bytes=500, max_flow_bytes=400)
    for key, payload, seq in feeds:
        got = r.feed(key, b"\x16\x03\x01\x01\x00\x01" + payload if key == 0 else payload, seq)
        assert got is None or isinstance(got, ClientHello | Malformed)
        assert len(r) <= 2 and r.buffered_bytes <= 500


# --- out of order before the first segment, overlaps, bounds -------------------------------


@pytest.mark.parametrize(
    "order",
    [
        pytest.param([2, 1, 0], id="reversed"),
        pytest.param([1, 2, 0], id="first-last"),
        pytest.param([2, 2, 1, 0], id="duplicate-ahead"),
    ],
)
def test_segments_before_the_first_are_held_when_the_syn_was_seen(order: list[int]) -> None:
    parts, seqs = three_segments("early.example.com")
    r = TlsReassembler()
    r.syn("f", (seqs[0] - 1) & 0xFFFFFFFF)
    got = []
    for i in order:
        if "f" not in r and r.early("f", parts[i], seqs[i]):
            got.append(None)  # held, as the pipeline does
        else:
            got.append(r.feed("f", parts[i], seqs[i]))
    assert got[-1] == ClientHello("early.example.com", ("h2",))
    assert len(r) == 0 and r.buffered_bytes == 0 and not r.syns


def test_without_the_syn_a_later_segment_first_is_not_held() -> None:
    parts, seqs = three_segments("nosyn.example.com")
    r = TlsReassembler()
    assert not r.early("f", parts[1], seqs[1])
    assert r.feed("f", parts[1], seqs[1]) is None and "f" not in r


def test_first_segment_in_order_consumes_the_syn() -> None:
    parts, seqs = three_segments("inorder.example.com")
    r = TlsReassembler()
    r.syn("f", (seqs[0] - 1) & 0xFFFFFFFF)
    assert not r.early("f", parts[0], seqs[0])  # the first bytes: read now
    assert not r.syns
    assert r.feed("f", parts[0], seqs[0]) is None
    # a later flow that is not TLS: its held segments are dropped once its start is seen
    r.syn("g", 99)
    assert r.early("g", b"rest of a request", 200)
    assert r.feed("g", b"GET / HTTP/1.1\r\n" + bytes(84), 100) is None
    assert "g" not in r


def test_syns_are_bounded() -> None:
    r = TlsReassembler(max_flows=3)
    for i in range(10):
        r.syn(i, i)
    assert list(r.syns) == [7, 8, 9]
    r.forget(8)
    assert list(r.syns) == [7, 9]


@pytest.mark.parametrize("where", ["in-order", "ahead"])
def test_overlap_that_changes_bytes_refuses_the_flow(where: str) -> None:
    real = record("www.tiktok.com", pad_to=900)
    fake = record("www.tiktok.org", pad_to=900)
    r = TlsReassembler()
    if where == "in-order":
        assert r.feed("f", real[:300], 1000) is None
        assert r.feed("f", fake[:600], 1000) == tls.OVERLAP_CONFLICT
    else:
        assert r.feed("f", real[:50], 1000) is None
        assert r.feed("f", real[60:300], 1060) is None  # ahead of a gap, with the name
        assert r.feed("f", fake[60:400], 1060) == tls.OVERLAP_CONFLICT
    assert len(r) == 0 and r.buffered_bytes == 0


def test_overlap_that_repeats_bytes_is_accepted() -> None:
    data = record("repeat.example.com", pad_to=900)
    r = TlsReassembler()
    assert r.feed("f", data[:300], 1000) is None
    assert r.feed("f", data[400:700], 1400) is None
    assert r.feed("f", data[400:600], 1400) is None  # a shorter copy ahead: kept the longer
    assert r.feed("f", data[50:450], 1050) is None  # starts inside, repeats, adds 100
    assert r.feed("f", data[650:], 1650) == ClientHello("repeat.example.com")


def test_a_retransmission_reaching_before_the_stream_is_compared_where_it_can() -> None:
    data = record("before.example.com", pad_to=600)
    r = TlsReassembler()
    assert r.feed("f", data[:200], 1000) is None
    # starts 8 bytes before the first byte seen (the sensor's start): those are not compared
    assert r.feed("f", b"\xff" * 8 + data[:300], 992) is None
    assert r.feed("f", data[300:], 1300) == ClientHello("before.example.com")


def test_tiny_segments_do_not_reread_the_buffer_each_time() -> None:
    import time

    # one byte per segment, a record every 32 bytes: reading all records again after every
    # byte took 1.4 s here; reading on only when the next record can be complete, 0.1 s
    data = synth.tls_records(synth.client_hello("tiny.example.com", pad_to=8000), max_fragment=32)
    r = TlsReassembler()
    t = time.perf_counter()
    got = None
    for i in range(len(data)):
        got = r.feed("f", data[i : i + 1], 5000 + i)
    assert got == ClientHello("tiny.example.com")
    assert time.perf_counter() - t < 0.7
