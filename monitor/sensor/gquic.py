"""Google QUIC (gQUIC) client hellos → server name.

Before IETF QUIC, Chrome and Google's apps spoke gQUIC (versions Q024 … Q046), whose first
packet carries a ``CHLO`` handshake message in the clear; Q050 carries the same message
inside IETF-style encrypted Initials (``quic`` decrypts those and calls ``parse_chlo``). A
CHLO is a tag/value map: ``"CHLO"``, u16 entry count, u16 padding, then (tag, u32 end offset)
pairs and the values; the ``SNI`` tag names the server (all little-endian). Published
captures from 2015–2021 are full of these. Pure; never raises.
"""

from __future__ import annotations

from monitor.sensor.model import Malformed, printable_name
from monitor.sensor.tls import ClientHello

CHLO = b"CHLO"
TAG_SNI = b"SNI\x00"
MAX_TAGS = 128  # real CHLOs have about 20
CHLO_SEARCH = 128  # the CHLO starts within the first bytes after the public header

TRUNCATED = Malformed("gquic_truncated")
BAD_CHLO = Malformed("gquic_bad_chlo")


def chlo_length(data: bytes) -> int | None:
    """Total length of the CHLO message at the start of ``data``; None until its header and
    tag table are there; -1 when it is not a CHLO or its table is broken."""
    if len(data) < 8:
        return None
    if data[:4] != CHLO:
        return -1
    n = data[4] | (data[5] << 8)
    if n > MAX_TAGS:
        return -1
    table = 8 + 8 * n
    if len(data) < table:
        return None
    last = int.from_bytes(data[table - 4 : table], "little") if n else 0
    return table + last


def parse_chlo(data: bytes) -> ClientHello | Malformed:
    """The server name of the CHLO at the start of ``data`` (``sni`` None when absent)."""
    if len(data) < 8 or data[:4] != CHLO:
        return BAD_CHLO
    n = data[4] | (data[5] << 8)
    if n > MAX_TAGS:
        return BAD_CHLO
    table = 8 + 8 * n
    if len(data) < table:
        return TRUNCATED
    prev = 0
    sni: tuple[int, int] | None = None
    for i in range(n):  # the whole table first: end offsets never go backwards
        e = 8 + 8 * i
        end = int.from_bytes(data[e + 4 : e + 8], "little")
        if end < prev:
            return BAD_CHLO
        if data[e : e + 4] == TAG_SNI:
            sni = prev, end
        prev = end
    if sni is None:
        return ClientHello(None)
    start, end = sni
    if end == start:
        return BAD_CHLO
    if table + end > len(data):
        return TRUNCATED
    return ClientHello(printable_name(data[table + start : table + end]))


def gquic_version(datagram: bytes) -> int | None:
    """The version of a plaintext gQUIC client packet (``Q0xx`` as an int), else None.

    Q046 uses a long header (version at bytes 1–4); older versions put the version after an
    8-byte connection id when the public flags say both are present (0x01 | 0x08).
    """
    if len(datagram) < 13:
        return None
    first = datagram[0]
    if first & 0x80:
        v = datagram[1:5]
    elif first & 0x09 == 0x09:
        v = datagram[9:13]
    else:
        return None
    if v[:2] != b"Q0" or not (0x30 <= v[2] <= 0x39 and 0x30 <= v[3] <= 0x39):
        return None
    return int.from_bytes(v, "big")


def parse_datagram(datagram: bytes) -> ClientHello | Malformed | None:
    """The CHLO's server name in a plaintext gQUIC client packet; None when there is none."""
    try:
        if gquic_version(datagram) is None:
            return None
        i = datagram.find(CHLO, 13, CHLO_SEARCH)
        if i < 0:
            return None  # a later packet of the connection
        return parse_chlo(datagram[i:])
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return Malformed("gquic_unparsable")
