"""Link, IP and transport headers by hand: captured frame → (addresses, ports, payload).

Far cheaper than a full dissection: the sensor reads a few header fields and hands the
transport payload to the protocol parsers. Never raises: a frame it cannot read gives a short
reason string instead. Understands:

* link types (pcap LINKTYPE_*): Ethernet (1), raw IP (101, and 12/14 as old BSD files have
  them), IPv4 (228), IPv6 (229), BSD loopback/null (0, 108; address families 2, and 10, 24,
  28, 30 for IPv6), Linux cooked capture v1 (113) and v2 (276), PPP (9), PPP in HDLC framing
  (50), Cisco HDLC (104), Linux NFLOG (239), Apple PKTAP (258: macOS ``-i pktap``, iOS
  ``rvictl``), IEEE 802.11 data frames (105), with radiotap (127) or PPI (192) headers;
* inside them: VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100), PPPoE sessions,
  MPLS label stacks, 802.2 LLC/SNAP (Wi-Fi);
* tunnels: IP in IP (IPv4 protocol / IPv6 next header 4 and 41: 6in4, 4in4, 4in6, 6in6),
  GRE (RFC 2784/2890, with checksum, key and sequence number) carrying IPv4, IPv6, MPLS,
  Ethernet (transparent bridging 0x6558) or ERSPAN II/III mirror copies, PPTP's enhanced GRE
  (RFC 2637) carrying PPP, and VXLAN (UDP port 4789). A packet is read at the innermost IP
  header; ``Segment.tunnel`` names the outermost tunnel. Encapsulations (tunnels, VLAN tags,
  MPLS stacks, PPPoE) nest at most ``MAX_DEPTH`` deep (``encap_too_deep`` beyond);
* IPv4 (with options) and IPv6 (with hop-by-hop, routing, destination-options and fragment
  headers); TCP and UDP.

An IP fragment is returned as a ``Fragment`` for the caller to reassemble (``ipfrag``); the
reassembled datagram is read on with ``decode_reassembled``. Encrypted Wi-Fi frames are skipped
(``not_ip``).
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

# pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104
LINKTYPE_IEEE802_11 = 105
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_PPI = 192
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_PKTAP = 258
LINKTYPE_LINUX_SLL2 = 276
_DLT_RAW_ALIASES = (12, 14)  # DLT_RAW on OpenBSD / other BSDs, seen in old files
#: every link type ``decode`` reads
LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_PPP,
        LINKTYPE_PPP_HDLC,
        LINKTYPE_RAW,
        LINKTYPE_C_HDLC,
        LINKTYPE_IEEE802_11,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IEEE802_11_RADIOTAP,
        LINKTYPE_PPI,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_NFLOG,
        LINKTYPE_PKTAP,
        LINKTYPE_LINUX_SLL2,
        *_DLT_RAW_ALIASES,
    }
)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = frozenset({0x8847, 0x8848})
ETH_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame inside GRE
ETH_ERSPAN_2 = 0x88BE  # ERSPAN type I (no header) and II (8-byte header)
ETH_ERSPAN_3 = 0x22EB  # ERSPAN type III (12 bytes, and 8 more with the O flag)
ETH_PPP = 0x880B  # PPP inside PPTP's enhanced GRE
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
MAX_MPLS_LABELS = 8
#: encapsulation layers (tunnels, VLAN tags, MPLS stacks, PPPoE) read around one packet
MAX_DEPTH = 8
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
NFULA_PAYLOAD = 9
_SNAP = b"\xaa\xaa\x03\x00\x00\x00"  # 802.2 LLC + SNAP header with an EtherType after it

IPIP = 4  # IPv4 inside IP (protocol number / next header)
TCP = 6
UDP = 17
IPV6_IN_IP = 41
GRE = 47
VXLAN_PORT = 4789
_IPV6_EXT = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_MAX_IPV6_EXT = 8

# reasons (the "kind" a frame was not decoded, used as counter keys)
NOT_IP = "not_ip"
UNSUPPORTED_LINKTYPE = "unsupported_linktype"
LINK_TRUNCATED = "link_truncated"
IP_TRUNCATED = "ip_truncated"
IP_BAD_HEADER = "ip_bad_header"
IP_FRAGMENT = "ip_fragment"  # a fragment held for reassembly (see ``ipfrag``)
NOT_TCP_UDP = "not_tcp_udp"
TCP_TRUNCATED = "tcp_truncated"
UDP_TRUNCATED = "udp_truncated"
TUNNEL_TRUNCATED = "tunnel_truncated"
TUNNEL_UNSUPPORTED = "tunnel_unsupported"  # GRE with source routing or an unknown version
ENCAP_TOO_DEEP = "encap_too_deep"  # more than MAX_DEPTH encapsulations: refused
#: reasons that mean a broken (or refused) packet; the others mean a packet we do not look at
MALFORMED_REASONS = frozenset(
    {
        LINK_TRUNCATED,
        IP_TRUNCATED,
        IP_BAD_HEADER,
        TCP_TRUNCATED,
        UDP_TRUNCATED,
        TUNNEL_TRUNCATED,
        ENCAP_TOO_DEEP,
    }
)

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


class Segment(NamedTuple):
    """A transport segment. Addresses are raw (4 or 16 bytes); see ``address_text``.

    ``tunnel`` names the outermost tunnel it came through (``6in4``, ``gre``, ``vxlan``, …;
    empty when none).
    """

    src: bytes
    dst: bytes
    proto: int  # TCP or UDP
    sport: int
    dport: int
    payload: bytes
    seq: int = 0  # TCP only
    flags: int = 0  # TCP only
    tunnel: str = ""


class Fragment(NamedTuple):
    """One IP fragment: what reassembly needs, and where to read on once it is whole.

    ``proto`` is the IPv4 protocol or the IPv6 fragment header's next header; ``offset`` is in
    bytes; ``depth`` counts the encapsulations around this IP header.
    """

    version: int  # 4 or 6
    src: bytes
    dst: bytes
    proto: int
    ident: int
    offset: int
    more: bool
    payload: bytes
    depth: int = 0
    tunnel: str = ""


class Tunnelled(Segment):
    """A segment read inside a tunnel (its own class: a plain ``Segment`` is the fast path)."""


Decoded = Segment | Fragment | str


def address_text(addr: bytes) -> str:
    """IPv4 dotted quad or compressed IPv6 text of a raw address."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return socket.inet_ntop(socket.AF_INET6, addr)


_UDP_HDR = struct.Struct("!HHH")  # ports, length
_TCP_HDR = struct.Struct("!HHIxxxxBB")  # ports, sequence number, data offset, flags


def _tag(got: Decoded, kind: str) -> Decoded:
    """Name the tunnel a packet came through (the outermost one wins: called inside out)."""
    if isinstance(got, Segment):
        return Tunnelled(*got[:-1], kind)
    if type(got) is Fragment:
        return got._replace(tunnel=kind)
    return got


def _transport(proto: int, src: bytes, dst: bytes, data: bytes, p: int, depth: int) -> Decoded:
    n = len(data)
    if proto == UDP:
        if p + 8 > n:
            return UDP_TRUNCATED
        sport, dport, ulen = _UDP_HDR.unpack_from(data, p)
        end = p + ulen if ulen >= 8 else n  # 0 is a jumbogram (RFC 2675): use the IP length
        if end > n:
            return UDP_TRUNCATED
        if dport == VXLAN_PORT:
            return _vxlan(data[:end], p + 8, depth + 1)
        return Segment(src, dst, UDP, sport, dport, data[p + 8 : end])
    if proto == TCP:
        if p + 20 > n:
            return TCP_TRUNCATED
        sport, dport, seq, off, flags = _TCP_HDR.unpack_from(data, p)
        off = (off >> 4) * 4
        if off < 20 or p + off > n:
            return TCP_TRUNCATED
        return Segment(src, dst, TCP, sport, dport, data[p + off :], seq, flags)
    if proto == IPV6_IN_IP or proto == IPIP or proto == GRE:
        return _tunnel(proto, len(src) == 4, data, p, depth + 1)
    return NOT_TCP_UDP


def _tunnel(proto: int, outer_v4: bool, data: bytes, p: int, depth: int) -> Decoded:
    if depth > MAX_DEPTH:
        return ENCAP_TOO_DEEP
    if proto == IPV6_IN_IP:
        return _tag(_ipv6(data, p, depth), "6in4" if outer_v4 else "6in6")
    if proto == IPIP:
        return _tag(_ipv4(data, p, depth), "4in4" if outer_v4 else "4in6")
    return _gre(data, p, depth)


def _gre(data: bytes, p: int, depth: int) -> Decoded:
    """GRE (RFC 2784 with RFC 2890's key and sequence number) and PPTP's enhanced GRE."""
    n = len(data)
    if p + 4 > n:
        return TUNNEL_TRUNCATED
    f0, f1 = data[p], data[p + 1]
    proto = (data[p + 2] << 8) | data[p + 3]
    version = f1 & 0x07
    q = p + 4
    if version == 0:
        if f0 & 0x40:  # RFC 1701 source routing: obsolete, refused
            return TUNNEL_UNSUPPORTED
        q += 4 * ((f0 >> 7) + ((f0 >> 5) & 1) + ((f0 >> 4) & 1))  # checksum, key, sequence
        kind = "gre"
    elif version == 1:  # RFC 2637: key (payload length, call id) always, sequence, ack
        if proto != ETH_PPP or not f0 & 0x20:
            return TUNNEL_UNSUPPORTED
        if p + 8 > n:
            return TUNNEL_TRUNCATED
        if not ((data[p + 4] << 8) | data[p + 5]):
            return NOT_IP  # an acknowledgement without payload
        q += 4 + 4 * ((f0 >> 4) & 1) + 4 * (f1 >> 7)
        if q > n:
            return TUNNEL_TRUNCATED
        return _tag(_ppp(data, q, depth), "pptp")
    else:
        return TUNNEL_UNSUPPORTED
    if q > n:
        return TUNNEL_TRUNCATED
    if proto == ETH_IPV4:
        got = _ipv4(data, q, depth)
    elif proto == ETH_IPV6:
        got = _ipv6(data, q, depth)
    elif proto == ETH_TEB:
        got = _ethernet(data, q, depth)
    elif proto == ETH_ERSPAN_2:
        kind = "erspan"
        got = _ethernet(data, q + 8 if f0 & 0x10 else q, depth)  # type I has no header
    elif proto == ETH_ERSPAN_3:
        kind = "erspan"
        if q + 12 > n:
            return TUNNEL_TRUNCATED
        got = _ethernet(data, q + (20 if data[q + 11] & 0x01 else 12), depth)
    else:
        got = _by_ethertype(proto, data, q, depth)  # MPLS, VLAN-tagged, …
    return _tag(got, kind)


def _vxlan(data: bytes, p: int, depth: int) -> Decoded:
    # RFC 7348: flags (I), reserved, VNI, reserved; then an Ethernet frame
    if depth > MAX_DEPTH:
        return ENCAP_TOO_DEEP
    if p + 8 > len(data):
        return TUNNEL_TRUNCATED
    if not data[p] & 0x08:
        return NOT_IP  # no valid VNI: not VXLAN as RFC 7348 has it
    return _tag(_ethernet(data, p + 8, depth), "vxlan")


def _ethernet(data: bytes, p: int, depth: int) -> Decoded:
    if p + 14 > len(data):
        return TUNNEL_TRUNCATED
    return _by_ethertype((data[p + 12] << 8) | data[p + 13], data, p + 14, depth)


def _ipv4(data: bytes, p: int, depth: int = 0) -> Decoded:
    n = len(data)
    if p + 20 > n:
        return IP_TRUNCATED
    first = data[p]
    ihl = (first & 0x0F) * 4
    total = (data[p + 2] << 8) | data[p + 3]
    if total == 0:  # captured before TCP segmentation offload filled it in: use the frame
        total = n - p
    if first >> 4 != 4 or ihl < 20 or total < ihl:
        return IP_BAD_HEADER
    end = p + total
    if end > n:
        return IP_TRUNCATED  # cut by the capture's snap length
    if end < n:
        data = data[:end]  # Ethernet padding after a short packet
    if (data[p + 6] & 0x3F) or data[p + 7]:  # MF set or a non-zero offset
        return Fragment(
            4,
            data[p + 12 : p + 16],
            data[p + 16 : p + 20],
            data[p + 9],
            (data[p + 4] << 8) | data[p + 5],
            (((data[p + 6] & 0x1F) << 8) | data[p + 7]) * 8,
            bool(data[p + 6] & 0x20),
            data[p + ihl : end],
            depth,
        )
    return _transport(
        data[p + 9], data[p + 12 : p + 16], data[p + 16 : p + 20], data, p + ihl, depth
    )


def _ipv6(data: bytes, p: int, depth: int = 0) -> Decoded:
    n = len(data)
    if p + 40 > n:
        return IP_TRUNCATED
    if data[p] >> 4 != 6:
        return IP_BAD_HEADER
    plen = (data[p + 4] << 8) | data[p + 5]
    end = p + 40 + plen
    if end > n:
        return IP_TRUNCATED
    if end < n:
        data = data[:end]
    return _ipv6_chain(
        data[p + 6], data[p + 8 : p + 24], data[p + 24 : p + 40], data, p + 40, depth
    )


def _ipv6_chain(
    nxt: int, src: bytes, dst: bytes, data: bytes, q: int, depth: int, whole: bool = False
) -> Decoded:
    """The extension headers from ``q`` to the end of ``data``, then the transport.

    ``whole``: ``data`` is a reassembled payload, which must not hold another fragment.
    """
    end = len(data)
    for _ in range(_MAX_IPV6_EXT):
        if nxt in _IPV6_EXT:
            if q + 8 > end:
                return IP_TRUNCATED
            nxt, q = data[q], q + 8 + data[q + 1] * 8
        elif nxt == _IPV6_FRAGMENT:
            if q + 8 > end:
                return IP_TRUNCATED
            field = (data[q + 2] << 8) | data[q + 3]
            if field & 0xFFF9:  # offset or M flag: a real fragment (not an atomic one)
                if whole:
                    return IP_BAD_HEADER
                return Fragment(
                    6,
                    src,
                    dst,
                    data[q],
                    int.from_bytes(data[q + 4 : q + 8], "big"),
                    field & 0xFFF8,
                    bool(field & 0x01),
                    data[q + 8 :],
                    depth,
                )
            nxt, q = data[q], q + 8
        else:
            break
    else:
        return IP_BAD_HEADER
    if q > end:
        return IP_TRUNCATED
    return _transport(nxt, src, dst, data, q, depth)


def decode_reassembled(first: Fragment, payload: bytes) -> Decoded:
    """Read on into a reassembled IP payload (``first``: its offset-0 fragment)."""
    try:
        if first.version == 4:
            got = _transport(first.proto, first.src, first.dst, payload, 0, first.depth)
        else:
            got = _ipv6_chain(first.proto, first.src, first.dst, payload, 0, first.depth, True)
    except IndexError:
        return IP_BAD_HEADER
    return _tag(got, first.tunnel) if first.tunnel else got


def _by_ethertype(etype: int, data: bytes, p: int, depth: int = 0) -> Decoded:
    if etype == ETH_IPV4:  # the common case first
        return _ipv4(data, p, depth)
    if etype == ETH_IPV6:
        return _ipv6(data, p, depth)
    n = len(data)
    while etype in VLAN_TPIDS:
        depth += 1
        if depth > MAX_DEPTH:
            return ENCAP_TOO_DEEP
        if p + 4 > n:
            return LINK_TRUNCATED
        etype = (data[p + 2] << 8) | data[p + 3]
        p += 4
    if etype == ETH_IPV4:
        return _ipv4(data, p, depth)
    if etype == ETH_IPV6:
        return _ipv6(data, p, depth)
    if etype == ETH_PPPOE_SESSION:
        # version/type, code, session id, length, then the PPP protocol number
        if depth >= MAX_DEPTH:
            return ENCAP_TOO_DEEP
        if p + 8 > n:
            return LINK_TRUNCATED
        return _by_ppp_protocol((data[p + 6] << 8) | data[p + 7], data, p + 8, depth + 1)
    if etype in ETH_MPLS:
        if depth >= MAX_DEPTH:
            return ENCAP_TOO_DEEP
        for _ in range(MAX_MPLS_LABELS):
            if p + 4 > n:
                return LINK_TRUNCATED
            bottom = data[p + 2] & 0x01
            p += 4
            if bottom:
                return _by_version(data, p, depth + 1)  # an Ethernet pseudowire gives not_ip
        return ENCAP_TOO_DEEP
    return NOT_IP


def _by_ppp_protocol(proto: int, data: bytes, p: int, depth: int = 0) -> Decoded:
    if proto == PPP_IPV4:
        return _ipv4(data, p, depth)
    if proto == PPP_IPV6:
        return _ipv6(data, p, depth)
    return NOT_IP


def _ppp(data: bytes, p: int, depth: int = 0) -> Decoded:
    if p + 2 <= len(data) and data[p] == 0xFF and data[p + 1] == 0x03:
        p += 2  # HDLC address and control
    if p >= len(data):
        return LINK_TRUNCATED
    if data[p] & 0x01:  # protocol field compression: one byte
        return _by_ppp_protocol(data[p], data, p + 1, depth)
    if p + 2 > len(data):
        return LINK_TRUNCATED
    return _by_ppp_protocol((data[p] << 8) | data[p + 1], data, p + 2, depth)


def _nflog(data: bytes) -> Decoded:
    # family, version, resource id; then TLVs whose length and type are in the capturing
    # host's byte order (little-endian in practice), each padded to 4 bytes
    n = len(data)
    if n < 4:
        return LINK_TRUNCATED
    family = data[0]
    p = 4
    while p + 4 <= n:
        tlen = data[p] | (data[p + 1] << 8)
        ttype = (data[p + 2] | (data[p + 3] << 8)) & 0x7FFF
        if tlen < 4 or p + tlen > n:
            tlen = (data[p] << 8) | data[p + 1]  # a big-endian capturing host
            ttype = ((data[p + 2] << 8) | data[p + 3]) & 0x7FFF
            if tlen < 4 or p + tlen > n:
                return LINK_TRUNCATED
        if ttype == NFULA_PAYLOAD:
            payload = data[p + 4 : p + tlen]
            if family == 10:
                return _ipv6(payload, 0)
            return _by_version(payload, 0)
        p += (tlen + 3) & ~3
    return NOT_IP


def _wifi(data: bytes, p: int) -> Decoded:
    n = len(data)
    if p + 24 > n:
        return LINK_TRUNCATED
    fc0, fc1 = data[p], data[p + 1]
    if (fc0 >> 2) & 0x03 != 2:  # not a data frame (management, control)
        return NOT_IP
    if fc0 & 0x40 or fc1 & 0x40:  # null data (no body), or protected (encrypted)
        return NOT_IP
    hlen = 24
    if fc1 & 0x03 == 0x03:  # to and from the distribution system: a fourth address
        hlen += 6
    if fc0 & 0x80:  # QoS data
        hlen += 2
        if fc1 & 0x80:  # +HTC
            hlen += 4
    p += hlen
    if p + 8 > n:
        return LINK_TRUNCATED
    if data[p : p + 6] != _SNAP:
        return NOT_IP
    return _by_ethertype((data[p + 6] << 8) | data[p + 7], data, p + 8)


def _by_version(data: bytes, p: int, depth: int = 0) -> Decoded:
    if p >= len(data):
        return IP_TRUNCATED
    v = data[p] >> 4
    if v == 4:
        return _ipv4(data, p, depth)
    if v == 6:
        return _ipv6(data, p, depth)
    return NOT_IP


def decode(linktype: int, frame: bytes) -> Decoded:
    """Decode one captured frame of the given pcap link type to a TCP/UDP segment.

    Returns a ``Fragment`` for an IP fragment, and a reason string (``not_ip``,
    ``tcp_truncated``, ``encap_too_deep``, …) when there is no segment to read.
    """
    try:
        if linktype == LINKTYPE_ETHERNET:
            if len(frame) < 14:
                return LINK_TRUNCATED
            return _by_ethertype((frame[12] << 8) | frame[13], frame, 14)
        if linktype == LINKTYPE_LINUX_SLL:
            if len(frame) < 16:
                return LINK_TRUNCATED
            return _by_ethertype((frame[14] << 8) | frame[15], frame, 16)
        if linktype == LINKTYPE_LINUX_SLL2:
            if len(frame) < 20:
                return LINK_TRUNCATED
            return _by_ethertype((frame[0] << 8) | frame[1], frame, 20)
        if linktype == LINKTYPE_RAW or linktype in _DLT_RAW_ALIASES:
            return _by_version(frame, 0)
        if linktype == LINKTYPE_IPV4:
            return _ipv4(frame, 0)
        if linktype == LINKTYPE_IPV6:
            return _ipv6(frame, 0)
        if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if len(frame) < 4:
                return LINK_TRUNCATED
            # the address family, in the capturing host's byte order for NULL: try both
            fam = int.from_bytes(frame[:4], "big" if linktype == LINKTYPE_LOOP else "little")
            if fam > 0xFFFF:
                fam = int.from_bytes(frame[:4], "big")
            if fam == 2:
                return _ipv4(frame, 4)
            if fam in (10, 24, 28, 30):  # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
                return _ipv6(frame, 4)
            return NOT_IP
        if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            return _ppp(frame, 0)
        if linktype == LINKTYPE_C_HDLC:
            if len(frame) < 4:
                return LINK_TRUNCATED
            return _by_ethertype((frame[2] << 8) | frame[3], frame, 4)
        if linktype == LINKTYPE_NFLOG:
            return _nflog(frame)
        if linktype == LINKTYPE_IEEE802_11:
            return _wifi(frame, 0)
        if linktype == LINKTYPE_IEEE802_11_RADIOTAP:
            if len(frame) < 8:
                return LINK_TRUNCATED
            return _wifi(frame, frame[2] | (frame[3] << 8))
        if linktype == LINKTYPE_PPI:
            if len(frame) < 8:
                return LINK_TRUNCATED
            inner = int.from_bytes(frame[4:8], "little")
            if inner in (LINKTYPE_PPI, LINKTYPE_PKTAP):
                return NOT_IP
            return decode(inner, frame[frame[2] | (frame[3] << 8) :])
        if linktype == LINKTYPE_PKTAP:
            # Apple's packet tap (macOS "-i pktap", iOS rvictl): header length, next type,
            # the packet's own link type, …; little-endian
            if len(frame) < 12:
                return LINK_TRUNCATED
            hlen = int.from_bytes(frame[0:4], "little")
            inner = int.from_bytes(frame[8:12], "little")
            if hlen > len(frame):
                return LINK_TRUNCATED
            if hlen < 12 or inner in (LINKTYPE_PPI, LINKTYPE_PKTAP):
                return NOT_IP
            return decode(inner, frame[hlen:])
        return UNSUPPORTED_LINKTYPE
    except IndexError:  # a bug must not take a live sensor down on one packet
        return IP_BAD_HEADER
