"""Older QUIC as published captures hold it: gQUIC CHLOs (plaintext and Q050), T05x, IETF
drafts, mvfst."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from monitor.sensor import gquic, quic, synth
from monitor.sensor.pipeline import Frame, Sensor
from monitor.sensor.tls import ClientHello

CID = bytes.fromhex("1122334455667788")


def chlo(sni: str | None, *, pad: int = 0) -> bytes:
    """A CHLO message: tags in order, each with its value's end offset (little-endian)."""
    values = {b"PAD\x00": bytes(pad), b"PDMD": b"X509", b"VER\x00": b"Q043"}
    if sni is not None:
        values[b"SNI\x00"] = sni.encode()
    values[b"UAID"] = b"Chrome/80.0"
    table, data = b"", b""
    for tag in sorted(values):
        data += values[tag]
        table += tag + len(data).to_bytes(4, "little")
    return b"CHLO" + len(values).to_bytes(2, "little") + bytes(2) + table + data


def q043(message: bytes) -> bytes:
    # public flags (version, 8-byte connection id, 1-byte packet number), CID, version,
    # packet number, 12-byte message hash, a STREAM frame on stream 1 with a 2-byte length
    head = b"\x09" + CID + b"Q043" + b"\x01" + bytes(12)
    return head + b"\xa0\x01" + len(message).to_bytes(2, "big") + message


def q046(message: bytes) -> bytes:
    head = b"\xc3" + b"Q046" + b"\x50" + CID + b"\x00\x00\x00\x01" + bytes(12)
    return head + b"\xa0\x01" + len(message).to_bytes(2, "big") + message


def test_parse_chlo() -> None:
    assert gquic.parse_chlo(chlo("www.youtube.com", pad=300)) == ClientHello("www.youtube.com")
    assert gquic.parse_chlo(chlo("WWW.Example.COM")) == ClientHello("www.example.com")
    assert gquic.parse_chlo(chlo(None)) == ClientHello(None)
    assert gquic.chlo_length(chlo("a.example", pad=10)) == len(chlo("a.example", pad=10))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(chlo("a.example")[:30], gquic.TRUNCATED, id="table-cut"),
        pytest.param(chlo("a.example")[:-17], gquic.TRUNCATED, id="sni-value-cut"),
        pytest.param(b"SHLO" + bytes(20), gquic.BAD_CHLO, id="not-chlo"),
        pytest.param(b"CHLO\xff\xff\x00\x00", gquic.BAD_CHLO, id="absurd-tag-count"),
        pytest.param(
            b"CHLO\x02\x00\x00\x00SNI\x00\x05\x00\x00\x00VER\x00\x01\x00\x00\x00abcde",
            gquic.BAD_CHLO,
            id="offsets-go-backwards",
        ),
    ],
)
def test_broken_chlo(data: bytes, expected: object) -> None:
    assert gquic.parse_chlo(data) == expected


@pytest.mark.parametrize("build", [q043, q046], ids=["Q043", "Q046"])
def test_plaintext_gquic_datagrams(build: object) -> None:
    datagram = build(chlo("r3---sn-abc.googlevideo.com", pad=900))  # type: ignore[operator]
    assert gquic.parse_datagram(datagram) == ClientHello("r3---sn-abc.googlevideo.com")
    assert gquic.gquic_version(datagram) in (0x51303433, 0x51303436)


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(q043(b"not a handshake, a later packet"), id="no-chlo"),
        pytest.param(b"\x09" + CID + b"X043" + bytes(40), id="not-a-gquic-version"),
        pytest.param(b"\x40" + bytes(60), id="ietf-short-header"),
        pytest.param(b"\x09" + CID, id="tiny"),
    ],
)
def test_not_a_gquic_hello(datagram: bytes) -> None:
    assert gquic.parse_datagram(datagram) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_chlo_never_raises(data: bytes) -> None:
    assert gquic.parse_datagram(b"\x09" + CID + b"Q043" + bytes(13) + b"CHLO" + data) is not None


# -- encrypted Initials of older versions ---------------------------------------------------


def gquic_crypto_frame(data: bytes) -> bytes:
    return b"\x08" + quic.encode_varint(0) + quic.encode_varint(len(data)) + data


@pytest.mark.parametrize(
    ("version", "payload", "sni"),
    [
        pytest.param(0x51303530, gquic_crypto_frame(chlo("q050.example", pad=200)),
                     "q050.example", id="Q050-chlo"),
        pytest.param(0x54303531, gquic_crypto_frame(synth.client_hello("t051.example")),
                     "t051.example", id="T051-tls"),
        pytest.param(0x54303530, gquic_crypto_frame(synth.client_hello("t050.example")),
                     "t050.example", id="T050-tls"),
    ],
)  # fmt: skip
def test_google_versions_with_ietf_initials(version: int, payload: bytes, sni: str) -> None:
    packet = quic.protect_initial(version, CID, b"", 0, payload + bytes(1100 - len(payload)))
    assert quic.parse_initial(packet) == ClientHello(sni)
    # and the pipeline sends them to the QUIC path (Q050 starts like plaintext Q046 does)
    frame = bytes(
        IP(src="192.0.2.10", dst="198.51.100.1") / UDP(sport=5000, dport=443) / Raw(packet)
    )
    (obs,) = Sensor().run([Frame(101, frame, 1.0)])
    assert (obs.protocol, obs.hostname, obs.version) == ("quic", sni, version)


@pytest.mark.parametrize(
    "version",
    [0xFF00001D, 0xFF00001B, 0xFF000020, 0xFF000022, 0xFACEB002, 0xFACEB001, 0xFACEB00E],
    ids=["draft-29", "draft-27", "draft-32", "draft-34", "mvfst-27", "mvfst-22", "mvfst-exp"],
)
def test_ietf_drafts_and_mvfst(version: int) -> None:
    (packet,) = synth.quic_initials(synth.client_hello("draft.example"), version=version, dcid=CID)
    assert quic.parse_initial(packet) == ClientHello("draft.example")


def test_draft_salts_differ_from_v1() -> None:
    # a draft-29 packet relabelled as v1 does not open: the salt is part of the version
    (packet,) = synth.quic_initials(synth.client_hello("x.example"), version=0xFF00001D, dcid=CID)
    relabelled = packet[:1] + (1).to_bytes(4, "big") + packet[5:]
    assert quic.parse_initial(relabelled) == quic.DECRYPT_FAILED


def test_plaintext_gquic_in_the_pipeline() -> None:
    frame = bytes(
        IP(src="192.0.2.10", dst="198.51.100.1")
        / UDP(sport=5001, dport=443)
        / Raw(q046(chlo("www.youtube.com", pad=1000)))
    )
    later = bytes(
        IP(src="192.0.2.10", dst="198.51.100.1")
        / UDP(sport=5001, dport=443)
        / Raw(q046(b"\x00" * 40))
    )
    sensor = Sensor()
    got = list(sensor.run([Frame(101, frame, 1.0), Frame(101, later, 1.1)]))
    assert [(o.protocol, o.hostname, o.version) for o in got] == [
        ("quic", "www.youtube.com", int.from_bytes(b"Q046", "big"))
    ]
    assert not sensor.counters.malformed
