"""DNS question parser: names, compression, loop protection, TCP framing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sensor import dns, synth
from monitor.sensor.dns import DnsMessage, Question
from monitor.sensor.model import Malformed

HEADER_1Q = bytes.fromhex("abcd01000001000000000000")  # id abcd, RD, one question


def q(wire_name: bytes, qtype: int = 1) -> bytes:
    return HEADER_1Q + wire_name + qtype.to_bytes(2, "big") + b"\x00\x01"


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        ([("www.example.com", 1)], ("www.example.com",)),
        ([("WWW.Example.COM.", 28)], ("www.example.com",)),
        (
            [("a.b.example.org", 1), ("b.example.org", 65), ("example.org", 28)],
            ("a.b.example.org", "b.example.org", "example.org"),
        ),
        ([("m.example.net", 1), ("www.example.net", 1)], ("m.example.net", "www.example.net")),
    ],
)
def test_questions_with_and_without_compression(
    questions: list[tuple[str, int]], expected: tuple[str, ...]
) -> None:
    plain = synth.dns_query(questions, compress=False)
    packed = synth.dns_query(questions, compress=True)
    if len(questions) > 1:
        assert len(packed) < len(plain) and b"\xc0" in packed  # really uses pointers
    for wire in (plain, packed):
        msg = dns.parse_dns(wire)
        assert isinstance(msg, DnsMessage)
        assert tuple(x.name for x in msg.questions) == expected
        assert tuple(x.qtype for x in msg.questions) == tuple(t for _, t in questions)
        assert all(x.qclass == 1 for x in msg.questions)
        assert (msg.id, msg.response, msg.opcode) == (0x1234, False, 0)


def test_response_flag_and_opcode() -> None:
    msg = dns.parse_dns(synth.dns_query([("a.example", 1)], response=True))
    assert isinstance(msg, DnsMessage) and msg.response
    update = bytearray(synth.dns_query([("zone.example", 6)]))
    update[2] = 5 << 3  # opcode UPDATE
    got = dns.parse_dns(bytes(update))
    assert isinstance(got, DnsMessage) and got.opcode == 5


@pytest.mark.parametrize(
    ("wire", "name"),
    [
        pytest.param(b"\x00", ".", id="root"),
        pytest.param(b"\x03a.b\x07example\x00", "a\\046b.example", id="dot-inside-label"),
        pytest.param(b"\x03a b\x07example\x00", "a\\032b.example", id="space"),
        pytest.param(b"\x04caf\xe9\x07example\x00", "caf\\233.example", id="latin1-byte"),
        pytest.param(b"\x03A\\B\x00", "a\\092b", id="backslash"),
        pytest.param(b"\x3f" + b"x" * 63 + b"\x00", "x" * 63, id="63-byte-label"),
    ],
)
def test_names_are_printable(wire: bytes, name: str) -> None:
    msg = dns.parse_dns(q(wire))
    assert isinstance(msg, DnsMessage) and msg.questions == (Question(name, 1, 1),)


def test_read_name_returns_offset_after_the_pointer() -> None:
    wire = synth.dns_query([("www.example.com", 1), ("mail.example.com", 1)])
    first = dns.read_name(wire, 12)
    assert first == ("www.example.com", 12 + 17)
    second_at = 12 + 17 + 4
    assert dns.read_name(wire, second_at) == ("mail.example.com", second_at + 5 + 2)


LONG_NAME = b"".join(b"\x3f" + b"y" * 63 for _ in range(4)) + b"\x00"  # 257 octets


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        pytest.param(b"\x12\x34", dns.TRUNCATED, id="short-header"),
        pytest.param(HEADER_1Q, dns.TRUNCATED, id="question-missing"),
        pytest.param(HEADER_1Q + b"\x03www", dns.TRUNCATED, id="name-cut"),
        pytest.param(HEADER_1Q + b"\x03www\x00\x00", dns.TRUNCATED, id="qtype-cut"),
        pytest.param(q(b"\xc0\x0c"), dns.POINTER_LOOP, id="pointer-to-itself"),
        pytest.param(q(b"\x01a\xc0\x0c"), dns.POINTER_LOOP, id="pointer-back-into-own-labels"),
        pytest.param(q(b"\xc0\x20"), dns.POINTER_LOOP, id="forward-pointer"),
        pytest.param(HEADER_1Q + b"\xc0", dns.TRUNCATED, id="pointer-cut"),
        pytest.param(q(b"\x41abc\x00"), dns.BAD_LABEL, id="extended-label-type"),
        pytest.param(q(LONG_NAME), dns.NAME_TOO_LONG, id="name-over-255"),
        pytest.param(
            bytes.fromhex("abcd01000011000000000000"), dns.TOO_MANY_QUESTIONS, id="17-questions"
        ),
    ],
)
def test_malformed(wire: bytes, expected: Malformed) -> None:
    assert dns.parse_dns(wire) == expected


def test_two_pointers_chasing_each_other() -> None:
    # question 1 ends in a pointer to question 2's name, which points back to question 1
    wire = bytes.fromhex("abcd01000002000000000000")
    wire += b"\x01a\xc0\x14" + b"\x00\x01\x00\x01"  # offset 12: "a" -> 20
    wire += b"\x01b\xc0\x0c" + b"\x00\x01\x00\x01"  # offset 20: "b" -> 12
    assert dns.parse_dns(wire) == dns.POINTER_LOOP


def test_pointer_chain_backwards_is_followed() -> None:
    wire = synth.dns_query([("example.com", 1), ("b.example.com", 1), ("a.b.example.com", 1)])
    msg = dns.parse_dns(wire)
    assert isinstance(msg, DnsMessage)
    assert [x.name for x in msg.questions] == ["example.com", "b.example.com", "a.b.example.com"]


def test_tcp_framing() -> None:
    one = synth.dns_query([("one.example", 1)], msg_id=1)
    two = synth.dns_query([("two.example", 28)], msg_id=2)
    got = dns.parse_dns_tcp(synth.dns_tcp(one) + synth.dns_tcp(two))
    assert [m.questions[0].name for m in got if isinstance(m, DnsMessage)] == [
        "one.example",
        "two.example",
    ]
    cut = dns.parse_dns_tcp(synth.dns_tcp(one) + synth.dns_tcp(two)[:10])
    assert isinstance(cut[0], DnsMessage) and cut[1:] == [dns.TRUNCATED]
    assert dns.parse_dns_tcp(b"\x00") == [dns.TRUNCATED]
    assert dns.parse_dns_tcp(b"") == []


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(dns.parse_dns(data), DnsMessage | Malformed)
    assert all(isinstance(m, DnsMessage | Malformed) for m in dns.parse_dns_tcp(data))


VALID = synth.dns_query([("a.b.example.com", 1), ("b.example.com", 28), ("c.example.com", 65)])


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=4), st.integers(0, len(VALID) - 1))
def test_fuzz_mutated_queries_never_raise(patch: bytes, at: int) -> None:
    data = VALID[:at] + patch + VALID[at + len(patch) :]
    got = dns.parse_dns(data)
    assert isinstance(got, DnsMessage | Malformed)
    if isinstance(got, DnsMessage):
        assert all(len(x.name) <= 255 * 4 for x in got.questions)


def test_real_shapes_edns0_query_and_answer_with_cname_chain() -> None:
    """Built by scapy as a resolver sends them: an EDNS0 OPT record in the additional section
    of the query; an answer with a CNAME chain compressed against the question."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRROPT

    query = bytes(
        DNS(id=7, rd=1, qd=DNSQR(qname="www.tiktok.com", qtype="HTTPS"),
            ar=DNSRROPT(rclass=1232))
    )  # fmt: skip
    answer = bytes(
        DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.tiktok.com"),
            an=[DNSRR(rrname="www.tiktok.com", type="CNAME",
                      rdata="www.tiktok.com.edgesuite.net"),
                DNSRR(rrname="www.tiktok.com.edgesuite.net", type="A", rdata="192.0.2.1")],
            ar=DNSRROPT(rclass=1232))
    )  # fmt: skip
    q_msg, a_msg = dns.parse_dns(query), dns.parse_dns(answer)
    assert isinstance(q_msg, DnsMessage) and isinstance(a_msg, DnsMessage)
    assert q_msg.questions == (Question("www.tiktok.com", 65, 1),) and not q_msg.response
    assert a_msg.questions == (Question("www.tiktok.com", 1, 1),) and a_msg.response
    assert a_msg.addresses == (bytes([192, 0, 2, 1]),)


def test_dot_inside_a_label_is_escaped() -> None:
    msg = dns.parse_dns(q(b"\x03a.b\x07example\x00"))
    assert isinstance(msg, DnsMessage) and msg.questions[0].name == "a\\046b.example"


def test_answer_addresses() -> None:
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    answer = bytes(
        DNS(id=9, qr=1, qd=DNSQR(qname="g.whatsapp.net"),
            an=[DNSRR(rrname="g.whatsapp.net", type="CNAME", rdata="mmx.whatsapp.net"),
                DNSRR(rrname="mmx.whatsapp.net", type="A", rdata="192.0.2.50"),
                DNSRR(rrname="mmx.whatsapp.net", type="AAAA", rdata="2001:db8::50"),
                DNSRR(rrname="mmx.whatsapp.net", type="TXT", rdata="not an address")])
    )  # fmt: skip
    msg = dns.parse_dns(answer)
    assert isinstance(msg, DnsMessage)
    assert msg.addresses == (bytes([192, 0, 2, 50]), bytes.fromhex("20010db8" + "0" * 22 + "50"))
    # a cut answer gives what can be read; a query gives none
    cut = dns.parse_dns(answer[: answer.index(bytes([192, 0, 2, 50])) + 4 + 8])
    assert isinstance(cut, DnsMessage) and cut.addresses == (bytes([192, 0, 2, 50]),)
    query = dns.parse_dns(bytes(DNS(id=9, qd=DNSQR(qname="g.whatsapp.net"))))
    assert isinstance(query, DnsMessage) and query.addresses == ()


def test_cname_chain_from_the_question() -> None:
    """scapy compresses the chain's names against each other: pointers inside record data."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    answer = bytes(
        DNS(id=3, qr=1, qd=DNSQR(qname="video.example.net"),
            an=[DNSRR(rrname="video.example.net", type="CNAME", rdata="edge.example.org"),
                DNSRR(rrname="edge.example.org", type="CNAME", rdata="v16.tiktokcdn.com"),
                DNSRR(rrname="v16.tiktokcdn.com", type="A", rdata="192.0.2.60"),
                # an alias of another name, not on the question's chain
                DNSRR(rrname="other.example", type="CNAME", rdata="x.example")])
    )  # fmt: skip
    msg = dns.parse_dns(answer)
    assert isinstance(msg, DnsMessage)
    assert msg.cnames == ("edge.example.org", "v16.tiktokcdn.com")
    assert msg.addresses == (bytes([192, 0, 2, 60]),)
    built = dns.parse_dns(synth.dns_answer("A.Example", 1, cnames=["b.example", "C.example"]))
    assert isinstance(built, DnsMessage) and built.cnames == ("b.example", "c.example")


@pytest.mark.parametrize(
    ("cnames", "expected"),
    [
        pytest.param(["b.example", "a.example"], ("b.example", "a.example"), id="loop"),
        pytest.param(["a.example"], ("a.example",), id="alias-of-itself"),
        pytest.param([f"n{i}.example" for i in range(30)],
                     tuple(f"n{i}.example" for i in range(dns.MAX_CHAIN)), id="bounded"),
    ],
)  # fmt: skip
def test_cname_loops_and_long_chains_end(cnames: list[str], expected: tuple[str, ...]) -> None:
    msg = dns.parse_dns(synth.dns_answer("a.example", 1, cnames=cnames))
    assert isinstance(msg, DnsMessage) and msg.cnames == expected


def test_cname_rdata_that_overruns_its_record_is_ignored() -> None:
    data = bytearray(synth.dns_answer("a.example", 1, cnames=["b.example"]))
    assert data[-13:-11] == (11).to_bytes(2, "big")  # RDLENGTH of the name b.example
    data[-13:-11] = (2).to_bytes(2, "big")  # RDLENGTH 2, but the name takes 11 bytes
    data += bytes(9)  # the record ends inside the name: the rest is other bytes
    msg = dns.parse_dns(bytes(data))
    assert isinstance(msg, DnsMessage) and msg.cnames == ()


def test_queries_have_no_chain() -> None:
    msg = dns.parse_dns(synth.dns_query([("a.example", 1)]))
    assert isinstance(msg, DnsMessage) and msg.cnames == ()
