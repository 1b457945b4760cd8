"""Value types of the passive sensor: what one packet (or flow) tells us, and what went wrong.

Pure data, no I/O. The parsers return these; the pipeline fills in addresses and time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

# where the name came from; "ip": the flow carried none, but a DNS answer to the same client
# had given the server's address for this name just before; "stun": a STUN/TURN message's
# REALM (or SOFTWARE) attribute, as calling apps send to their relays
Protocol = Literal["dns", "tls", "quic", "http", "ip", "stun"]
PROTOCOLS: tuple[Protocol, ...] = ("dns", "tls", "quic", "http", "ip", "stun")
Transport = Literal["udp", "tcp"]


class Frame(NamedTuple):
    """One captured frame: pcap link type, bytes, capture time (seconds since the epoch)."""

    linktype: int
    data: bytes
    time: float


@dataclass(frozen=True, slots=True)
class Malformed:
    """A parser's verdict on bytes that claim to be its protocol but are broken.

    ``kind`` is a short stable token (``tls_truncated``, ``dns_pointer_loop``, …) used as the
    key of the malformed-packet counters; it never carries packet content.
    """

    kind: str


@dataclass(frozen=True, slots=True)
class Observation:  # field order: the pipeline builds these positionally
    """One host name seen on the wire, from one flow.

    ``client`` and ``server`` are addresses as text (IPv4 dotted quad, IPv6 compressed form).
    ``hostname`` is the name exactly as the packet carried it, lowercased, with bytes that are
    not printable ASCII escaped as ``\\DDD`` (so it is safe to print; the classifier rejects it).
    ``ech`` is true when the ClientHello carried an Encrypted Client Hello extension: with a
    real one the hostname is only the outer (public) name, not the one the client wants;
    Chrome sends a placeholder ("GREASE") one with the real name outside.
    ``protocol`` says where the name came from (see ``Protocol``).
    ``via`` is the name that gave ``platform`` when ``hostname`` itself does not: for a DNS
    answer, the name in the query's CNAME chain that the classifier attributes (``hostname``
    is the query name); for STUN, the platform's host name that the realm or software value
    stands for (``hostname`` is that value). Judge and metrics count such an observation as
    the platform's. None otherwise.
    """

    time: float
    client: str
    server: str
    protocol: Protocol
    hostname: str
    ech: bool = False
    transport: Transport = "tcp"
    client_port: int = 0
    server_port: int = 0
    alpn: tuple[str, ...] = ()
    qtype: int | None = None  # DNS only
    version: int | None = None  # QUIC version only
    platform: str | None = None  # filled in by the pipeline's classify callback
    via: str | None = None


@dataclass(slots=True)
class Counters:
    """What the sensor saw and dropped.

    ``malformed`` counts broken or refused packets by kind (``ip_truncated``,
    ``tls_bad_sni``, ``dns_pointer_loop``, ``quic_decrypt_failed``, ``encap_too_deep``,
    ``ip_fragment_overlap``, ``tcp_overlap_conflict``, …); ``skipped`` counts packets that are
    fine but not for us (``not_ip``, ``tls_no_sni``, ``ip_fragment``: a fragment held for
    reassembly, …). ``tunnels`` counts packets read inside a tunnel by its kind (the outermost:
    ``6in4``, ``gre``, ``vxlan``, …); ``reassembly`` counts IP datagrams put back together
    (``ipv4``, ``ipv6``) and those dropped unfinished after the timeout (``expired``).
    """

    packets: int = 0
    undecodable: int = 0  # frames whose link/IP/transport headers are broken
    observations: int = 0
    duplicates: int = 0  # observations suppressed by the per-flow deduplication
    evicted: int = 0  # reassembly entries dropped to keep memory bounded
    malformed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)  # observations by protocol
    tunnels: Counter[str] = field(default_factory=Counter)
    reassembly: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy (kinds sorted)."""
        return {
            "packets": self.packets,
            "undecodable": self.undecodable,
            "observations": self.observations,
            "protocols": dict(sorted(self.protocols.items())),
            "duplicates": self.duplicates,
            "evicted": self.evicted,
            "malformed": dict(sorted(self.malformed.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "tunnels": dict(sorted(self.tunnels.items())),
            "reassembly": dict(sorted(self.reassembly.items())),
        }


def printable_name(raw: bytes, *, lower: bool = True) -> str:
    """ASCII text of a wire name (lowercased unless ``lower=False``); other bytes, space and
    backslash as ``\\DDD``.

    Keeps hostile bytes (control characters, newlines, tabs) out of logs and TSV output.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable() and " " not in text and "\\" not in text:
        return text.lower() if lower else text
    out = []
    for b in raw:
        if 0x21 <= b <= 0x7E and b != 0x5C:
            out.append(chr(b).lower() if lower else chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)
