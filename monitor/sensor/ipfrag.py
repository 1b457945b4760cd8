"""IPv4 and IPv6 fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5), bounded and strict.

A DNS answer larger than the path MTU, a QUIC Initial sent over a small-MTU tunnel or a
ClientHello a middlebox fragmented arrives in IP fragments; ``decode`` hands each over as a
``Fragment`` and this puts the datagram back together. Memory is bounded four ways: open
datagrams (``max_datagrams``), fragments per datagram (``max_fragments``), bytes held in all
(``max_total_bytes``; the oldest datagram is evicted first, counted in ``evicted``) and time
(a datagram not whole ``timeout`` seconds after its first fragment, capture time, is dropped and
counted in ``expired``). No datagram exceeds 65,535 bytes.

Overlaps are where reassemblers disagree, and so where an evasion hides (a host keeping the first
copy of some bytes and a monitor keeping the second read different names). Only consistent
overlaps are accepted: a fragment whose bytes repeat bytes already held (a duplicate or a
retransmission). A fragment that changes bytes already held, or two "last" fragments that end
in different places, refuses the whole datagram (RFC 5722 asks the same of IPv6): it is counted
as malformed and its later fragments are refused until the timeout. Pure; never raises.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from monitor.sensor.decode import Fragment
from monitor.sensor.model import Malformed

MAX_DATAGRAM = 65535
TIMEOUT = 30.0  # seconds (Linux's ipfrag_time; RFC 8200 allows 60)

OVERLAP = Malformed("ip_fragment_overlap")  # bytes already held, changed: refused
BAD_LENGTH = Malformed("ip_fragment_bad_length")  # past 64 KiB, not 8-aligned, two ends
TOO_MANY = Malformed("ip_fragment_too_many")
REFUSED = Malformed("ip_fragment_refused")  # a fragment of a datagram refused before


@dataclass(slots=True)
class _Datagram:
    started: float
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, bytes)
    first: Fragment | None = None  # the offset-0 fragment: addresses, protocol, depth
    total: int = -1  # length of the whole payload, once the last fragment is in
    size: int = 0  # bytes held


class FragmentReassembler:
    """Collects fragments per datagram (source, destination, protocol, identification)."""

    def __init__(
        self,
        *,
        max_datagrams: int = 1024,
        max_fragments: int = 64,
        max_total_bytes: int = 4 * 1024 * 1024,
        timeout: float = TIMEOUT,
    ) -> None:
        self.max_datagrams = max_datagrams
        self.max_fragments = max_fragments
        self.max_total_bytes = max_total_bytes
        self.timeout = timeout
        # datagrams and refused keys, oldest first (insertion order = first fragment's time)
        self._open: OrderedDict[Hashable, _Datagram] = OrderedDict()
        self._refused: OrderedDict[Hashable, float] = OrderedDict()
        self._total = 0
        self.evicted = 0  # datagrams dropped to keep memory bounded
        self.expired = 0  # datagrams dropped unfinished after the timeout

    def __len__(self) -> int:
        return len(self._open)

    @property
    def buffered_bytes(self) -> int:
        return self._total

    def feed(self, frag: Fragment, now: float) -> tuple[Fragment, bytes] | Malformed | None:
        """Add one fragment; return (its offset-0 fragment, the whole payload) when complete.

        None while the datagram is incomplete; Malformed when the fragment is refused.
        """
        self._expire(now)
        if frag.version == 4:
            key: Hashable = (frag.src, frag.dst, frag.proto, frag.ident)
        else:  # RFC 8200: source, destination and identification
            key = (frag.src, frag.dst, frag.ident)
        if key in self._refused:
            return REFUSED
        data = frag.payload
        off = frag.offset
        end = off + len(data)
        if end > MAX_DATAGRAM or (frag.more and (not data or len(data) % 8)):
            return self._refuse(key, now, BAD_LENGTH)
        dg = self._open.get(key)
        if dg is None:
            dg = self._open[key] = _Datagram(now)
        if not frag.more:
            if dg.total >= 0 and dg.total != end:
                return self._refuse(key, now, BAD_LENGTH)
            dg.total = end
        if dg.total >= 0 and end > dg.total:
            return self._refuse(key, now, BAD_LENGTH)
        contained = False
        for o, piece in dg.pieces:
            lo, hi = max(o, off), min(o + len(piece), end)
            if lo < hi:
                if piece[lo - o : hi - o] != data[lo - off : hi - off]:
                    return self._refuse(key, now, OVERLAP)
                if lo == off and hi == end:
                    contained = True  # nothing new in it
        if off == 0 and dg.first is None:
            dg.first = frag
        if not contained:
            if len(dg.pieces) >= self.max_fragments:
                return self._refuse(key, now, TOO_MANY)
            dg.pieces.append((off, data))
            dg.size += len(data)
            self._total += len(data)
        if dg.total < 0 or dg.first is None:
            self._bound()
            return None
        whole = self._assemble(dg)
        if whole is None:
            self._bound()
            return None
        self._drop(key)
        return dg.first, whole

    @staticmethod
    def _assemble(dg: _Datagram) -> bytes | None:
        """The payload when the pieces cover it from 0 to the end, else None."""
        reach = 0
        for o, piece in sorted(dg.pieces, key=lambda x: x[0]):
            if o > reach:
                return None  # a hole
            reach = max(reach, o + len(piece))
        if reach < dg.total:
            return None
        out = bytearray(dg.total)
        for o, piece in dg.pieces:
            out[o : o + len(piece)] = piece
        return bytes(out)

    def _refuse(self, key: Hashable, now: float, why: Malformed) -> Malformed:
        self._drop(key)
        refused = self._refused
        refused[key] = now
        while len(refused) > self.max_datagrams:
            refused.popitem(last=False)
        return why

    def _drop(self, key: Hashable) -> None:
        dg = self._open.pop(key, None)
        if dg is not None:
            self._total -= dg.size

    def _expire(self, now: float) -> None:
        cutoff = now - self.timeout
        opened = self._open
        while opened:
            key, dg = next(iter(opened.items()))
            if dg.started > cutoff:
                break
            opened.popitem(last=False)
            self._total -= dg.size
            self.expired += 1
        refused = self._refused
        while refused and next(iter(refused.values())) <= cutoff:
            refused.popitem(last=False)

    def _bound(self) -> None:
        opened = self._open
        while opened and (len(opened) > self.max_datagrams or self._total > self.max_total_bytes):
            _, dg = opened.popitem(last=False)
            self._total -= dg.size
            self.evicted += 1
