"""Frames → observations: decode, dispatch to the DNS/TLS/QUIC parsers, deduplicate, classify.

The sensor reports one observation per flow (5-tuple) and host name, not one per packet. It
holds three bounded pieces of state: the TLS reassembler, the QUIC reassembler and the
deduplication set (oldest entries dropped first). Pure: the capture adapter (``pcap.py``)
feeds it frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from . import decode as dec
from .dns import OPCODE_QUERY, DnsMessage, parse_dns, parse_dns_tcp
from .model import Counters, Malformed, Observation, Protocol, Transport
from .quic import QuicReassembler
from .tls import HANDSHAKE, ClientHello, TlsReassembler

DNS_PORT = 53
TLS_PORTS = frozenset({443, 853})  # HTTPS, DNS over TLS
QUIC_PORT = 443

Classify = Callable[[str], str | None]


class Frame(NamedTuple):
    """One captured frame: pcap link type, bytes, capture time (seconds since the epoch)."""

    linktype: int
    data: bytes
    time: float


class Sensor:
    """Turns captured frames into observations.

    ``classify`` maps a host name to a platform id or None (a ``monitor.classify.Classifier``
    is such a callable); observations then carry ``platform``.
    """

    def __init__(
        self,
        classify: Classify | None = None,
        *,
        max_dedup: int = 65536,
        tls: TlsReassembler | None = None,
        quic: QuicReassembler | None = None,
    ) -> None:
        self.classify = classify
        self.max_dedup = max_dedup
        self.tls = tls if tls is not None else TlsReassembler()
        self.quic = quic if quic is not None else QuicReassembler()
        self.counters = Counters()
        # insertion-ordered: the oldest key is evicted first when full
        self._seen: dict[tuple[object, ...], None] = {}

    def feed(self, linktype: int, frame: bytes, time: float) -> list[Observation]:
        """Process one frame; return the new observations it gave (usually none)."""
        c = self.counters
        c.packets += 1
        seg = dec.decode(linktype, frame)
        if isinstance(seg, str):
            if seg in dec.MALFORMED_REASONS:
                c.undecodable += 1
                c.malformed[seg] += 1
            else:
                c.skipped[seg] += 1
            return []
        payload = seg.payload
        if seg.proto == dec.UDP:
            if not payload:
                return []
            if seg.dport == DNS_PORT:
                return self._dns(seg, parse_dns(payload), "udp", time)
            if seg.dport == QUIC_PORT and payload[0] & 0x80:
                got = self.quic.feed(payload, (seg.src, seg.sport, seg.dst, seg.dport))
                c.evicted = self.tls.evicted + self.quic.evicted
                return self._hello(seg, got, "quic", "udp", time)
            return []
        flow = (seg.src, seg.sport, seg.dst, seg.dport)
        if not payload:
            if seg.flags & (dec.TCP_FIN | dec.TCP_RST):
                self.tls.forget(flow)
            return []
        if seg.dport == DNS_PORT:
            out: list[Observation] = []
            for msg in parse_dns_tcp(payload):
                out.extend(self._dns(seg, msg, "tcp", time))
            return out
        if seg.dport in TLS_PORTS or payload[0] == HANDSHAKE or flow in self.tls:
            got = self.tls.feed(flow, payload, seg.seq)
            c.evicted = self.tls.evicted + self.quic.evicted
            return self._hello(seg, got, "tls", "tcp", time)
        return []

    def run(self, frames: Iterable[tuple[int, bytes, float]]) -> Iterator[Observation]:
        """Feed frames in order and yield observations as they appear."""
        feed = self.feed
        for linktype, data, time in frames:
            yield from feed(linktype, data, time)

    def _dns(
        self, seg: dec.Segment, msg: DnsMessage | Malformed, transport: Transport, time: float
    ) -> list[Observation]:
        if isinstance(msg, Malformed):
            self.counters.malformed[msg.kind] += 1
            return []
        if msg.response or msg.opcode != OPCODE_QUERY:
            return []  # answers repeat the query's question; other opcodes name zones
        out = []
        for q in msg.questions:
            if q.name == ".":
                continue
            obs = self._emit(seg, "dns", transport, q.name, time, qtype=q.qtype)
            if obs is not None:
                out.append(obs)
        return out

    def _hello(
        self,
        seg: dec.Segment,
        got: ClientHello | Malformed | None,
        protocol: Protocol,
        transport: Transport,
        time: float,
    ) -> list[Observation]:
        if got is None:
            return []
        if isinstance(got, Malformed):
            self.counters.malformed[got.kind] += 1
            return []
        if got.sni is None:
            self.counters.skipped[f"{protocol}_no_sni"] += 1
            return []
        version = int.from_bytes(seg.payload[1:5], "big") if protocol == "quic" else None
        obs = self._emit(
            seg, protocol, transport, got.sni, time, ech=got.ech, alpn=got.alpn, version=version
        )
        return [] if obs is None else [obs]

    def _emit(
        self,
        seg: dec.Segment,
        protocol: Protocol,
        transport: Transport,
        hostname: str,
        time: float,
        *,
        ech: bool = False,
        alpn: tuple[str, ...] = (),
        qtype: int | None = None,
        version: int | None = None,
    ) -> Observation | None:
        key = (seg.proto, seg.src, seg.sport, seg.dst, seg.dport, hostname)
        seen = self._seen
        if key in seen:
            self.counters.duplicates += 1
            return None
        seen[key] = None
        if len(seen) > self.max_dedup:
            del seen[next(iter(seen))]
        self.counters.observations += 1
        return Observation(
            time=time,
            client=dec.address_text(seg.src),
            server=dec.address_text(seg.dst),
            protocol=protocol,
            hostname=hostname,
            ech=ech,
            transport=transport,
            client_port=seg.sport,
            server_port=seg.dport,
            alpn=alpn,
            qtype=qtype,
            version=version,
            platform=self.classify(hostname) if self.classify is not None else None,
        )


def observe(
    frames: Iterable[tuple[int, bytes, float]], classify: Classify | None = None
) -> Iterator[Observation]:
    """Observations from frames with a fresh ``Sensor``."""
    return Sensor(classify).run(frames)
