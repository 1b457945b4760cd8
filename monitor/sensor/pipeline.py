"""Frames → observations: decode, dispatch to the DNS/TLS/QUIC/HTTP parsers, deduplicate,
classify.

The sensor reports one observation per flow (5-tuple, in the client's direction) and host
name, not one per packet: a retransmitted ClientHello, the hundreds of packets of a QUIC
connection, a DNS query and its answer give one. A flow and name seen again after
``dedup_ttl`` seconds (capture time) is reported again, so a long-lived flow that keeps
naming a host shows up once per period. State is bounded: the TLS reassembler, the QUIC
reassembler and the deduplication table (at most ``max_dedup`` entries, oldest dropped
first, and none older than ``dedup_ttl``). Pure: the capture adapter (``pcap.py``) feeds it
frames.

What is read where: DNS queries to port 53 and answers from it (UDP and TCP); TLS
ClientHellos on any TCP port (a flow whose first payload is a handshake record); QUIC
Initials to UDP port 443, and on other ports when a datagram looks like a client Initial
(long header, a known version, at least 1200 bytes); plaintext gQUIC CHLOs to UDP 443;
HTTP/1.x request hosts on any TCP port.

Flows that carry no name (no SNI, a protocol of its own such as a messenger's) are named from
DNS: the addresses in a DNS answer are remembered per client (bounded, for ``DNS_MAP_TTL``),
and a TCP connection that client then opens to one of them, whose first payload names nothing,
is reported with the answer's question name and protocol ``ip``. Only then: a flow whose
ClientHello or request names a host is reported under that name alone, so a shared address
(a CDN's) does not lend one name to another's flows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from monitor.sensor import decode as dec
from monitor.sensor.dns import OPCODE_QUERY, DnsMessage, parse_dns, parse_dns_tcp
from monitor.sensor.gquic import gquic_version
from monitor.sensor.gquic import parse_datagram as parse_gquic
from monitor.sensor.http import METHOD_PREFIXES, parse_request
from monitor.sensor.model import Counters, Frame, Malformed, Observation, Protocol, Transport
from monitor.sensor.quic import VERSIONS as QUIC_VERSIONS
from monitor.sensor.quic import QuicReassembler
from monitor.sensor.tls import HANDSHAKE, ClientHello, TlsReassembler

__all__ = ["Classify", "Frame", "Sensor", "observe"]

DNS_PORT = 53
TLS_PORTS = frozenset({443, 853})  # HTTPS, DNS over TLS
QUIC_PORT = 443
MIN_INITIAL = 1200  # RFC 9000 §14.1: a client pads datagrams with Initials to this size
MIN_CLIENT_DCID = 8  # RFC 9000 §7.2: a client's first DCID has at least 8 bytes
DEDUP_TTL = 300.0  # seconds
DNS_MAP_TTL = 3600.0  # seconds a DNS answer names connections to its addresses
MAX_DNS_MAP = 65536  # (client, address) pairs remembered
MAX_CANDIDATES = 4096  # connections opened to a named address, waiting for their first payload
_NAME_CACHE = 8192  # entries of each lookup cache (cleared when full: cheap and bounded)
_UNSEEN = "\x00unseen"  # a sentinel no host name can be (names are escaped)

Classify = Callable[[str], str | None]


class Sensor:
    """Turns captured frames into observations.

    ``classify`` maps a host name to a platform id or None (a
    ``monitor.platforms.classify.Classifier`` is such a callable); observations then carry
    ``platform``.
    """

    def __init__(
        self,
        classify: Classify | None = None,
        *,
        max_dedup: int = 65536,
        dedup_ttl: float = DEDUP_TTL,
        tls: TlsReassembler | None = None,
        quic: QuicReassembler | None = None,
    ) -> None:
        if dedup_ttl <= 0:
            raise ValueError(f"dedup_ttl must be positive, got {dedup_ttl}")
        self._classify = classify
        self.max_dedup = max_dedup
        self.dedup_ttl = dedup_ttl
        self.tls = tls if tls is not None else TlsReassembler()
        self.quic = quic if quic is not None else QuicReassembler(done_ttl=dedup_ttl)
        self.counters = Counters()
        # flow + name → capture time of its report, oldest first (an OrderedDict pops its
        # front in O(1); a plain dict's front slowly fills with deleted slots)
        self._seen: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self._expire_at = float("-inf")
        # small caches: the same clients, servers and names come back again and again
        self._names: dict[bytes, str] = {}
        self._platforms: dict[str, str | None] = {}
        # (client, server address) → (name, answer time), from DNS answers
        self._dns_map: OrderedDict[tuple[bytes, bytes], tuple[str, float]] = OrderedDict()
        # TCP flows opened to a named address → (name, time), until their first payload
        self._candidates: OrderedDict[tuple[bytes, int, bytes, int], str] = OrderedDict()

    @property
    def classify(self) -> Classify | None:
        """The host → platform callback (replaceable, e.g. after a catalogue reload)."""
        return self._classify

    @classify.setter
    def classify(self, fn: Classify | None) -> None:
        self._classify = fn
        self._platforms = {}

    @property
    def dedup_size(self) -> int:
        """Entries in the deduplication table."""
        return len(self._seen)

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
            dport = seg.dport
            if dport == DNS_PORT:
                return self._dns(seg, parse_dns(payload), "udp", time)
            first = payload[0]
            if dport == QUIC_PORT:
                if first & 0x80 and (payload[1:3] != b"Q0" or payload[1:5] == b"Q050"):
                    return self._quic(seg, payload, time)  # IETF-style Initials (not Q046)
                if first & 0x80 or first & 0x09 == 0x09:  # maybe gQUIC's public header
                    version = gquic_version(payload)
                    if version is not None:
                        return self._hello(
                            seg, parse_gquic(payload), "quic", "udp", time, version=version
                        )
                return []
            if seg.sport == DNS_PORT:
                return self._dns(seg, parse_dns(payload), "udp", time)
            if (
                first & 0xC0 == 0xC0
                and len(payload) >= MIN_INITIAL
                and seg.sport != QUIC_PORT
                and payload[5] >= MIN_CLIENT_DCID
                and int.from_bytes(payload[1:5], "big") in QUIC_VERSIONS
            ):
                return self._quic(seg, payload, time, guessed=True)
            return []
        flow = (seg.src, seg.sport, seg.dst, seg.dport)
        if not payload:
            flags = seg.flags
            if flags & (dec.TCP_FIN | dec.TCP_RST):
                self.tls.forget(flow)
                self._candidates.pop(flow, None)
            elif flags & dec.TCP_SYN and not flags & dec.TCP_ACK and self._dns_map:
                self._opened(seg, flow, time)
            return []
        out: list[Observation]
        if seg.dport == DNS_PORT or seg.sport == DNS_PORT:
            out = []
            for msg in parse_dns_tcp(payload):
                out.extend(self._dns(seg, msg, "tcp", time))
            return out
        named = False  # whether this payload named a host (reported now or before)
        if seg.dport in TLS_PORTS or payload[0] == HANDSHAKE or flow in self.tls:
            got = self.tls.feed(flow, payload, seg.seq)
            c.evicted = self.tls.evicted + self.quic.evicted
            out = self._hello(seg, got, "tls", "tcp", time)
            named = isinstance(got, ClientHello) and got.sni is not None
        elif payload[:4] in METHOD_PREFIXES:
            host = parse_request(payload)
            out = []
            if isinstance(host, Malformed):
                c.malformed[host.kind] += 1
            elif host is not None:
                named = True
                obs = self._emit(seg, "http", "tcp", host, time)
                if obs is not None:
                    out.append(obs)
        else:
            out = []
        if self._candidates and flow in self._candidates and flow not in self.tls:
            # the client's first payload on a connection to a DNS-named address (a
            # ClientHello still arriving may yet name the host: wait for it)
            name = self._candidates.pop(flow)
            if not named:
                obs = self._emit(seg, "ip", "tcp", name, time)
                if obs is not None:
                    out.append(obs)
        return out

    def _opened(self, seg: dec.Segment, flow: tuple[bytes, int, bytes, int], time: float) -> None:
        """A SYN: remember the connection when a DNS answer named its server address."""
        known = self._dns_map.get((seg.src, seg.dst))
        if known is None or time - known[1] >= DNS_MAP_TTL:
            return
        cands = self._candidates
        cands[flow] = known[0]
        if len(cands) > MAX_CANDIDATES:
            cands.popitem(last=False)

    def run(self, frames: Iterable[tuple[int, bytes, float]]) -> Iterator[Observation]:
        """Feed frames in order and yield observations as they appear."""
        feed = self.feed
        for linktype, data, time in frames:
            yield from feed(linktype, data, time)

    def _quic(
        self, seg: dec.Segment, payload: bytes, time: float, *, guessed: bool = False
    ) -> list[Observation]:
        got = self.quic.feed(payload, (seg.src, seg.sport, seg.dst, seg.dport), now=time)
        self.counters.evicted = self.tls.evicted + self.quic.evicted
        if guessed and isinstance(got, Malformed):
            # on another port than 443 it may be a server's Initial or not QUIC at all
            self.counters.skipped["quic_other_port_unreadable"] += 1
            return []
        return self._hello(seg, got, "quic", "udp", time, version=self.quic.version)

    def _dns(
        self, seg: dec.Segment, msg: DnsMessage | Malformed, transport: Transport, time: float
    ) -> list[Observation]:
        if isinstance(msg, Malformed):
            self.counters.malformed[msg.kind] += 1
            return []
        if msg.opcode != OPCODE_QUERY:
            return []  # other opcodes (NOTIFY, UPDATE) name zones, not hosts someone wants
        if msg.response != (seg.dport != DNS_PORT):
            return []  # only queries to port 53 and answers from it
        if msg.addresses and msg.questions:
            self._remember(seg.dst, msg.questions[0].name, msg.addresses, time)
        out = []
        for q in msg.questions:
            if q.name == ".":
                continue
            # an answer repeats the question: it counts for the query's flow (once, with the
            # query), and names the host when the query itself was not captured
            obs = self._emit(
                seg, "dns", transport, q.name, time, qtype=q.qtype, reverse=msg.response
            )
            if obs is not None:
                out.append(obs)
        return out

    def _remember(
        self, client: bytes, name: str, addresses: tuple[bytes, ...], time: float
    ) -> None:
        m = self._dns_map
        for addr in addresses:
            key = (client, addr)
            m.pop(key, None)  # to the back: the newest answer wins, the oldest go first
            m[key] = (name, time)
        while len(m) > MAX_DNS_MAP:
            m.popitem(last=False)

    def _hello(
        self,
        seg: dec.Segment,
        got: ClientHello | Malformed | None,
        protocol: Protocol,
        transport: Transport,
        time: float,
        *,
        version: int | None = None,
    ) -> list[Observation]:
        if got is None:
            return []
        if isinstance(got, Malformed):
            self.counters.malformed[got.kind] += 1
            return []
        if got.sni is None:
            self.counters.skipped[f"{protocol}_no_sni"] += 1
            return []
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
        reverse: bool = False,
    ) -> Observation | None:
        if reverse:
            client, cport, server, sport = seg.dst, seg.dport, seg.src, seg.sport
        else:
            client, cport, server, sport = seg.src, seg.sport, seg.dst, seg.dport
        key = (seg.proto, client, cport, server, sport, hostname)
        seen = self._seen
        ttl = self.dedup_ttl
        t0 = seen.get(key)
        if t0 is not None:
            if time - t0 < ttl:
                self.counters.duplicates += 1
                return None
            del seen[key]  # reported long enough ago: report again
        seen[key] = time
        if len(seen) > self.max_dedup:
            seen.popitem(last=False)
        if time >= self._expire_at:
            # the time bound: entries are in report order, so the expired ones are at the
            # front; the next look is due when the (new) oldest one expires
            while True:
                oldest = next(iter(seen.items()))
                if time - oldest[1] < ttl:
                    self._expire_at = oldest[1] + ttl
                    break
                del seen[oldest[0]]
        counters = self.counters
        counters.observations += 1
        counters.protocols[protocol] += 1
        names = self._names
        if len(names) > _NAME_CACHE:
            names.clear()
        client_text = names.get(client)
        if client_text is None:
            client_text = names[client] = dec.address_text(client)
        server_text = names.get(server)
        if server_text is None:
            server_text = names[server] = dec.address_text(server)
        platform: str | None = None
        if self.classify is not None:
            platforms = self._platforms
            platform = platforms.get(hostname, _UNSEEN)
            if platform is _UNSEEN:
                if len(platforms) > _NAME_CACHE:
                    platforms.clear()
                platform = platforms[hostname] = self.classify(hostname)
        # positional: a keyword call costs a third more, and this runs per observation
        return Observation(
            time,
            client_text,
            server_text,
            protocol,
            hostname,
            ech,
            transport,
            cport,
            sport,
            alpn,
            qtype,
            version,
            platform,
        )


def observe(
    frames: Iterable[tuple[int, bytes, float]], classify: Classify | None = None
) -> Iterator[Observation]:
    """Observations from frames with a fresh ``Sensor``."""
    return Sensor(classify).run(frames)
