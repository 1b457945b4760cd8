"""Synthetic protocol messages for tests, pcap fixtures and benchmarks.

Builds the bytes a client would send (ClientHello, DNS query, QUIC Initial datagrams) with
deterministic contents, so fixtures and golden files are reproducible. Pure; no packets leave
the process. Link, IP and transport headers are added by the callers (with scapy).
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.sensor import quic
from monitor.sensor.tls import EXT_ALPN, EXT_ECH, EXT_SERVER_NAME


def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _ext(etype: int, body: bytes) -> bytes:
    return _u16(etype) + _u16(len(body)) + body


def _filler(seed: str, n: int) -> bytes:
    """Deterministic bytes standing in for randoms and key shares."""
    import hashlib

    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return out[:n]


def client_hello(
    sni: str | None,
    *,
    alpn: Sequence[str] = (),
    ech: bool = False,
    pad_to: int = 0,
    seed: str = "",
) -> bytes:
    """A TLS 1.3 ClientHello handshake message (``type || u24 length || body``).

    ``ech`` adds an outer encrypted_client_hello extension (0xfe0d) with filler payload, as a
    browser does; ``pad_to`` adds a padding extension (21) until the message is that long, to
    make ClientHellos that need several TCP segments or QUIC packets.
    """
    seed = seed or f"{sni}/{','.join(alpn)}/{ech}"
    exts = b""
    if sni is not None:
        name = sni.encode("ascii")
        entry = b"\x00" + _u16(len(name)) + name
        exts += _ext(EXT_SERVER_NAME, _u16(len(entry)) + entry)
    exts += _ext(10, _u16(6) + bytes.fromhex("001d00170018"))  # supported_groups
    exts += _ext(13, _u16(8) + bytes.fromhex("0403080404010201"))  # signature_algorithms
    if alpn:
        names = b"".join(bytes([len(a)]) + a.encode("ascii") for a in alpn)
        exts += _ext(EXT_ALPN, _u16(len(names)) + names)
    share = b"\x00\x1d" + _u16(32) + _filler(seed + "/ks", 32)
    exts += _ext(51, _u16(len(share)) + share)  # key_share (x25519)
    exts += _ext(43, bytes.fromhex("0403040303"))  # supported_versions: TLS 1.3, 1.2
    exts += _ext(45, bytes.fromhex("0101"))  # psk_key_exchange_modes
    if ech:
        # ECHClientHello outer: type 0, HPKE suite (HKDF-SHA256, AES-128-GCM), config id,
        # enc (32-byte X25519 share), payload (the encrypted inner ClientHello)
        enc = _filler(seed + "/enc", 32)
        payload = _filler(seed + "/ech", 144)
        body = b"\x00" + bytes.fromhex("00010001") + b"\x2a" + _u16(32) + enc
        exts += _ext(EXT_ECH, body + _u16(len(payload)) + payload)
    fixed = (
        b"\x03\x03"
        + _filler(seed + "/random", 32)
        + b"\x20"
        + _filler(seed + "/sid", 32)
        + _u16(6)
        + bytes.fromhex("130113021303")
        + b"\x01\x00"
    )
    body_len = len(fixed) + 2 + len(exts)
    if pad_to and 4 + body_len + 4 <= pad_to:
        pad = pad_to - (4 + body_len + 4)
        exts += _ext(21, bytes(pad))
    body = fixed + _u16(len(exts)) + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


def tls_records(handshake: bytes, max_fragment: int = 16384) -> bytes:
    """Wrap a handshake message in TLS handshake records (record version 0x0301)."""
    out = b""
    for i in range(0, len(handshake), max_fragment):
        frag = handshake[i : i + max_fragment]
        out += b"\x16\x03\x01" + _u16(len(frag)) + frag
    return out


def split(data: bytes, parts: int) -> list[bytes]:
    """Cut ``data`` into ``parts`` pieces of nearly equal size."""
    step = -(-len(data) // parts)
    return [data[i : i + step] for i in range(0, len(data), step)]


def _encode_name(name: str) -> list[bytes]:
    return [label.encode("ascii") for label in name.rstrip(".").split(".") if label]


def dns_query(
    questions: Sequence[tuple[str, int]],
    *,
    msg_id: int = 0x1234,
    compress: bool = True,
    response: bool = False,
) -> bytes:
    """A DNS message with the given (name, qtype) questions, class IN.

    With ``compress``, a name whose tail was already written ends in a pointer to it, as
    RFC 1035 §4.1.4 allows; real stub resolvers rarely send more than one question, so this
    is how tests exercise the decoder's pointer handling.
    """
    flags = 0x8180 if response else 0x0100
    msg = bytearray(_u16(msg_id) + _u16(flags) + _u16(len(questions)) + _u16(0) + _u16(0) + _u16(0))
    written: dict[tuple[bytes, ...], int] = {}
    for name, qtype in questions:
        labels = _encode_name(name)
        for i in range(len(labels)):
            tail = tuple(labels[i:])
            if compress and tail in written:
                msg += bytes([0xC0 | (written[tail] >> 8), written[tail] & 0xFF])
                break
            if len(msg) < 0x3FFF:
                written[tail] = len(msg)
            msg += bytes([len(labels[i])]) + labels[i]
        else:
            msg += b"\x00"
        msg += _u16(qtype) + _u16(1)
    return bytes(msg)


def dns_tcp(msg: bytes) -> bytes:
    """Prefix a DNS message with its 2-byte length, as on TCP."""
    return _u16(len(msg)) + msg


def quic_initials(
    handshake: bytes,
    *,
    version: int = quic.V1,
    dcid: bytes,
    scid: bytes = b"",
    packets: int = 1,
    datagram_size: int = 1200,
    first_pn: int = 0,
) -> list[bytes]:
    """Client Initial datagrams carrying ``handshake`` in CRYPTO frames.

    The CRYPTO data is cut into ``packets`` consecutive frames, one per Initial packet (packet
    numbers from ``first_pn``); each datagram is padded to ``datagram_size`` as RFC 9000
    §14.1 requires of clients. Raises ValueError when a piece does not fit.
    """
    out: list[bytes] = []
    offset = 0
    for i, piece in enumerate(split(handshake, packets)):
        frames = quic.crypto_frame(offset, piece)
        offset += len(piece)
        # header: 1 + 4 + 1 + dcid + 1 + scid + 1 (token length) + 2 (length) + 4 (pn)
        overhead = 14 + len(dcid) + len(scid) + 16
        room = datagram_size - overhead
        if len(frames) > room:
            raise ValueError(f"CRYPTO piece of {len(piece)} bytes does not fit one datagram")
        payload = frames + bytes(room - len(frames))
        out.append(quic.protect_initial(version, dcid, scid, first_pn + i, payload))
    return out
