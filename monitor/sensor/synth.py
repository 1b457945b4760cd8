"""Synthetic protocol messages for tests, pcap fixtures and benchmarks.

Builds the bytes a client would send (ClientHello, DNS query and answer, QUIC Initial
datagrams, STUN messages) with deterministic contents, so fixtures and golden files are
reproducible; and small builders of the headers around them (Ethernet and VLAN tags, IPv4,
IPv6, fragments, UDP, TCP, GRE, PPTP, VXLAN, ERSPAN), so tests can build a frame without
scapy and check that the decoder reads back what was built. Checksums are not filled in (the
sensor does not verify them). Pure; no packets leave the process.
"""

from __future__ import annotations

import ipaddress
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


def dns_answer(
    qname: str,
    qtype: int,
    *,
    cnames: Sequence[str] = (),
    addresses: Sequence[str] = (),
    msg_id: int = 0x1234,
) -> bytes:
    """A DNS answer to one question: the CNAME chain ``qname`` → ``cnames[0]`` → …, then A or
    AAAA records of the last name. Names are written whole (no compression)."""

    def name(n: str) -> bytes:
        return b"".join(bytes([len(x)]) + x for x in _encode_name(n)) + b"\x00"

    records = b""
    owner = qname
    for target in cnames:
        rdata = name(target)
        records += name(owner) + _u16(5) + _u16(1) + (300).to_bytes(4, "big")
        records += _u16(len(rdata)) + rdata
        owner = target
    for addr in addresses:
        raw = ipaddress.ip_address(addr).packed
        rtype = 1 if len(raw) == 4 else 28
        records += name(owner) + _u16(rtype) + _u16(1) + (300).to_bytes(4, "big")
        records += _u16(len(raw)) + raw
    count = len(cnames) + len(addresses)
    head = _u16(msg_id) + _u16(0x8180) + _u16(1) + _u16(count) + _u16(0) + _u16(0)
    return head + name(qname) + _u16(qtype) + _u16(1) + records


# --- STUN ---------------------------------------------------------------------------------

STUN_COOKIE = b"\x21\x12\xa4\x42"


def stun_message(
    msg_type: int,
    attributes: Sequence[tuple[int, bytes]] = (),
    *,
    classic: bool = False,
    transaction: bytes = b"\x5a" * 12,
) -> bytes:
    """A STUN message (RFC 8489; RFC 3489 with ``classic``: a 16-byte transaction id in place
    of the magic cookie) with the given (type, value) attributes, each padded to 4 bytes."""
    body = b""
    for atype, value in attributes:
        body += _u16(atype) + _u16(len(value)) + value + bytes(-len(value) % 4)
    tid = (b"\x5a" * 4 if classic else STUN_COOKIE) + transaction
    return _u16(msg_type) + _u16(len(body)) + tid + body


# --- headers --------------------------------------------------------------------------------

CLIENT_MAC = bytes.fromhex("020000000001")
GATEWAY_MAC = bytes.fromhex("0200000000fe")


def ethernet(
    etype: int,
    payload: bytes,
    *,
    src: bytes = CLIENT_MAC,
    dst: bytes = GATEWAY_MAC,
    tags: Sequence[tuple[int, int]] = (),
) -> bytes:
    """An Ethernet frame; ``tags`` are (TPID, VLAN id) pairs, outermost first."""
    head = dst + src
    for tpid, vid in tags:
        head += _u16(tpid) + _u16(vid & 0x0FFF)
    return head + _u16(etype) + payload


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0,
    offset: int = 0,
    more: bool = False,
    ttl: int = 64,
) -> bytes:
    """An IPv4 packet (no options); ``offset`` in bytes (a multiple of 8), ``more``: MF."""
    flags = (0x2000 if more else 0) | (offset // 8)
    return (
        b"\x45\x00"
        + _u16(20 + len(payload))
        + _u16(ident)
        + _u16(flags)
        + bytes([ttl, proto])
        + b"\x00\x00"
        + ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + payload
    )


def ipv6(src: str, dst: str, nxt: int, payload: bytes, *, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (``payload`` starts with the header ``nxt`` names)."""
    return (
        b"\x60\x00\x00\x00"
        + _u16(len(payload))
        + bytes([nxt, hop_limit])
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return _u16(sport) + _u16(dport) + _u16(8 + len(payload)) + b"\x00\x00" + payload


def tcp(
    sport: int, dport: int, payload: bytes, *, seq: int = 1, ack: int = 1, flags: int = 0x18
) -> bytes:
    """A TCP segment (20-byte header; flags PSH+ACK by default)."""
    return (
        _u16(sport)
        + _u16(dport)
        + seq.to_bytes(4, "big")
        + ack.to_bytes(4, "big")
        + bytes([0x50, flags])
        + _u16(65535)
        + b"\x00\x00\x00\x00"
        + payload
    )


def fragment_ipv4(packet: bytes, size: int) -> list[bytes]:
    """An (option-less) IPv4 packet cut into fragments of ``size`` payload bytes (a multiple
    of 8), in order."""
    if size <= 0 or size % 8:
        raise ValueError("fragment size must be a positive multiple of 8")
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    ident = int.from_bytes(packet[4:6], "big")
    body = packet[20:]
    return [
        ipv4(
            src,
            dst,
            packet[9],
            body[i : i + size],
            ident=ident,
            offset=i,
            more=i + size < len(body),
        )
        for i in range(0, len(body), size)
    ]


def fragment_ipv6(packet: bytes, size: int, ident: int) -> list[bytes]:
    """An IPv6 packet (no extension headers) cut into fragments of ``size`` payload bytes (a
    multiple of 8), in order, each with a fragment header (identification ``ident``)."""
    if size <= 0 or size % 8:
        raise ValueError("fragment size must be a positive multiple of 8")
    src = str(ipaddress.IPv6Address(packet[8:24]))
    dst = str(ipaddress.IPv6Address(packet[24:40]))
    nxt = packet[6]
    body = packet[40:]
    out = []
    for i in range(0, len(body), size):
        more = i + size < len(body)
        head = bytes([nxt, 0]) + _u16(i | more) + ident.to_bytes(4, "big")
        out.append(ipv6(src, dst, 44, head + body[i : i + size]))
    return out


def gre(
    proto: int,
    payload: bytes,
    *,
    checksum: bool = False,
    key: int | None = None,
    seq: int | None = None,
) -> bytes:
    """A GRE header (RFC 2784, with RFC 2890's key and sequence number) and its payload."""
    flags = (0x80 if checksum else 0) | (0x20 if key is not None else 0)
    flags |= 0x10 if seq is not None else 0
    out = bytes([flags, 0]) + _u16(proto)
    if checksum:
        out += b"\x00\x00\x00\x00"  # checksum (not computed) and reserved
    if key is not None:
        out += key.to_bytes(4, "big")
    if seq is not None:
        out += seq.to_bytes(4, "big")
    return out + payload


def pptp_gre(
    ip_packet: bytes, *, call_id: int = 1, seq: int | None = 1, ack: int | None = None
) -> bytes:
    """PPTP's enhanced GRE (RFC 2637) with a PPP frame (address, control, protocol IPv4 or
    IPv6) around ``ip_packet``."""
    ppp = b"\xff\x03" + (b"\x00\x21" if ip_packet[0] >> 4 == 4 else b"\x00\x57") + ip_packet
    flags = 0x20 | (0x10 if seq is not None else 0)
    out = bytes([flags, 0x01 | (0x80 if ack is not None else 0)]) + _u16(0x880B)
    out += _u16(len(ppp)) + _u16(call_id)
    if seq is not None:
        out += seq.to_bytes(4, "big")
    if ack is not None:
        out += ack.to_bytes(4, "big")
    return out + ppp


def vxlan(frame: bytes, vni: int = 42) -> bytes:
    """A VXLAN header (RFC 7348, I flag set) and the Ethernet frame it carries."""
    return b"\x08\x00\x00\x00" + vni.to_bytes(3, "big") + b"\x00" + frame


def erspan2(frame: bytes, session: int = 1) -> bytes:
    """An ERSPAN type II header (version 1, session id) and the mirrored Ethernet frame."""
    return _u16(0x1000) + _u16(session & 0x03FF) + b"\x00\x00\x00\x00" + frame
