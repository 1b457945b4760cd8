"""QUIC Initial decryption, checked against RFC 9001 Appendix A and RFC 9369 Appendix A."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sensor import quic, synth
from monitor.sensor.model import Malformed
from monitor.sensor.tls import ClientHello

DATA = Path(__file__).parent / "data"
DCID = bytes.fromhex("8394c8f03e515708")  # RFC 9001 A.1 and RFC 9369 A.1

# RFC 9001 A.2 / RFC 9369 A.2: the client's CRYPTO frame (a ClientHello for example.com);
# PADDING frames extend it to a 1162-byte payload
A2_CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c"
    "00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006"
    "001d0017001800100007000504616c706e000500050100000000003300260024001d00209370b2c9caa4"
    "7fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304000d0010000e040305"
    "0306030203080408050806002d00020101001c00024001003900320408ffffffffffffffff05048000ff"
    "ff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff"
)
A2_PAYLOAD = A2_CRYPTO_FRAME + bytes(1162 - len(A2_CRYPTO_FRAME))


def rfc_packet(name: str) -> bytes:
    lines = (DATA / name).read_text().splitlines()
    return bytes.fromhex("".join(ln for ln in lines if not ln.startswith("#")))


V1_PACKET = rfc_packet("rfc9001_a2_client_initial.hex")
V2_PACKET = rfc_packet("rfc9369_a2_client_initial.hex")

# (version, initial_secret, client_initial_secret, client key/iv/hp, server key/iv/hp)
KEY_VECTORS = [
    pytest.param(
        quic.V1,
        "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44",
        "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
        (
            "1f369613dd76d5467730efcbe3b1a22d",
            "fa044b2f42a3fd3b46fb255c",
            "9f50449e04a0e810283a1e9933adedd2",
        ),
        (
            "cf3a5331653c364c88f0f379b6067e37",
            "0ac1493ca1905853b0bba03e",
            "c206b8d9b9f0f37644430b490eeaa314",
        ),
        id="rfc9001-A.1",
    ),
    pytest.param(
        quic.V2,
        "2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba",
        "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
        (
            "8b1a0bc121284290a29e0971b5cd045d",
            "91f73e2351d8fa91660e909f",
            "45b95e15235d6f45a6b19cbcb0294ba9",
        ),
        (
            "82db637861d55e1d011f19ea71d5d2a7",
            "dd13c276499c0249d3310652",
            "edf6d05c83121201b436e16877593c3a",
        ),
        id="rfc9369-A.1",
    ),
]


@pytest.mark.parametrize(("version", "initial", "client_secret", "client", "server"), KEY_VECTORS)
def test_initial_keys_match_the_rfc(
    version: int, initial: str, client_secret: str, client: tuple[str, ...], server: tuple[str, ...]
) -> None:
    secret = quic.initial_secret(version, DCID)
    assert secret is not None and secret.hex() == initial
    assert quic.hkdf_expand_label(secret, b"client in", 32).hex() == client_secret
    keys = quic.initial_keys(version, DCID)
    assert keys is not None and (keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == client
    skeys = quic.initial_keys(version, DCID, server=True)
    assert skeys is not None and (skeys.key.hex(), skeys.iv.hex(), skeys.hp.hex()) == server


# (version, unprotected header, sample, mask, protected header, full packet)
PACKET_VECTORS = [
    pytest.param(
        quic.V1,
        "c300000001088394c8f03e5157080000449e00000002",
        "d1b1c98dd7689fb8ec11d242b123dc9b",
        "437b9aec36",
        "c000000001088394c8f03e5157080000449e7b9aec34",
        V1_PACKET,
        id="rfc9001-A.2",
    ),
    pytest.param(
        quic.V2,
        "d36b3343cf088394c8f03e5157080000449e00000002",
        "ffe67b6abcdb4298b485dd04de806071",
        "94a0c95e80",
        "d76b3343cf088394c8f03e5157080000449ea0c95e82",
        V2_PACKET,
        id="rfc9369-A.2",
    ),
]


@pytest.mark.parametrize(
    ("version", "header", "sample", "mask", "protected", "packet"), PACKET_VECTORS
)
def test_protect_reproduces_the_rfc_packet(
    version: int, header: str, sample: str, mask: str, protected: str, packet: bytes
) -> None:
    keys = quic.initial_keys(version, DCID)
    assert keys is not None
    assert quic.header_protection_mask(keys.hp, bytes.fromhex(sample))[:5].hex() == mask
    built = quic.protect_initial(version, DCID, b"", 2, A2_PAYLOAD)
    assert len(built) == 1200
    assert built[:22].hex() == protected
    assert built[22:38].hex() == sample  # the sample starts 4 bytes after the packet number
    assert built == packet


@pytest.mark.parametrize(
    ("version", "header", "sample", "mask", "protected", "packet"), PACKET_VECTORS
)
def test_decrypt_the_rfc_packet(
    version: int, header: str, sample: str, mask: str, protected: str, packet: bytes
) -> None:
    pkt, end = quic.decrypt_initial(packet)
    assert isinstance(pkt, quic.InitialPacket)
    assert (pkt.version, pkt.dcid, pkt.scid, pkt.token, pkt.packet_number) == (
        version,
        DCID,
        b"",
        b"",
        2,
    )
    assert pkt.payload == A2_PAYLOAD
    assert end == 1200
    assert quic.crypto_frames(pkt.payload) == [(0, A2_CRYPTO_FRAME[4:])]
    assert quic.parse_initial(packet) == ClientHello("example.com", ("alpn",), False)


def test_decrypt_with_wrong_keys_fails() -> None:
    wrong = quic.initial_keys(quic.V1, b"\x00" * 8)
    assert quic.decrypt_initial(V1_PACKET, wrong)[0] == quic.DECRYPT_FAILED


def test_packet_type_bits_depend_on_the_version() -> None:
    # v1's Initial type bits (00) mean Retry in v2: not an Initial at all
    relabelled = V1_PACKET[:1] + quic.V2.to_bytes(4, "big") + V1_PACKET[5:]
    assert quic.decrypt_initial(relabelled)[0] is None
    # and v2's Initial bits (01) mean 0-RTT in v1
    assert quic.parse_initial(V2_PACKET[:1] + b"\x00\x00\x00\x01" + V2_PACKET[5:]) is None


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        pytest.param(b"", None, id="empty"),
        pytest.param(bytes([0x40]) + bytes(40), None, id="short-header"),
        pytest.param(b"\xc0\x00\x00\x00\x00" + bytes(40), None, id="version-negotiation"),
        pytest.param(b"\xc0\xff\x00\x00\x0f" + bytes(40), None, id="draft-15"),
        pytest.param(b"\xc0\xff\x00\x00\x1d" + bytes(40), quic.BAD_HEADER, id="draft-29-broken"),
        pytest.param(
            V1_PACKET[:1] + V1_PACKET[1:5] + b"\x15" + bytes(60), quic.BAD_HEADER, id="dcid-21"
        ),
        pytest.param(V1_PACKET[:600], quic.TRUNCATED, id="cut-in-half"),
        pytest.param(V1_PACKET[:14], quic.TRUNCATED, id="cut-after-dcid"),
        pytest.param(
            bytes.fromhex("c00000000100000005") + bytes(5),
            quic.BAD_HEADER,
            id="length-below-sample",
        ),
    ],
)
def test_not_initials_and_broken_headers(datagram: bytes, expected: Malformed | None) -> None:
    assert quic.parse_initial(datagram) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(b"", [], id="empty"),
        pytest.param(bytes(50), [], id="padding-only"),
        pytest.param(b"\x01" + quic.crypto_frame(0, b"abc"), [(0, b"abc")], id="ping-crypto"),
        pytest.param(
            quic.crypto_frame(3, b"def") + bytes(3) + quic.crypto_frame(0, b"abc"),
            [(3, b"def"), (0, b"abc")],
            id="two-crypto-out-of-order",
        ),
        # ACK: largest 5, delay 0, 1 range, first range 0, gap 1, length 2
        pytest.param(
            b"\x02\x05\x00\x01\x00\x01\x02" + quic.crypto_frame(0, b"x"), [(0, b"x")], id="ack"
        ),
        # ACK_ECN: largest 5, delay 0, no ranges, first 0, ECN counts 1 2 3
        pytest.param(
            b"\x03\x05\x00\x00\x00\x01\x02\x03" + quic.crypto_frame(0, b"y"),
            [(0, b"y")],
            id="ack-ecn",
        ),
        # CONNECTION_CLOSE (0x1c) ends the walk cleanly; what follows is not read
        pytest.param(quic.crypto_frame(0, b"z") + b"\x1c\xff\xff", [(0, b"z")], id="stop-at-close"),
        pytest.param(b"\x06\x00\x10abc", quic.BAD_FRAME, id="crypto-longer-than-payload"),
        pytest.param(b"\x06\xc0", quic.BAD_FRAME, id="crypto-offset-cut"),
        pytest.param(b"\x02\x05\x00\x3f\x00", quic.BAD_FRAME, id="ack-range-count-lies"),
    ],
)
def test_crypto_frames(payload: bytes, expected: object) -> None:
    assert quic.crypto_frames(payload) == expected


@pytest.mark.parametrize("version", [quic.V1, quic.V2])
def test_client_hello_split_over_two_initials(version: int) -> None:
    ch = synth.client_hello("split.example.com", alpn=["h3"], pad_to=1700)
    first, second = synth.quic_initials(ch, version=version, dcid=b"\x11" * 8, packets=2)
    r = quic.QuicReassembler()
    assert r.feed(first, "flow") is None
    assert len(r) == 1 and r.buffered_bytes > 0
    assert r.feed(second, "flow") == ClientHello("split.example.com", ("h3",), False)
    assert len(r) == 0 and r.buffered_bytes == 0


def test_split_initials_in_reverse_order_and_per_flow() -> None:
    ch = synth.client_hello("reverse.example.com", pad_to=1700)
    first, second = synth.quic_initials(ch, dcid=b"\x22" * 8, packets=2)
    r = quic.QuicReassembler()
    assert r.feed(second, "a") is None
    assert r.feed(first, "b") is None  # same DCID from another flow: kept apart
    assert r.feed(first, "a") == ClientHello("reverse.example.com")


def test_coalesced_initials_in_one_datagram() -> None:
    ch = synth.client_hello("coalesced.example.com", pad_to=1000)
    a, b = synth.quic_initials(ch, dcid=b"\x33" * 8, packets=2, datagram_size=700)
    assert quic.parse_initial(a + b) == ClientHello("coalesced.example.com")
    assert quic.parse_initial(a) is None  # half a ClientHello


def test_finished_connection_is_not_decrypted_again() -> None:
    dcid = b"\x44" * 8
    (pkt,) = synth.quic_initials(synth.client_hello("done.example.com"), dcid=dcid)
    r = quic.QuicReassembler()
    assert r.feed(pkt, "f") == ClientHello("done.example.com")
    assert r.feed(pkt, "f") is None
    corrupt = pkt[:-1] + bytes([pkt[-1] ^ 1])
    assert r.feed(corrupt, "f") is None  # skipped before decryption
    assert quic.QuicReassembler().feed(corrupt, "f") == quic.DECRYPT_FAILED


def test_crypto_that_is_not_a_client_hello() -> None:
    server_hello = b"\x02\x00\x00\x04abcd"
    payload = quic.crypto_frame(0, server_hello) + bytes(1100)
    pkt = quic.protect_initial(quic.V1, b"\x55" * 8, b"", 0, payload)
    assert quic.parse_initial(pkt) == Malformed("quic_not_client_hello")


def test_crypto_offset_beyond_bound() -> None:
    payload = quic.crypto_frame(70000, b"x") + bytes(1100)
    pkt = quic.protect_initial(quic.V1, b"\x66" * 8, b"", 0, payload)
    assert quic.parse_initial(pkt) == quic.CRYPTO_TOO_LARGE


def test_reassembler_bounds_connections_lru() -> None:
    r = quic.QuicReassembler(max_connections=2)
    firsts = []
    for i in range(3):
        ch = synth.client_hello(f"c{i}.example.com", pad_to=1700)
        firsts.append(synth.quic_initials(ch, dcid=bytes([i]) * 8, packets=2))
    assert r.feed(firsts[0][0], "f") is None
    assert r.feed(firsts[1][0], "f") is None
    assert r.feed(firsts[2][0], "f") is None
    assert len(r) == 2 and r.evicted == 1
    assert r.feed(firsts[0][1], "f") is None  # its first half was evicted
    assert r.feed(firsts[2][1], "f") == ClientHello("c2.example.com")


def test_reassembler_bounds_bytes() -> None:
    r = quic.QuicReassembler(max_total_bytes=1500)
    for i in range(3):
        ch = synth.client_hello(f"b{i}.example.com", pad_to=1700)
        assert r.feed(synth.quic_initials(ch, dcid=bytes([i + 9]) * 8, packets=2)[0], "f") is None
    assert r.buffered_bytes <= 1500 and r.evicted == 2


def test_protect_initial_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown QUIC version"):
        quic.protect_initial(0x12345678, DCID, b"", 0, bytes(100))
    with pytest.raises(ValueError, match="does not fit"):
        quic.protect_initial(quic.V1, DCID, b"", 256, bytes(100), pn_len=1)
    with pytest.raises(ValueError, match="too short"):
        quic.protect_initial(quic.V1, DCID, b"", 0, b"", pn_len=1)


@pytest.mark.parametrize(
    ("n", "size", "encoded"),
    [
        (37, 0, "25"),
        (15293, 0, "7bbd"),
        (494878333, 0, "9d7f3e7d"),
        (151288809941952652, 0, "c2197c5eff14e88c"),
        (37, 2, "4025"),
    ],
)
def test_varint_rfc9000_examples(n: int, size: int, encoded: str) -> None:
    assert quic.encode_varint(n, size).hex() == encoded
    assert quic._varint(bytes.fromhex(encoded), 0) == (n, len(encoded) // 2)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=1500))
def test_fuzz_random_datagrams_never_raise(data: bytes) -> None:
    got = quic.parse_initial(data)
    assert got is None or isinstance(got, ClientHello | Malformed)
    pkt, end = quic.decrypt_initial(data)
    assert pkt is None or isinstance(pkt, quic.InitialPacket | Malformed)
    frames = quic.crypto_frames(data)
    assert isinstance(frames, list | Malformed)


@FUZZ
@given(
    st.binary(min_size=1, max_size=40),
    st.integers(0, 1199),
    st.sampled_from([V1_PACKET, V2_PACKET]),
)
def test_fuzz_mutated_rfc_packets_never_raise(patch: bytes, at: int, packet: bytes) -> None:
    mutated = packet[:at] + patch + packet[at + len(patch) :]
    got = quic.parse_initial(mutated)
    assert got is None or isinstance(got, ClientHello | Malformed)


@FUZZ
@given(st.binary(min_size=1, max_size=16), st.integers(0, 260), st.integers(0, 1))
def test_fuzz_mutated_plaintext_never_raises(patch: bytes, at: int, version_index: int) -> None:
    # corrupt the frames before encryption, so the frame and TLS parsers see the damage
    payload = A2_PAYLOAD[:at] + patch + A2_PAYLOAD[at + len(patch) :]
    version = (quic.V1, quic.V2)[version_index]
    pkt = quic.protect_initial(version, DCID, b"", 2, payload)
    got = quic.QuicReassembler().feed(pkt, None)
    assert got is None or isinstance(got, ClientHello | Malformed)


# -- shapes real clients send -----------------------------------------------------------------


def chrome_like(hello: bytes, dcid: bytes, *, server_cid: bytes | None = None) -> list[bytes]:
    """Chrome's Initials with a post-quantum key share: the ClientHello (~1.8 KiB) cut into
    CRYPTO fragments sent out of order over two packets, PING and PADDING frames between them
    ("chaos protection"); the first packet does not even hold offset 0. With ``server_cid``
    the second packet goes out under the server's connection ID (still the first DCID's keys),
    as a retransmission does once the server has answered."""
    cuts = [0, 300, 700, 1100, 1500, len(hello)]
    pieces = [quic.crypto_frame(cuts[i], hello[cuts[i] : cuts[i + 1]]) for i in range(5)]
    one = pieces[2] + b"\x01" + bytes(7) + pieces[4] + b"\x01"
    two = pieces[1] + bytes(5) + pieces[3] + b"\x01\x01" + pieces[0]
    keys = quic.initial_keys(quic.V1, dcid)
    out = []
    for pn, frames in enumerate((one, two)):
        cid = server_cid if pn and server_cid else dcid
        out.append(quic.protect_initial(quic.V1, cid, b"", pn, frames + bytes(1250 - len(frames)),
                                        keys=keys))  # fmt: skip
    return out


MLKEM_HELLO = synth.client_hello("www.tiktok.com", alpn=["h3"], ech=True, pad_to=1850)


def test_chrome_chaos_protection_over_two_initials() -> None:
    first, second = chrome_like(MLKEM_HELLO, b"\x71" * 8)
    r = quic.QuicReassembler()
    assert r.feed(first, "flow") is None
    assert r.feed(second, "flow") == ClientHello("www.tiktok.com", ("h3",), True)


def test_second_initial_under_the_server_connection_id() -> None:
    first, second = chrome_like(MLKEM_HELLO, b"\x72" * 8, server_cid=b"\x5e" * 16)
    r = quic.QuicReassembler()
    assert r.feed(first, "flow") is None
    assert r.feed(second, "flow") == ClientHello("www.tiktok.com", ("h3",), True)
    # without the flow key there is no way to know which keys it needs
    assert quic.QuicReassembler().feed(second) == quic.DECRYPT_FAILED


def test_a_new_connection_on_a_flow_with_one_pending() -> None:
    pending, _ = chrome_like(MLKEM_HELLO, b"\x73" * 8)
    (other,) = synth.quic_initials(synth.client_hello("other.example"), dcid=b"\x74" * 8)
    r = quic.QuicReassembler()
    assert r.feed(pending, "flow") is None
    assert r.feed(other, "flow") == ClientHello("other.example")


def test_a_finished_flow_is_read_again_after_done_ttl() -> None:
    (pkt,) = synth.quic_initials(synth.client_hello("again.example"), dcid=b"\x75" * 8)
    r = quic.QuicReassembler(done_ttl=60)
    assert r.feed(pkt, "flow", now=1000.0) == ClientHello("again.example")
    assert r.feed(pkt, "flow", now=1059.0) is None
    assert r.feed(pkt, "flow", now=1061.0) == ClientHello("again.example")


def test_ack_only_initial_after_the_hello_is_not_decrypted() -> None:
    dcid = b"\x76" * 8
    (pkt,) = synth.quic_initials(synth.client_hello("acks.example"), dcid=dcid)
    ack = quic.protect_initial(
        quic.V1, b"\x5e" * 8, b"", 1, b"\x02\x00\x00\x00\x00" + bytes(1100),
        keys=quic.initial_keys(quic.V1, dcid),
    )  # fmt: skip
    r = quic.QuicReassembler()
    assert r.feed(pkt, "flow") == ClientHello("acks.example")
    assert r.feed(ack, "flow") is None  # not quic_decrypt_failed: the flow is done
