"""TLS ClientHello → server name (SNI), ALPN and whether Encrypted Client Hello is offered.

A byte parser over the few fields we need: scapy's TLS layer is hundreds of times slower.
``parse_handshake`` reads one handshake message (QUIC carries these in CRYPTO frames);
``parse_record`` reads the TLS records a TCP client sends first; ``TlsReassembler`` buffers a
ClientHello split over several TCP segments, with bounded memory. None of them raises.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from monitor.sensor.model import Malformed, printable_name

HANDSHAKE = 22  # TLS record content type
CLIENT_HELLO = 1  # handshake message type
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_ECH = 0xFE0D  # encrypted_client_hello (draft-ietf-tls-esni, codepoint used by browsers)

MAX_RECORD = 16384 + 2048  # TLSCiphertext limit; a plaintext record is smaller still
MAX_CLIENT_HELLO = 65536  # far above real ones (post-quantum key shares make them ~2 KiB)

TRUNCATED = Malformed("tls_truncated")
BAD_RECORD = Malformed("tls_bad_record")
BAD_LENGTH = Malformed("tls_bad_length")
BAD_EXTENSION = Malformed("tls_bad_extension")
BAD_SNI = Malformed("tls_bad_sni")
BAD_ALPN = Malformed("tls_bad_alpn")
TOO_LARGE = Malformed("tls_too_large")
INTERNAL = Malformed("tls_unparsable")


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The fields of a ClientHello the sensor reports. ``sni`` is None when absent."""

    sni: str | None
    alpn: tuple[str, ...] = ()
    ech: bool = False


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _server_name(b: bytes, p: int, end: int) -> str | Malformed:
    # ServerNameList: u16 length, then (u8 name_type, u16 length, name)*
    if end - p < 2 or _u16(b, p) != end - p - 2:
        return BAD_SNI
    p += 2
    while p + 3 <= end:
        kind = b[p]
        n = _u16(b, p + 1)
        p += 3
        if p + n > end:
            return BAD_SNI
        if kind == 0:  # host_name
            if n == 0:
                return BAD_SNI
            return printable_name(b[p : p + n])
        p += n
    return BAD_SNI


def _alpn(b: bytes, p: int, end: int) -> tuple[str, ...] | Malformed:
    # ProtocolNameList: u16 length, then (u8 length, name)*, each name non-empty
    if end - p < 2 or _u16(b, p) != end - p - 2:
        return BAD_ALPN
    p += 2
    out: list[str] = []
    while p < end:
        n = b[p]
        p += 1
        if n == 0 or p + n > end:
            return BAD_ALPN
        out.append(printable_name(b[p : p + n], lower=False))
        p += n
    return tuple(out)


def _client_hello_body(b: bytes, p: int, end: int) -> ClientHello | Malformed:
    # legacy_version(2) random(32) session_id<0..32> cipher_suites<2..> compression<1..>
    # extensions<0..2^16-1> (absent in very old clients)
    p += 34
    if p + 1 > end:
        return TRUNCATED
    sid = b[p]
    if sid > 32:
        return BAD_LENGTH
    p += 1 + sid
    if p + 2 > end:
        return TRUNCATED
    p += 2 + _u16(b, p)
    if p + 1 > end:
        return TRUNCATED
    p += 1 + b[p]
    if p > end:
        return TRUNCATED
    if p == end:
        return ClientHello(None)
    if p + 2 > end:
        return TRUNCATED
    ext_end = p + 2 + _u16(b, p)
    if ext_end != end:
        return BAD_LENGTH if ext_end < end else TRUNCATED
    p += 2
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    ech = False
    while p + 4 <= end:  # the hot loop: inlined reads
        etype = (b[p] << 8) | b[p + 1]
        elen = (b[p + 2] << 8) | b[p + 3]
        p += 4
        if p + elen > end:
            return BAD_EXTENSION
        if etype == EXT_SERVER_NAME:
            got = _server_name(b, p, p + elen)
            if isinstance(got, Malformed):
                return got
            sni = got
        elif etype == EXT_ALPN:
            names = _alpn(b, p, p + elen)
            if isinstance(names, Malformed):
                return names
            alpn = names
        elif etype == EXT_ECH:
            ech = True
        p += elen
    if p != end:
        return BAD_EXTENSION
    return ClientHello(sni, alpn, ech)


def parse_handshake(msg: bytes) -> ClientHello | Malformed | None:
    """Parse one handshake message (``type || u24 length || body``).

    Returns None when it is not a ClientHello, Malformed when it is a broken one.
    """
    try:
        if len(msg) < 4:
            return TRUNCATED if msg[:1] == b"\x01" else None
        if msg[0] != CLIENT_HELLO:
            return None
        n = (msg[1] << 16) | (msg[2] << 8) | msg[3]
        if n > MAX_CLIENT_HELLO:
            return TOO_LARGE
        if len(msg) < 4 + n:
            return TRUNCATED
        return _client_hello_body(msg, 4, 4 + n)
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return INTERNAL


def collect_handshake(data: bytes) -> bytes | int | Malformed | None:
    """Gather the first handshake message from the TLS records at the start of ``data``.

    Returns the message bytes when complete; an int (the total length of ``data`` needed to
    make progress) when more bytes must come; None when ``data`` does not start a ClientHello
    (another record type, a ServerHello, not TLS at all); Malformed when broken.
    """
    pos = 0
    size = len(data)
    parts: list[bytes] = []
    have = 0
    need = 0  # handshake message length once known (4 + u24)
    while True:
        if size < pos + 5:
            if pos == 0 and size >= 1 and data[0] != HANDSHAKE:
                return None
            return pos + 5
        if data[pos] != HANDSHAKE or data[pos + 1] != 3 or data[pos + 2] > 4:
            return None if pos == 0 else BAD_RECORD
        if pos == 0 and size > 5 and data[5] != CLIENT_HELLO:
            return None
        rlen = _u16(data, pos + 3)
        if rlen == 0 or rlen > MAX_RECORD:
            return BAD_LENGTH
        end = pos + 5 + rlen
        frag = data[pos + 5 : end]
        if not need and have + len(frag) >= 4:
            head = b"".join(parts) + frag if parts else frag
            need = 4 + ((head[1] << 16) | (head[2] << 8) | head[3])
            if need > MAX_CLIENT_HELLO:
                return TOO_LARGE
        parts.append(frag)
        have += len(frag)
        if need and have >= need:
            msg = parts[0] if len(parts) == 1 else b"".join(parts)
            return msg[:need]
        if end > size:
            return end  # this record is incomplete
        pos = end


def _in_one_record(data: bytes) -> ClientHello | Malformed | None:
    """The usual case, read in place without copies: one record holding the whole
    ClientHello. None when ``data`` is anything else (then the general path decides)."""
    if len(data) >= 9 and data[0] == HANDSHAKE and data[1] == 3 and data[5] == CLIENT_HELLO:
        rlen = (data[3] << 8) | data[4]
        n = (data[6] << 16) | (data[7] << 8) | data[8]
        if 4 + n <= rlen <= MAX_RECORD and 5 + rlen <= len(data) and data[2] <= 4:
            return _client_hello_body(data, 9, 9 + n)
    return None


def parse_record(data: bytes) -> ClientHello | Malformed | None:
    """Parse a ClientHello from the TLS records a client sends first on a TCP connection.

    None when ``data`` is not the start of a ClientHello; Malformed (``tls_truncated``) when
    the record announces more bytes than ``data`` holds.
    """
    try:
        fast = _in_one_record(data)
        if fast is not None:
            return fast
        got = collect_handshake(data)
    except (IndexError, ValueError):
        return INTERNAL
    if isinstance(got, bytes):
        return parse_handshake(got)
    if isinstance(got, int):
        return TRUNCATED
    return got


MAX_PENDING = 16  # segments held beyond a gap, per flow
OVERLAP_CONFLICT = Malformed("tcp_overlap_conflict")
_SEQ = 0xFFFFFFFF


@dataclass(slots=True)
class _Stream:
    buf: bytearray
    base: int | None  # sequence number of buf[0]; None when segments carry none
    pending: dict[int, bytes] = field(default_factory=dict)  # out-of-order segments by seq
    size: int = 0  # bytes held (buf + pending), for the global bound
    need: int = 0  # len(buf) before the records can be read further


def _seq_diff(a: int, b: int) -> int:
    """a - b in TCP sequence space (32-bit wrap-around), as a signed int."""
    return ((a - b + 0x80000000) & _SEQ) - 0x80000000


class TlsReassembler:
    """Buffers the first bytes of TCP flows until their ClientHello is complete.

    Keyed by any hashable flow key (the pipeline uses the 5-tuple). Only a flow whose first
    payload starts a ClientHello is buffered, so server flights and application data cost a
    look at one byte. With sequence numbers, segments are put in order: retransmissions and
    overlaps are accepted when they repeat the bytes held, and refuse the flow
    (``tcp_overlap_conflict``) when they change them, since a host and the sensor could then
    read different names. When the client's SYN was seen (``syn``), segments that arrive
    before the flow's first one are held too, until it comes. Memory is bounded: bytes per
    flow, segments held beyond a gap (``MAX_PENDING``), total bytes, number of flows and of
    remembered SYNs; the least recently fed flow is evicted first and counted in ``evicted``.
    """

    def __init__(
        self,
        *,
        max_flows: int = 4096,
        max_flow_bytes: int = MAX_CLIENT_HELLO + 1024,  # room for record headers
        max_total_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.max_flows = max_flows
        self.max_flow_bytes = max_flow_bytes
        self.max_total_bytes = max_total_bytes
        self._flows: OrderedDict[Hashable, _Stream] = OrderedDict()
        # flows whose SYN was seen and that sent nothing yet → sequence number of byte one
        self.syns: OrderedDict[Hashable, int] = OrderedDict()
        self._total = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._flows)

    @property
    def buffered_bytes(self) -> int:
        return self._total

    def __contains__(self, key: Hashable) -> bool:
        return key in self._flows

    def forget(self, key: Hashable) -> None:
        """Drop a flow's buffer (connection closed)."""
        st = self._flows.pop(key, None)
        if st is not None:
            self._total -= st.size
        if self.syns:
            self.syns.pop(key, None)

    def syn(self, key: Hashable, seq: int) -> None:
        """The client's SYN (sequence number ``seq``): its data starts at ``seq + 1``."""
        syns = self.syns
        syns.pop(key, None)
        syns[key] = (seq + 1) & _SEQ
        if len(syns) > self.max_flows:
            syns.popitem(last=False)

    def early(self, key: Hashable, payload: bytes, seq: int) -> bool:
        """Hold a segment of a flow that named nothing yet, when it arrived before the flow's
        first bytes (the SYN said where they start). True when held (wait for the rest);
        False when it is the flow's first segment (or the SYN was not seen): read it now.
        """
        syns = self.syns
        if not syns:
            return False
        start = syns.pop(key, None)
        if start is None:
            return False
        d = _seq_diff(seq, start)
        if d <= 0 or d >= self.max_flow_bytes:
            return False
        st = _Stream(bytearray(), start, need=1)
        self._flows[key] = st
        self._place(st, payload, seq)
        self._total += st.size
        self._bound()
        return True

    def feed(
        self, key: Hashable, payload: bytes, seq: int | None = None
    ) -> ClientHello | Malformed | None:
        """Add one segment's payload; return the ClientHello once complete.

        ``seq`` (the TCP sequence number) lets retransmitted and out-of-order segments be
        placed correctly; without it segments are appended in arrival order.
        """
        if not payload:
            return None
        st = self._flows.get(key)
        if st is None:
            if self.syns:
                self.syns.pop(key, None)
            try:
                fast = _in_one_record(payload)
                if fast is not None:
                    return fast
                got = collect_handshake(payload)
            except (IndexError, ValueError):
                return INTERNAL
            if isinstance(got, bytes):
                return parse_handshake(got)
            if not isinstance(got, int):
                return got
            if got > self.max_flow_bytes:
                return TOO_LARGE
            st = _Stream(bytearray(payload), seq, size=len(payload), need=got)
            self._flows[key] = st
            self._total += st.size
            self._bound()
            return None
        self._flows.move_to_end(key)
        before = st.size
        grew = self._place(st, payload, seq)
        self._total += st.size - before
        if grew < 0:
            self.forget(key)
            return OVERLAP_CONFLICT
        if st.size > self.max_flow_bytes:
            self.forget(key)
            return TOO_LARGE
        if not grew or len(st.buf) < st.need:  # held beyond a gap, a duplicate, or too short
            self._bound()
            return None
        try:
            got = collect_handshake(bytes(st.buf))
        except (IndexError, ValueError):
            got = INTERNAL
        if isinstance(got, int):
            if got > self.max_flow_bytes:
                self.forget(key)
                return TOO_LARGE
            st.need = got
            self._bound()
            return None
        self.forget(key)
        if isinstance(got, bytes):
            return parse_handshake(got)
        return got

    def _place(self, st: _Stream, payload: bytes, seq: int | None) -> int:
        """Put a segment into the stream: 1 when the contiguous bytes grew, 0 when not (held
        beyond a gap, or a duplicate), -1 when it changes bytes already held."""
        if seq is None or st.base is None:
            st.buf += payload
            st.size += len(payload)
            return 1
        d = _seq_diff(seq, (st.base + len(st.buf)) & _SEQ)
        if d > 0:  # a gap: hold it until the missing bytes arrive
            held = st.pending.get(seq)
            if held is not None:
                n = min(len(held), len(payload))
                if held[:n] != payload[:n]:
                    return -1
                if len(payload) <= len(held):
                    return 0
                st.size -= len(held)  # the longer copy replaces it
            elif len(st.pending) >= MAX_PENDING:
                return 0
            st.pending[seq] = payload
            st.size += len(payload)
            return 0
        if not self._append(st, payload, d):
            return -1
        while st.pending:  # drain segments that now fit
            end = (st.base + len(st.buf)) & _SEQ
            for pseq in st.pending:
                d = _seq_diff(pseq, end)
                if d <= 0:
                    chunk = st.pending.pop(pseq)
                    st.size -= len(chunk)
                    if not self._append(st, chunk, d):
                        return -1
                    break
            else:
                break
        return 1

    @staticmethod
    def _append(st: _Stream, data: bytes, d: int) -> bool:
        """Append ``data``, which starts ``-d`` bytes before the end of ``st.buf``; False when
        the bytes it repeats differ from those held."""
        buf = st.buf
        start = len(buf) + d  # where data[0] sits in buf (negative: before the stream)
        skip = -start if start < 0 else 0
        overlap = min(-d, len(data))
        if overlap > skip and buf[start + skip : start + overlap] != data[skip:overlap]:
            return False
        if -d < len(data):
            tail = data[-d:] if d else data
            buf += tail
            st.size += len(tail)
        return True

    def _bound(self) -> None:
        while self._flows and (
            len(self._flows) > self.max_flows or self._total > self.max_total_bytes
        ):
            _, st = self._flows.popitem(last=False)
            self._total -= st.size
            self.evicted += 1
