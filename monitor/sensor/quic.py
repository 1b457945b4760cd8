"""QUIC client Initial packets → ClientHello: v1 (RFC 9000/9001), v2 (RFC 9369), and the
versions older captures hold: IETF drafts 22–34, Facebook's mvfst (0xfaceb001/2/e) and
Google's Q050/T050/T051 (plaintext gQUIC up to Q046 is read by ``gquic``).

Initial packets are encrypted with keys anyone can derive from the Destination Connection ID
(RFC 9001 §5.2), so a passive observer can read the ClientHello: derive the keys (HKDF-SHA256
with the version's salt and labels), remove header protection (AES-128-ECB over a sample of
the ciphertext), open the payload (AES-128-GCM), collect CRYPTO frames by offset — across
several Initial packets when the ClientHello does not fit one, as Chrome's does with
post-quantum key shares — and hand the handshake message to ``tls.parse_handshake`` (Q050
carries a gQUIC CHLO instead, read by ``gquic.parse_chlo``). Only the Initial packet space is
ever decrypted. All Initials of a connection use the keys of the client's *first* DCID, even
after the client switched to the server's connection ID, so the reassembler remembers, per
flow, which connection it is reading.

``protect_initial`` is the inverse, used to build test packets; RFC 9001 Appendix A and RFC
9369 Appendix A check both directions.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from monitor.sensor.gquic import chlo_length, parse_chlo
from monitor.sensor.model import Malformed
from monitor.sensor.tls import MAX_CLIENT_HELLO, ClientHello, parse_handshake

V1 = 0x00000001
V2 = 0x6B3343CF
MAX_CID = 20  # RFC 9000 §17.2: v1 (and v2) connection IDs are at most 20 bytes

TRUNCATED = Malformed("quic_truncated")
BAD_HEADER = Malformed("quic_bad_header")
DECRYPT_FAILED = Malformed("quic_decrypt_failed")
BAD_FRAME = Malformed("quic_bad_frame")
CRYPTO_TOO_LARGE = Malformed("quic_crypto_too_large")
INTERNAL = Malformed("quic_unparsable")

FRAME_PADDING = 0x00
FRAME_PING = 0x01
FRAME_ACK = 0x02
FRAME_ACK_ECN = 0x03
FRAME_CRYPTO = 0x06
FRAME_GQUIC_CRYPTO = 0x08  # Google's Q050/T050/T051 put handshake data in frame type 8
_NON_ZERO = re.compile(b"[^\x00]").search


@dataclass(frozen=True, slots=True)
class VersionParams:
    """What differs between QUIC versions for Initial packets."""

    salt: bytes
    key_label: bytes
    iv_label: bytes
    hp_label: bytes
    initial_type: int  # the long-header packet type bits that mean Initial
    crypto_frame: int = FRAME_CRYPTO
    chlo: bool = False  # the handshake is a gQUIC CHLO, not a TLS ClientHello


def _v1_like(salt: str, **kw: object) -> VersionParams:
    return VersionParams(
        salt=bytes.fromhex(salt),
        key_label=b"quic key",
        iv_label=b"quic iv",
        hp_label=b"quic hp",
        initial_type=0b00,
        **kw,  # type: ignore[arg-type]
    )


_SALT_V1 = "38762cf7f55934b34d179ae6a4c80cadccbb7f0a"  # RFC 9001 §5.2 (and drafts 33, 34)
_SALT_D22 = "7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a"  # draft-ietf-quic-tls-22
_SALT_D23 = "c3eef712c72ebb5a11a7d2432bb46365bef9f502"  # drafts 23–28
_SALT_D29 = "afbfec289993d24c9e9786f19c6111e04390a899"  # drafts 29–32

VERSIONS: dict[int, VersionParams] = {
    V1: _v1_like(_SALT_V1),
    V2: VersionParams(
        salt=bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),  # RFC 9369 §3.3.1
        key_label=b"quicv2 key",
        iv_label=b"quicv2 iv",
        hp_label=b"quicv2 hp",
        initial_type=0b01,  # RFC 9369 §3.2: Initial is 0b01 in v2
    ),
    # IETF drafts (0xff0000NN), as Chrome and others shipped them in 2019–2021
    **{0xFF000000 | d: _v1_like(_SALT_D22) for d in (22,)},
    **{0xFF000000 | d: _v1_like(_SALT_D23) for d in range(23, 29)},
    **{0xFF000000 | d: _v1_like(_SALT_D29) for d in range(29, 33)},
    **{0xFF000000 | d: _v1_like(_SALT_V1) for d in (33, 34)},
    # Facebook's mvfst, seen from its apps (Instagram, Facebook, WhatsApp)
    0xFACEB001: _v1_like(_SALT_D22),
    0xFACEB002: _v1_like(_SALT_D23),
    0xFACEB00E: _v1_like(_SALT_D23),
    # Google QUIC with IETF-style Initial protection (Chrome 2020–2021)
    0x51303530: _v1_like(  # Q050: a gQUIC CHLO inside
        "504574efd066fe2f9d945cfcdbd3a7f0d3b56b45", crypto_frame=FRAME_GQUIC_CRYPTO, chlo=True
    ),
    0x54303530: _v1_like(  # T050: TLS inside
        "7ff579e5acd072915580304c43a2367c60488310", crypto_frame=FRAME_GQUIC_CRYPTO
    ),
    0x54303531: _v1_like(  # T051
        "7a4edef4e7ccee5fa4506c19124fc8ccda6e033d", crypto_frame=FRAME_GQUIC_CRYPTO
    ),
}


@dataclass(frozen=True, slots=True)
class InitialKeys:
    """AEAD key, IV and header-protection key of one side of the Initial packet space."""

    key: bytes
    iv: bytes
    hp: bytes


@dataclass(frozen=True, slots=True)
class InitialPacket:
    """One decrypted Initial packet. ``payload`` is the plaintext frames."""

    version: int
    dcid: bytes
    scid: bytes
    token: bytes
    packet_number: int
    payload: bytes


def hkdf_expand_label(secret: bytes, label: bytes, length: int, context: bytes = b"") -> bytes:
    """TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def initial_secret(version: int, dcid: bytes) -> bytes | None:
    """HKDF-Extract(salt, DCID) for a known version, else None."""
    params = VERSIONS.get(version)
    if params is None:
        return None
    h = hmac.HMAC(params.salt, hashes.SHA256())
    h.update(dcid)
    return h.finalize()


def initial_keys(version: int, dcid: bytes, *, server: bool = False) -> InitialKeys | None:
    """The client's (or server's) Initial keys for a connection, or None for other versions."""
    params = VERSIONS.get(version)
    secret = initial_secret(version, dcid)
    if params is None or secret is None:
        return None
    side = hkdf_expand_label(secret, b"server in" if server else b"client in", 32)
    return InitialKeys(
        key=hkdf_expand_label(side, params.key_label, 16),
        iv=hkdf_expand_label(side, params.iv_label, 12),
        hp=hkdf_expand_label(side, params.hp_label, 16),
    )


def header_protection_mask(hp: bytes, sample: bytes) -> bytes:
    """AES-based header protection mask (RFC 9001 §5.4.3): AES-ECB(hp, sample)."""
    return Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)


class _Cipher:
    """Keys turned into reusable cipher objects (creating them costs more than using them)."""

    __slots__ = ("iv", "aead", "hp")

    def __init__(self, keys: InitialKeys) -> None:
        self.iv = int.from_bytes(keys.iv, "big")
        self.aead = AESGCM(keys.key)
        # ECB over one block per packet: the encryptor is stateless between blocks
        self.hp: CipherContext = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()

    def mask(self, sample: bytes) -> bytes:
        return self.hp.update(sample)

    def nonce(self, pn: int) -> bytes:
        return (self.iv ^ pn).to_bytes(12, "big")


def encode_varint(n: int, size: int = 0) -> bytes:
    """RFC 9000 §16 variable-length integer, in the shortest form (or ``size`` bytes)."""
    if size == 0:
        size = 1 if n < 0x40 else 2 if n < 0x4000 else 4 if n < 0x40000000 else 8
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    if n >= 1 << (size * 8 - 2):
        raise ValueError(f"{n} does not fit a {size}-byte varint")
    return (n | (prefix << (size * 8 - 2))).to_bytes(size, "big")


def _varint(b: bytes, p: int) -> tuple[int, int]:
    """Decode a varint at p; (-1, p) when truncated."""
    if p >= len(b):
        return -1, p
    first = b[p]
    size = 1 << (first >> 6)
    if p + size > len(b):
        return -1, p
    v = first & 0x3F
    for i in range(p + 1, p + size):
        v = (v << 8) | b[i]
    return v, p + size


@dataclass(frozen=True, slots=True)
class _Header:
    version: int
    dcid: bytes
    scid: bytes
    token: bytes
    pn_offset: int
    end: int  # offset just past this packet (Length covers packet number + payload)


def _long_header(data: bytes) -> _Header | Malformed | None:
    """Parse an Initial's long header; None for anything that is not a v1/v2 Initial."""
    if len(data) < 7 or not data[0] & 0x80:
        return None  # short header (1-RTT) or too small to be a long header
    version = int.from_bytes(data[1:5], "big")
    params = VERSIONS.get(version)
    if params is None:
        return None  # version negotiation, drafts, unknown versions: not ours to read
    if (data[0] >> 4) & 0x03 != params.initial_type:
        return None
    p = 5
    n = data[p]
    if n > MAX_CID:
        return BAD_HEADER
    dcid = data[p + 1 : p + 1 + n]
    p += 1 + n
    if p >= len(data):
        return TRUNCATED
    n = data[p]
    if n > MAX_CID:
        return BAD_HEADER
    scid = data[p + 1 : p + 1 + n]
    p += 1 + n
    tlen, p = _varint(data, p)
    if tlen < 0 or p + tlen > len(data):
        return TRUNCATED
    token = data[p : p + tlen]
    p += tlen
    length, p = _varint(data, p)
    if length < 0 or p + length > len(data) or len(dcid) != data[5]:
        return TRUNCATED
    if length < 20:  # 4 bytes of packet number room + a 16-byte sample (RFC 9001 §5.4.2)
        return BAD_HEADER
    return _Header(version, dcid, scid, token, p, p + length)


def _open(data: bytes, h: _Header, cipher: _Cipher) -> InitialPacket | Malformed:
    pn_off = h.pn_offset
    mask = cipher.mask(data[pn_off + 4 : pn_off + 20])
    first = data[0] ^ (mask[0] & 0x0F)  # long header: the low 4 bits are protected
    pn_len = (first & 0x03) + 1
    pn = 0
    for i in range(pn_len):
        pn = (pn << 8) | (data[pn_off + i] ^ mask[1 + i])
    header = bytes([first]) + data[1:pn_off] + pn.to_bytes(pn_len, "big")
    try:
        plain = cipher.aead.decrypt(cipher.nonce(pn), data[pn_off + pn_len : h.end], header)
    except InvalidTag:
        return DECRYPT_FAILED
    # an Initial's packet number starts at 0 and stays small, so the truncated value is the
    # full one for every packet a sensor needs (the first few of a connection)
    return InitialPacket(h.version, h.dcid, h.scid, h.token, pn, plain)


# Deriving keys costs five HMACs; the Initials of one connection share them. The cache and
# the cipher objects in it are not thread-safe: one sensor runs on one thread.
_KEY_CACHE_SIZE = 1024
_key_cache: OrderedDict[tuple[int, bytes], _Cipher] = OrderedDict()


def _cipher_for(version: int, dcid: bytes) -> _Cipher | None:
    k = (version, dcid)
    c = _key_cache.get(k)
    if c is not None:
        _key_cache.move_to_end(k)
        return c
    keys = initial_keys(version, dcid)
    if keys is None:
        return None
    c = _key_cache[k] = _Cipher(keys)
    if len(_key_cache) > _KEY_CACHE_SIZE:
        _key_cache.popitem(last=False)
    return c


def decrypt_initial(
    data: bytes, keys: InitialKeys | None = None
) -> tuple[InitialPacket | Malformed | None, int]:
    """Decrypt the client Initial packet at the start of ``data`` (a UDP datagram).

    Returns the packet (or Malformed, or None when it is not a v1/v2 Initial) and the offset
    just past it, where a coalesced packet may follow (0 when unknown). ``keys`` defaults to
    the client keys derived from the packet's own DCID.
    """
    try:
        h = _long_header(data)
        if h is None or isinstance(h, Malformed):
            return h, 0
        cipher = _Cipher(keys) if keys is not None else _cipher_for(h.version, h.dcid)
        if cipher is None:
            return None, 0
        return _open(data, h, cipher), h.end
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return INTERNAL, 0


def crypto_frames(
    payload: bytes, frame_type: int = FRAME_CRYPTO
) -> list[tuple[int, bytes]] | Malformed:
    """The (offset, data) of each CRYPTO frame in an Initial's plaintext.

    Skips PADDING, PING and ACK frames; stops at the first other frame type (CONNECTION_CLOSE
    is the only other one allowed in Initial packets and carries nothing we need).
    ``frame_type`` is the CRYPTO frame's type in this version (8 in Google's Q050/T05x).
    """
    out: list[tuple[int, bytes]] = []
    p = 0
    n = len(payload)
    while p < n:
        t = payload[p]
        if t == FRAME_PADDING:
            # a run of padding (most of a 1200-byte Initial): skip it at C speed
            m = _NON_ZERO(payload, p)
            p = n if m is None else m.start()
            continue
        p += 1
        if t == FRAME_PING:
            continue
        if t == frame_type:
            off, p = _varint(payload, p)
            length, p = _varint(payload, p)
            if off < 0 or length < 0 or p + length > n:
                return BAD_FRAME
            out.append((off, payload[p : p + length]))
            p += length
            continue
        if t in (FRAME_ACK, FRAME_ACK_ECN) and frame_type == FRAME_CRYPTO:
            fields = [0, 0, 0, 0]  # largest, delay, range count, first range
            for i in range(4):
                fields[i], p = _varint(payload, p)
                if fields[i] < 0:
                    return BAD_FRAME
            for _ in range(fields[2] * 2 + (3 if t == FRAME_ACK_ECN else 0)):
                v, p = _varint(payload, p)
                if v < 0:
                    return BAD_FRAME  # also ends an absurd range count: each costs a byte
            continue
        break
    return out


def _assemble(chunks: list[tuple[int, bytes]]) -> bytes:
    """The contiguous bytes from offset 0 (overlaps allowed, duplicates ignored)."""
    if len(chunks) == 1 and chunks[0][0] == 0:
        return chunks[0][1]
    buf = bytearray()
    for off, data in sorted(chunks):
        if off > len(buf):
            break
        if off + len(data) > len(buf):
            buf += data[len(buf) - off :]
    return bytes(buf)


def _client_hello(stream: bytes, chlo: bool = False) -> ClientHello | Malformed | None:
    """None while incomplete; the parsed ClientHello (or Malformed) once complete."""
    if chlo:
        need = chlo_length(stream)
        if need is None:
            return None
        if need < 0:
            return Malformed("quic_not_client_hello")
        if len(stream) < need:
            return None
        return parse_chlo(stream[:need])
    if len(stream) < 4:
        return None
    need = 4 + ((stream[1] << 16) | (stream[2] << 8) | stream[3])
    if len(stream) < need:
        return None
    got = parse_handshake(stream[:need])
    return got if got is not None else Malformed("quic_not_client_hello")


def parse_initial(datagram: bytes) -> ClientHello | Malformed | None:
    """The ClientHello in one datagram's Initial packet(s), without cross-packet state.

    None when the datagram holds no client Initial of a known version or only part of a
    ClientHello.
    """
    return QuicReassembler(max_connections=1).feed(datagram)


@dataclass(slots=True)
class _Conn:
    chunks: list[tuple[int, bytes]]
    size: int


class QuicReassembler:
    """Collects CRYPTO frames of client Initials per connection until the ClientHello is whole.

    Connections are keyed by ``(key, version, first DCID)`` where ``key`` is the caller's
    flow key (the pipeline passes the 4-tuple). With a flow key, later Initials of the flow
    that carry the server's connection ID are opened with the first DCID's keys, and once a
    flow gave its ClientHello its other Initials (ACKs, retransmissions, the repeat after a
    Retry) are skipped without decrypting: one flow's hundreds of packets cost one
    decryption or two. Bounded: pending connections and their bytes, and the remembered
    finished flows, least recently used dropped first (pending ones counted in ``evicted``).
    ``version`` is the QUIC version of the last ClientHello returned.
    """

    def __init__(
        self,
        *,
        max_connections: int = 4096,
        max_total_bytes: int = 16 * 1024 * 1024,
        max_done: int = 65536,
        done_ttl: float = 300.0,
    ) -> None:
        self.max_connections = max_connections
        self.max_total_bytes = max_total_bytes
        self.max_done = max_done
        self.done_ttl = done_ttl
        self._conns: OrderedDict[Hashable, _Conn] = OrderedDict()
        self._by_flow: dict[Hashable, tuple[Hashable, int, bytes]] = {}  # pending conn per flow
        self._done: OrderedDict[Hashable, float] = OrderedDict()  # → when it finished
        self._now = 0.0
        self._total = 0
        self.evicted = 0
        self.version = 0

    def __len__(self) -> int:
        return len(self._conns)

    @property
    def buffered_bytes(self) -> int:
        return self._total

    def feed(
        self, datagram: bytes, key: Hashable = None, now: float | None = None
    ) -> ClientHello | Malformed | None:
        """Process one UDP datagram; return the ClientHello once its connection has it all.

        ``now`` (capture time) lets a finished flow be read again after ``done_ttl`` seconds.
        """
        if now is not None:
            self._now = now
        try:
            return self._feed(datagram, key)
        except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
            return INTERNAL

    def _feed(self, datagram: bytes, key: Hashable) -> ClientHello | Malformed | None:
        if key is not None:
            t = self._done.get(key)
            if t is not None:
                if self._now - t < self.done_ttl:
                    return None  # this flow already gave its ClientHello
                del self._done[key]
        found: list[tuple[int, bytes]] = []
        conn_key: tuple[Hashable, int, bytes] | None = None
        params: VersionParams | None = None
        pos = 0
        # coalesced packets (RFC 9000 §12.2): Initials first, then maybe 0-RTT; read them all
        while pos < len(datagram):
            data = datagram[pos:] if pos else datagram
            h = _long_header(data)
            if h is None:
                break
            if isinstance(h, Malformed):
                return h if pos == 0 else None
            if conn_key is None:
                conn_key = (key, h.version, h.dcid)
                if key is None and conn_key in self._done:
                    return None
                pending = self._by_flow.get(key) if key is not None else None
                if pending is not None and pending[1] == h.version:
                    conn_key = pending  # the same connection, now addressed by the server's CID
                params = VERSIONS[h.version]
            elif h.version != conn_key[1]:
                break
            cipher = _cipher_for(conn_key[1], conn_key[2])
            if cipher is None:
                break
            pkt = _open(data, h, cipher)
            if isinstance(pkt, Malformed) and conn_key[2] != h.dcid:
                # not the pending connection after all: a new one on the same flow
                conn_key = (key, h.version, h.dcid)
                cipher = _cipher_for(h.version, h.dcid)
                if cipher is None:
                    break
                pkt = _open(data, h, cipher)
            if isinstance(pkt, Malformed):
                return pkt if pos == 0 else None
            assert params is not None
            frames = crypto_frames(pkt.payload, params.crypto_frame)
            if isinstance(frames, Malformed):
                return frames
            found.extend(frames)
            pos += h.end
        if conn_key is None or not found:
            return None
        assert params is not None
        for off, data in found:
            if off + len(data) > MAX_CLIENT_HELLO:
                self._finish(conn_key)
                return CRYPTO_TOO_LARGE
        conn = self._conns.get(conn_key)
        if conn is None:
            got = _client_hello(_assemble(found), params.chlo)
            if got is not None:
                return self._finish(conn_key, got)
            size = sum(len(d) for _, d in found)
            self._conns[conn_key] = _Conn(found, size)
            if key is not None:
                self._by_flow[key] = conn_key
            self._total += size
            self._bound()
            return None
        self._conns.move_to_end(conn_key)
        conn.chunks.extend(found)
        added = sum(len(d) for _, d in found)
        conn.size += added
        self._total += added
        got = _client_hello(_assemble(conn.chunks), params.chlo)
        if got is not None:
            return self._finish(conn_key, got)
        if conn.size > MAX_CLIENT_HELLO * 2:  # retransmissions piling up without progress
            self._finish(conn_key)
            return CRYPTO_TOO_LARGE
        self._bound()
        return None

    def _finish(
        self, conn_key: tuple[Hashable, int, bytes], got: ClientHello | Malformed | None = None
    ) -> ClientHello | Malformed | None:
        conn = self._conns.pop(conn_key, None)
        if conn is not None:
            self._total -= conn.size
        key = conn_key[0]
        if key is not None:
            self._by_flow.pop(key, None)
        # a flow key when there is one: later Initials may carry another DCID
        done_key = key if key is not None else conn_key
        self._done.pop(done_key, None)
        self._done[done_key] = self._now
        if len(self._done) > self.max_done:
            self._done.popitem(last=False)
        if isinstance(got, ClientHello):
            self.version = conn_key[1]
        return got

    def _bound(self) -> None:
        while self._conns and (
            len(self._conns) > self.max_connections or self._total > self.max_total_bytes
        ):
            ck, conn = self._conns.popitem(last=False)
            self._total -= conn.size
            key = ck[0]  # type: ignore[index]
            if key is not None and self._by_flow.get(key) == ck:
                del self._by_flow[key]
            self.evicted += 1


def protect_initial(
    version: int,
    dcid: bytes,
    scid: bytes,
    packet_number: int,
    payload: bytes,
    *,
    token: bytes = b"",
    pn_len: int = 4,
    keys: InitialKeys | None = None,
) -> bytes:
    """Build a protected client Initial packet (for tests and benchmarks).

    ``payload`` is the plaintext frames, already padded as the caller wants. Raises
    ValueError for an unknown version or a payload too short to sample (RFC 9001 §5.4.2).
    """
    params = VERSIONS.get(version)
    if params is None:
        raise ValueError(f"unknown QUIC version {version:#x}")
    if not 1 <= pn_len <= 4 or packet_number >= 1 << (8 * pn_len):
        raise ValueError(f"packet number {packet_number} does not fit {pn_len} bytes")
    if pn_len + len(payload) + 16 < 20:
        raise ValueError("payload too short for a header-protection sample")
    keys = keys or initial_keys(version, dcid)
    assert keys is not None
    cipher = _Cipher(keys)
    first = 0xC0 | (params.initial_type << 4) | (pn_len - 1)
    length = pn_len + len(payload) + 16
    header = (
        bytes([first])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + encode_varint(len(token))
        + token
        + encode_varint(length, 2 if length < 0x4000 else 4)
    )
    pn_bytes = packet_number.to_bytes(pn_len, "big")
    sealed = cipher.aead.encrypt(cipher.nonce(packet_number), payload, header + pn_bytes)
    mask = cipher.mask(sealed[4 - pn_len : 20 - pn_len])
    protected_first = first ^ (mask[0] & 0x0F)
    protected_pn = bytes(b ^ m for b, m in zip(pn_bytes, mask[1 : 1 + pn_len], strict=True))
    return bytes([protected_first]) + header[1:] + protected_pn + sealed


def crypto_frame(offset: int, data: bytes) -> bytes:
    """A CRYPTO frame (for building test packets)."""
    return bytes([FRAME_CRYPTO]) + encode_varint(offset) + encode_varint(len(data)) + data
