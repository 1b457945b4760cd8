"""STUN/TURN: message parsing, the app a realm or software value names, and the pipeline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.platforms.classify import Classifier
from monitor.sensor import stun, synth
from monitor.sensor.model import Observation
from monitor.sensor.pipeline import Sensor
from monitor.sensor.stun import StunMessage, app_host, method_and_class, parse_stun

REALM, SOFTWARE, USERNAME = 0x0014, 0x8022, 0x0006


@pytest.mark.parametrize(
    ("msg_type", "method", "cls"),
    [
        (0x0001, 1, stun.REQUEST),  # Binding request
        (0x0101, 1, stun.SUCCESS),
        (0x0111, 1, stun.ERROR),
        (0x0003, 3, stun.REQUEST),  # Allocate
        (0x0113, 3, stun.ERROR),
        (0x0016, 6, stun.INDICATION),  # Send indication
        (0x0017, 7, stun.INDICATION),  # Data indication
        (0x0108, 8, stun.SUCCESS),  # CreatePermission answer
    ],
)
def test_method_and_class(msg_type: int, method: int, cls: int) -> None:
    assert method_and_class(msg_type) == (method, cls)


def test_realm_and_software() -> None:
    msg = synth.stun_message(
        0x0113, [(0x0009, b"\x00\x00\x04\x01Unauthorized"), (REALM, b"Signal.org"),
                 (SOFTWARE, b"relay 1.0")],
    )  # fmt: skip
    got = parse_stun(msg)
    assert got == StunMessage(0x0113, 3, stun.ERROR, False, "signal.org", "relay\\0321.0")
    assert got is not None and got.response


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(synth.stun_message(0x0001)[:19], id="short-header"),
        pytest.param(b"\x40" + synth.stun_message(0x0001)[1:], id="first-bits-set"),
        pytest.param(synth.stun_message(0x0001, classic=True), id="classic-not-allowed"),
        pytest.param(synth.stun_message(0x0001, [(REALM, b"a.example")])[:-4], id="cut"),
        pytest.param(synth.stun_message(0x0001) + b"\x00" * 4, id="bytes-after-message"),
        pytest.param(
            synth.stun_message(0x0801, [(0x4003, b"\x01")]) + bytes(28), id="whatsapp-trailer"
        ),
        # an attribute that claims more than the message holds
        pytest.param(
            synth.stun_message(0x0001, [(REALM, b"abcd")])[:22] + b"\x00\x40abcd", id="attr-long"
        ),
        # Microsoft's MS-TURN: attributes not padded to 4 bytes
        pytest.param(
            bytes.fromhex("000100112112a442") + bytes(12) + b"\x80\x22\x00\x05abcde"
            + b"\x00\x14\x00\x04abcd",
            id="unpadded-attributes",
        ),
    ],
)  # fmt: skip
def test_not_stun(data: bytes) -> None:
    assert parse_stun(data) is None


def test_whatsapp_last_attribute_unpadded_is_read() -> None:
    body = b"\x40\x00\x00\x66" + bytes(102)  # one 102-byte attribute, length not padded
    msg = b"\x00\x03" + len(body).to_bytes(2, "big") + synth.STUN_COOKIE + bytes(12) + body
    got = parse_stun(msg)
    assert got is not None and (got.method, got.realm) == (3, None)


def test_classic_stun_only_when_allowed_and_well_formed() -> None:
    msg = synth.stun_message(0x0101, [(0x0001, bytes(8)), (SOFTWARE, b"Vovida.org 0.96")],
                             classic=True)  # fmt: skip
    assert parse_stun(msg) is None
    got = parse_stun(msg, classic=True)
    assert got is not None and got.classic and got.software == "vovida.org\\0320.96"
    # an attribute RFC 3489 does not have, or a type it does not have: not classic STUN
    assert parse_stun(synth.stun_message(0x0101, [(0x0020, bytes(8))], classic=True),
                      classic=True) is None  # fmt: skip
    assert parse_stun(synth.stun_message(0x0003, classic=True), classic=True) is None


def test_tcp_stream_may_carry_more_messages() -> None:
    one = synth.stun_message(0x0003, [(REALM, b"viber.com")])
    assert parse_stun(one + one, stream=True) == parse_stun(one)
    assert parse_stun(one + one) is None  # over UDP a datagram is one message


def test_attribute_count_is_bounded() -> None:
    many = [(0x8028, bytes(4))] * (stun.MAX_ATTRIBUTES + 10) + [(REALM, b"late.example")]
    got = parse_stun(synth.stun_message(0x0001, many))
    assert got is not None and got.realm is None  # read no further than the bound


def test_over_long_realm_is_not_read() -> None:
    got = parse_stun(synth.stun_message(0x0003, [(REALM, b"x" * (stun.MAX_TEXT + 1))]))
    assert got is not None and got.realm is None


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("signal.org", "signal.org"),
        ("turner.facebook", "messenger.com"),
        ("telegram.org", "telegram.org"),
        ("viber.com", "viber.com"),
        ("telegram\\032desktop\\0324.8", "telegram.org"),  # escaped spaces separate words
        ("foo\\032signal", "signal.org"),
        ("none", None),
        ("signalling.example", None),  # whole words only
        ("turn.l.google.com", None),
        ("", None),
        (None, None),
    ],
)
def test_app_host(text: str | None, host: str | None) -> None:
    assert app_host(text) == host


@settings(max_examples=500)
@given(st.binary(max_size=120), st.booleans(), st.booleans())
def test_fuzz_random_bytes_never_raise(data: bytes, classic: bool, stream: bool) -> None:
    got = parse_stun(data, classic=classic, stream=stream)
    assert got is None or isinstance(got, StunMessage)
    got = parse_stun(synth.STUN_COOKIE.join([b"\x00\x01\x00\x10", data]), stream=stream)
    assert got is None or isinstance(got, StunMessage)


TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@settings(max_examples=300)
@given(st.integers(0, 0x3FFF), TEXT, st.one_of(st.none(), TEXT), st.binary(max_size=30))
def test_round_trip(msg_type: int, realm: str, software: str | None, other: bytes) -> None:
    attrs = [(USERNAME, other), (REALM, realm.encode())]
    if software is not None:
        attrs.append((SOFTWARE, software.encode()))
    data = synth.stun_message(msg_type, attrs)
    got = parse_stun(data)
    assert got is not None
    assert (got.msg_type, got.realm) == (msg_type, realm.lower().replace("\\", "\\092"))
    assert got.software == (None if software is None else software.lower().replace("\\", "\\092"))
    for n in range(len(data)):  # cut anywhere: not a message (never an exception)
        assert parse_stun(data[:n]) is None


# --- in the pipeline -----------------------------------------------------------------------


def udp(sport: int, dport: int, payload: bytes, *, back: bool = False) -> bytes:
    a, b = ("198.51.100.130", "192.0.2.10") if back else ("192.0.2.10", "198.51.100.130")
    return synth.ipv4(a, b, 17, synth.udp(sport, dport, payload))


def names(out: list[Observation]) -> list[tuple[str, str, str | None, str | None, str, int]]:
    return [(o.protocol, o.hostname, o.platform, o.via, o.client, o.server_port) for o in out]


def feed(s: Sensor, *frames: bytes) -> list[Observation]:
    return [o for f in frames for o in s.feed(101, f, 1.0)]


ALLOCATE = synth.stun_message(0x0003, [(USERNAME, b"u"), (REALM, b"signal.org")])


@pytest.mark.parametrize("port", [3478, 5349, 443, 19302, 40000])
def test_stun_on_any_udp_port(port: int, classifier: Classifier) -> None:
    out = feed(Sensor(classifier), udp(50000, port, ALLOCATE))
    assert names(out) == [("stun", "signal.org", "signal", None, "192.0.2.10", port)]


def test_an_answer_names_the_receiver_as_client(classifier: Classifier) -> None:
    answer = synth.stun_message(0x0113, [(REALM, b"telegram.org")])
    s = Sensor(classifier)
    out = feed(s, udp(3478, 50000, answer, back=True), udp(50000, 3478, ALLOCATE))
    assert names(out) == [
        ("stun", "telegram.org", "telegram", None, "192.0.2.10", 3478),
        ("stun", "signal.org", "signal", None, "192.0.2.10", 3478),
    ]
    assert feed(s, udp(50000, 3478, ALLOCATE)) == []  # once per flow and name
    assert s.counters.duplicates == 1


def test_a_realm_that_is_no_host_name_names_the_app(classifier: Classifier) -> None:
    msg = synth.stun_message(0x0003, [(REALM, b"turner.facebook")])
    out = feed(Sensor(classifier), udp(50000, 40000, msg))
    assert names(out) == [
        ("stun", "turner.facebook", "messenger", "messenger.com", "192.0.2.10", 40000)
    ]


def test_software_counts_only_when_it_names_an_app(classifier: Classifier) -> None:
    named = synth.stun_message(0x0001, [(SOFTWARE, b"Telegram Desktop 4.8")])
    unnamed = synth.stun_message(0x0101, [(SOFTWARE, b"None")])
    bare = synth.stun_message(0x0001, [(USERNAME, b"a:b")])
    out = feed(Sensor(classifier), udp(50001, 3478, named), udp(3478, 50002, unnamed, back=True),
               udp(50003, 3478, bare))  # fmt: skip
    assert names(out) == [
        ("stun", "telegram\\032desktop\\0324.8", "telegram", "telegram.org", "192.0.2.10", 3478)
    ]


def test_classic_stun_only_on_its_ports(classifier: Classifier) -> None:
    msg = synth.stun_message(0x0001, [(REALM, b"signal.org")], classic=True)
    assert feed(Sensor(classifier), udp(50000, 3479, msg))[0].hostname == "signal.org"
    assert feed(Sensor(classifier), udp(50000, 40000, msg)) == []


def test_turn_over_tcp(classifier: Classifier) -> None:
    msg = synth.stun_message(0x0003, [(REALM, b"viber.com")])
    frame = synth.ipv4("192.0.2.10", "198.51.100.130", 6, synth.tcp(50000, 443, msg + msg))
    out = feed(Sensor(classifier), frame)
    assert names(out) == [("stun", "viber.com", "viber", None, "192.0.2.10", 443)]


def test_without_a_classifier_the_app_is_in_via() -> None:
    msg = synth.stun_message(0x0003, [(REALM, b"turner.facebook")])
    (o,) = feed(Sensor(), udp(50000, 3478, msg))
    assert (o.hostname, o.platform, o.via) == ("turner.facebook", None, "messenger.com")


def test_quic_and_dns_are_not_taken_for_stun(classifier: Classifier) -> None:
    s = Sensor(classifier)
    quic_short = bytes([0x40]) + bytes(40)  # a 1-RTT packet: first bits 01
    feed(s, udp(50000, 443, quic_short), udp(50000, 53, synth.dns_query([("a.example", 1)])))
    assert s.counters.protocols == {"dns": 1}
