"""Frames → observations: decode, reassemble, dispatch to the DNS/TLS/QUIC/HTTP/STUN parsers,
deduplicate, classify.

The sensor reports one observation per flow (5-tuple, in the client's direction) and host
name, not one per packet: a retransmitted ClientHello, the hundreds of packets of a QUIC
connection, a DNS query and its answer give one. A flow and name seen again after
``dedup_ttl`` seconds (capture time) is reported again, so a long-lived flow that keeps
naming a host shows up once per period. State is bounded: the IP fragment reassembler, the TLS
reassembler, the QUIC reassembler and the deduplication table (at most ``max_dedup`` entries,
oldest dropped first, and none older than ``dedup_ttl``). Pure: the capture adapter
(``pcap.py``) feeds it frames.

What is read where: packets inside tunnels (IP in IP, GRE, VXLAN; see ``decode``) and IP
fragments once reassembled (``ipfrag``), like any other; DNS queries to port 53 and answers
from it (UDP and TCP); TLS ClientHellos on any TCP port (a flow whose first payload is a
handshake record); QUIC Initials to UDP port 443, and on other ports when a datagram looks
like a client Initial (long header, a known version, at least 1200 bytes); plaintext gQUIC
CHLOs to UDP 443; HTTP/1.x request hosts on any TCP port; STUN/TURN realms (and software names
that name an app) on any UDP port and at the start of TCP payloads, after a look at the magic
cookie (RFC 3489 STUN without one on ports 3478/3479 only).

Flows that carry no name (no SNI, a protocol of its own such as a messenger's) are named from
DNS: the addresses in a DNS answer are remembered per client (bounded, for ``DNS_MAP_TTL``),
and a TCP connection that client then opens to one of them, whose first payload names nothing,
is reported with the answer's question name and protocol ``ip``. Only then: a flow whose
ClientHello or request names a host is reported under that name alone, so a shared address
(a CDN's) does not lend one name to another's flows.

A DNS answer whose query name the classifier does not know, but whose CNAME chain reaches a
name it does (``www.example.edu`` → ``example.tiktokcdn.com``), is reported once more with the
query name and that platform, the chain's name in ``via``; so is a connection the answer
names. With no classifier, CNAME chains are not followed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from monitor.sensor import decode as dec
from monitor.sensor.dns import OPCODE_QUERY, DnsMessage, parse_dns, parse_dns_tcp
from monitor.sensor.gquic import gquic_version
from monitor.sensor.gquic import parse_datagram as parse_gquic
from monitor.sensor.http import METHOD_PREFIXES, parse_request
from monitor.sensor.ipfrag import FragmentReassembler
from monitor.sensor.model import Counters, Frame, Malformed, Observation, Protocol, Transport
from monitor.sensor.quic import VERSIONS as QUIC_VERSIONS
from monitor.sensor.quic import QuicReassembler
from monitor.sensor.stun import CLASSIC_PORTS, MAGIC_COOKIE, app_host, parse_stun
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
_METHOD_FIRST = frozenset(m[0] for m in METHOD_PREFIXES)

Classify = Callable[[str], str | None]


class _Reporter:
    """Observations out of names: deduplication, classification, the counters."""

    def __init__(self, classify: Classify | None, max_dedup: int, dedup_ttl: float) -> None:
        if dedup_ttl <= 0:
            raise ValueError(f"dedup_ttl must be positive, got {dedup_ttl}")
        self._classify = classify
        self.max_dedup = max_dedup
        self.dedup_ttl = dedup_ttl
        # flow + name → capture time of its report, oldest first (an OrderedDict pops its
        # front in O(1); a plain dict's front slowly fills with deleted slots)
        self._seen: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self._expire_at = float("-inf")
        self._counters = Counters()
        # small caches: the same clients, servers and names come back again and again
        self._names: dict[bytes, str] = {}
        self._platforms: dict[str, str | None] = {}

    @property
    def classify(self) -> Classify | None:
        """The host → platform callback (replaceable, e.g. after a catalogue reload)."""
        return self._classify

    @classify.setter
    def classify(self, fn: Classify | None) -> None:
        self._classify = fn
        self._platforms = {}

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
            self._counters.malformed[got.kind] += 1
            return []
        if got.sni is None:
            self._counters.skipped[f"{protocol}_no_sni"] += 1
            return []
        obs = self._emit(
            seg, protocol, transport, got.sni, time, ech=got.ech, alpn=got.alpn, version=version
        )
        return [] if obs is None else [obs]

    def _platform(self, name: str) -> str | None:
        """The classify callback's answer for ``name``, cached (None without a callback)."""
        if self._classify is None:
            return None
        platforms = self._platforms
        platform = platforms.get(name, _UNSEEN)
        if platform is _UNSEEN:
            if len(platforms) > _NAME_CACHE:
                platforms.clear()
            platform = platforms[name] = self._classify(name)
        return platform

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
        via: str | None = None,
    ) -> Observation | None:
        if reverse:
            client, cport, server, sport = seg.dst, seg.dport, seg.src, seg.sport
        else:
            client, cport, server, sport = seg.src, seg.sport, seg.dst, seg.dport
        key = (seg.proto, client, cport, server, sport, hostname, via)
        seen = self._seen
        ttl = self.dedup_ttl
        t0 = seen.get(key)
        if t0 is not None:
            if time - t0 < ttl:
                self._counters.duplicates += 1
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
        counters = self._counters
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
        name = hostname if via is None else via
        platform = self._platforms.get(name, _UNSEEN)
        if platform is _UNSEEN:
            platform = self._platform(name)
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
            via,
        )


class Sensor(_Reporter):
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
        fragments: FragmentReassembler | None = None,
    ) -> None:
        super().__init__(classify, max_dedup, dedup_ttl)
        self.tls = tls if tls is not None else TlsReassembler()
        self.quic = quic if quic is not None else QuicReassembler(done_ttl=dedup_ttl)
        self.fragments = fragments if fragments is not None else FragmentReassembler()
        # (client, server address) → (name, answer time, via), from DNS answers
        self._dns_map: OrderedDict[tuple[bytes, bytes], tuple[str, float, str | None]] = (
            OrderedDict()
        )
        # TCP flows opened to a named address → (name, via), until their first payload
        self._candidates: OrderedDict[tuple[bytes, int, bytes, int], tuple[str, str | None]] = (
            OrderedDict()
        )

    @property
    def counters(self) -> Counters:
        """What the sensor saw and dropped (read: the reassemblers' figures brought in)."""
        c = self._counters
        c.evicted = self.tls.evicted + self.quic.evicted + self.fragments.evicted
        if self.fragments.expired:
            c.reassembly["expired"] = self.fragments.expired
        return c

    @property
    def dedup_size(self) -> int:
        """Entries in the deduplication table."""
        return len(self._seen)

    def feed(self, linktype: int, frame: bytes, time: float) -> list[Observation]:
        """Process one frame; return the new observations it gave (usually none)."""
        c = self._counters
        c.packets += 1
        got = dec.decode(linktype, frame)
        if type(got) is dec.Segment:
            seg = got
        else:  # a reason, a fragment, or a segment out of a tunnel
            whole = self._not_a_segment(got, time)
            if whole is None:
                return []
            seg = whole
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
            elif seg.sport == DNS_PORT:
                return self._dns(seg, parse_dns(payload), "udp", time)
            elif (
                first & 0xC0 == 0xC0
                and len(payload) >= MIN_INITIAL
                and seg.sport != QUIC_PORT
                and payload[5] >= MIN_CLIENT_DCID
                and int.from_bytes(payload[1:5], "big") in QUIC_VERSIONS
            ):
                return self._quic(seg, payload, time, guessed=True)
            if first < 0x40 and len(payload) >= 20:  # STUN's first two bits are zero
                if payload[4:8] == MAGIC_COOKIE:
                    return self._stun(seg, payload, "udp", time)
                if dport in CLASSIC_PORTS or seg.sport in CLASSIC_PORTS:
                    return self._stun(seg, payload, "udp", time, classic=True)
            return []
        flow = (seg.src, seg.sport, seg.dst, seg.dport)
        flags = seg.flags
        if not payload:
            if flags & (dec.TCP_FIN | dec.TCP_RST):
                self.tls.forget(flow)
                self._candidates.pop(flow, None)
            elif flags & dec.TCP_SYN and not flags & dec.TCP_ACK:
                self.tls.syn(flow, seg.seq)
                if self._dns_map:
                    self._opened(seg, flow, time)
            return []
        seq = seg.seq
        if flags & dec.TCP_SYN:
            seq += 1  # data in a SYN (TCP Fast Open) starts after it
        tls = self.tls
        if tls.syns and flow in tls.syns and tls.early(flow, payload, seq):
            return []  # ahead of the flow's first bytes: held until they come
        out: list[Observation]
        if seg.dport == DNS_PORT or seg.sport == DNS_PORT:
            out = []
            for msg in parse_dns_tcp(payload):
                out.extend(self._dns(seg, msg, "tcp", time))
            return out
        named = False  # whether this payload named a host (reported now or before)
        if seg.dport in TLS_PORTS or payload[0] == HANDSHAKE or flow in tls:
            hello = tls.feed(flow, payload, seq)
            out = self._hello(seg, hello, "tls", "tcp", time)
            named = isinstance(hello, ClientHello) and hello.sni is not None
            if hello is None and payload[0] in _METHOD_FIRST and payload[:4] in METHOD_PREFIXES:
                out, named = self._http(seg, payload, time)  # not TLS after all
        elif payload[:4] in METHOD_PREFIXES:
            out, named = self._http(seg, payload, time)
        else:
            out = []
        if payload[0] < 0x02 and not out and payload[4:8] == MAGIC_COOKIE:
            out = self._stun(seg, payload, "tcp", time)  # TURN over TCP (RFC 8656 §3.1)
            named = bool(out)
        if self._candidates and flow in self._candidates and flow not in self.tls:
            # the client's first payload on a connection to a DNS-named address (a
            # ClientHello still arriving may yet name the host: wait for it)
            name, via = self._candidates.pop(flow)
            if not named:
                obs = self._emit(seg, "ip", "tcp", name, time, via=via)
                if obs is not None:
                    out.append(obs)
        return out

    def _http(
        self, seg: dec.Segment, payload: bytes, time: float
    ) -> tuple[list[Observation], bool]:
        """The host a request names: (observations, whether it named one)."""
        host = parse_request(payload)
        if isinstance(host, Malformed):
            self._counters.malformed[host.kind] += 1
            return [], False
        if host is None:
            return [], False
        obs = self._emit(seg, "http", "tcp", host, time)
        return ([] if obs is None else [obs]), True

    def _not_a_segment(self, got: dec.Decoded, time: float) -> dec.Segment | None:
        """Count a frame that gave a reason; reassemble one that gave a fragment."""
        c = self._counters
        while True:
            if isinstance(got, str):
                if got in dec.MALFORMED_REASONS:
                    c.undecodable += 1
                    c.malformed[got] += 1
                else:
                    c.skipped[got] += 1
                return None
            if isinstance(got, dec.Segment):
                if got.tunnel:
                    c.tunnels[got.tunnel] += 1
                return got
            whole = self.fragments.feed(got, time)
            if whole is None:
                c.skipped[dec.IP_FRAGMENT] += 1  # held until the datagram is whole
                return None
            if isinstance(whole, Malformed):
                c.malformed[whole.kind] += 1
                return None
            c.reassembly["ipv4" if whole[0].version == 4 else "ipv6"] += 1
            got = dec.decode_reassembled(*whole)  # a tunnel inside may hold a fragment again

    def _opened(self, seg: dec.Segment, flow: tuple[bytes, int, bytes, int], time: float) -> None:
        """A SYN: remember the connection when a DNS answer named its server address."""
        known = self._dns_map.get((seg.src, seg.dst))
        if known is None or time - known[1] >= DNS_MAP_TTL:
            return
        cands = self._candidates
        cands[flow] = (known[0], known[2])
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
        if guessed and isinstance(got, Malformed):
            # on another port than 443 it may be a server's Initial or not QUIC at all
            self._counters.skipped["quic_other_port_unreadable"] += 1
            return []
        return self._hello(seg, got, "quic", "udp", time, version=self.quic.version)

    def _stun(
        self,
        seg: dec.Segment,
        payload: bytes,
        transport: Transport,
        time: float,
        *,
        classic: bool = False,
    ) -> list[Observation]:
        msg = parse_stun(payload, classic=classic, stream=transport == "tcp")
        if msg is None:
            return []
        app = app_host(msg.realm) or app_host(msg.software)
        name = msg.realm or (msg.software if app is not None else None)
        if name is None:
            return []  # names nothing (binding checks, a relay's own software)
        via = app if self.classify is None or self._platform(name) is None else None
        obs = self._emit(seg, "stun", transport, name, time, reverse=msg.response, via=via)
        return [] if obs is None else [obs]

    def _dns(
        self, seg: dec.Segment, msg: DnsMessage | Malformed, transport: Transport, time: float
    ) -> list[Observation]:
        if isinstance(msg, Malformed):
            self._counters.malformed[msg.kind] += 1
            return []
        if msg.opcode != OPCODE_QUERY:
            return []  # other opcodes (NOTIFY, UPDATE) name zones, not hosts someone wants
        if msg.response != (seg.dport != DNS_PORT):
            return []  # only queries to port 53 and answers from it
        via = None  # a query name the classifier knows keeps its own platform
        if msg.cnames and self._platform(msg.questions[0].name) is None:
            via = next((n for n in msg.cnames if self._platform(n) is not None), None)
        if msg.addresses and msg.questions:
            self._remember(seg.dst, msg.questions[0].name, msg.addresses, time, via)
        out = []
        for q in msg.questions:
            # an answer repeats the question: it counts for the query's flow (once, with the
            # query), and names the host when the query itself was not captured; when its
            # CNAME chain names a platform, it is reported again, with that platform
            if q.name != ".":
                obs = self._emit(
                    seg, "dns", transport, q.name, time, qtype=q.qtype, reverse=msg.response,
                    via=via,
                )  # fmt: skip
                if obs is not None:
                    out.append(obs)
            via = None  # the chain is the first question's
        return out

    def _remember(
        self,
        client: bytes,
        name: str,
        addresses: tuple[bytes, ...],
        time: float,
        via: str | None,
    ) -> None:
        m = self._dns_map
        for addr in addresses:
            key = (client, addr)
            m.pop(key, None)  # to the back: the newest answer wins, the oldest go first
            m[key] = (name, time, via)
        while len(m) > MAX_DNS_MAP:
            m.popitem(last=False)


def observe(
    frames: Iterable[tuple[int, bytes, float]], classify: Classify | None = None
) -> Iterator[Observation]:
    """Observations from frames with a fresh ``Sensor``."""
    return Sensor(classify).run(frames)
