"""Sensor value types, output lines and the synthetic message builders."""

from __future__ import annotations

import json

import pytest

from monitor.model import Decision
from monitor.sensor import output, quic, synth, tls
from monitor.sensor.judge import Verdict
from monitor.sensor.model import Counters, Observation, printable_name


@pytest.mark.parametrize(
    ("raw", "lower", "text"),
    [
        (b"WWW.Example.com", True, "www.example.com"),
        (b"HTTP/1.1", False, "HTTP/1.1"),
        (b"a\tb", True, "a\\009b"),
        (b"line\nbreak", True, "line\\010break"),
        (b"sp ace", True, "sp\\032ace"),
        (b"back\\slash", True, "back\\092slash"),
        (b"\xff\x00", True, "\\255\\000"),
        (b"", True, ""),
    ],
)
def test_printable_name(raw: bytes, lower: bool, text: str) -> None:
    assert printable_name(raw, lower=lower) == text
    assert "\t" not in text and "\n" not in text


OBS = Observation(
    time=1714550400.25,
    client="192.0.2.1",
    server="2001:db8::1",
    protocol="quic",
    hostname="a.example",
    ech=True,
    transport="udp",
    client_port=5,
    server_port=443,
    alpn=("h3",),
    version=1,
)


def test_tsv_line() -> None:
    assert (
        output.tsv_line(OBS)
        == "2024-05-01T08:00:00.250000Z\t192.0.2.1\t2001:db8::1\tquic\ta.example\t-"
    )


def test_json_line() -> None:
    obj = json.loads(output.json_line(OBS))
    assert obj == {
        "time": "2024-05-01T08:00:00.250000Z",
        "client": "192.0.2.1",
        "client_port": 5,
        "server": "2001:db8::1",
        "server_port": 443,
        "transport": "udp",
        "protocol": "quic",
        "hostname": "a.example",
        "ech": True,
        "alpn": ["h3"],
        "qtype": None,
        "version": 1,
        "platform": None,
        "via": None,
    }


VERDICT = Verdict(
    "p-0123456789abcdef", "under13", "ms", "tiktok", "a.example",
    Decision("block", "quic-bypass:under13", "Bypassed.", "medium"),
)  # fmt: skip


def test_lines_with_a_verdict_keep_the_old_columns_first() -> None:
    assert output.tsv_line(OBS, VERDICT).split("\t") == output.tsv_line(OBS).split("\t") + [
        "p-0123456789abcdef", "under13", "ms", "block", "quic-bypass:under13",
    ]  # fmt: skip
    plain = json.loads(output.json_line(OBS))
    obj = json.loads(output.json_line(OBS, VERDICT))
    assert list(obj)[: len(plain)] == list(plain)
    assert {k: obj[k] for k in obj if k not in plain} == {
        "person": "p-0123456789abcdef", "age_band": "under13", "school": "ms",
        "decision": "block", "rule": "quic-bypass:under13", "incident": "medium",
    }  # fmt: skip
    assert output.VERDICT_COLUMNS == ("person", "age_band", "school", "decision", "rule")


def test_counters_as_dict_is_json_ready() -> None:
    c = Counters(packets=3)
    c.malformed["b_kind"] += 2
    c.malformed["a_kind"] += 1
    d = c.as_dict()
    assert list(d["malformed"]) == ["a_kind", "b_kind"]  # type: ignore[call-overload]
    assert json.loads(json.dumps(d))["packets"] == 3


@pytest.mark.parametrize("pad_to", [600, 1401, 5000])
def test_client_hello_padding_is_exact(pad_to: int) -> None:
    msg = synth.client_hello("pad.example", pad_to=pad_to)
    assert len(msg) == pad_to
    assert tls.parse_handshake(msg) == tls.ClientHello("pad.example")


def test_dns_query_compression_points_back() -> None:
    wire = synth.dns_query([("www.example.com", 1), ("example.com", 1)])
    assert wire.endswith(b"\xc0\x10\x00\x01\x00\x01")  # "example.com" written at offset 16


def test_quic_initials_are_padded_and_checked() -> None:
    ch = synth.client_hello("sizes.example", pad_to=1700)
    packets = synth.quic_initials(ch, dcid=b"\x01" * 8, packets=2, datagram_size=1250)
    assert [len(p) for p in packets] == [1250, 1250]
    with pytest.raises(ValueError, match="does not fit"):
        synth.quic_initials(ch, dcid=b"\x01" * 8, packets=1)
    assert quic.decrypt_initial(packets[1])[0].packet_number == 1  # type: ignore[union-attr]


def test_split() -> None:
    assert synth.split(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert b"".join(synth.split(bytes(range(100)), 7)) == bytes(range(100))
