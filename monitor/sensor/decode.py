"""Link, IP and transport headers by hand: captured frame → (addresses, ports, payload).

Far cheaper than a full dissection: the sensor reads a few header fields and hands the
transport payload to the protocol parsers. Never raises: a frame it cannot read gives a short
reason string instead. Understands:

* link types (pcap LINKTYPE_*): Ethernet (1), raw IP (101, and 12/14 as old BSD files have
  them), IPv4 (228), IPv6 (229), BSD loopback/null (0, 108), Linux cooked capture v1 (113)
  and v2 (276), PPP (9), PPP in HDLC framing (50), Cisco HDLC (104), Linux NFLOG (239),
  Apple PKTAP (258: macOS ``-i pktap``, iOS ``rvictl``), IEEE 802.11 data frames (105), with
  radiotap (127) or PPI (192) headers;
* inside them: up to two VLAN tags (802.1Q, 802.1ad, QinQ), PPPoE sessions, MPLS label
  stacks, 802.2 LLC/SNAP (Wi-Fi);
* IPv4 (unfragmented) and IPv6 (with hop-by-hop, routing, destination-options and atomic
  fragment headers); TCP and UDP.

Encrypted Wi-Fi frames and IP fragments are skipped (``not_ip``, ``ip_fragment``).
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
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
MAX_VLAN_TAGS = 2
MAX_MPLS_LABELS = 8
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
NFULA_PAYLOAD = 9
_SNAP = b"\xaa\xaa\x03\x00\x00\x00"  # 802.2 LLC + SNAP header with an EtherType after it

TCP = 6
UDP = 17
_IPV6_EXT = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_MAX_IPV6_EXT = 8

# reasons (the "kind" a frame was not decoded, used as counter keys)
NOT_IP = "not_ip"
UNSUPPORTED_LINKTYPE = "unsupported_linktype"
LINK_TRUNCATED = "link_truncated"
IP_TRUNCATED = "ip_truncated"
IP_BAD_HEADER = "ip_bad_header"
IP_FRAGMENT = "ip_fragment"
NOT_TCP_UDP = "not_tcp_udp"
TCP_TRUNCATED = "tcp_truncated"
UDP_TRUNCATED = "udp_truncated"
#: reasons that mean a broken packet (the others mean a packet we do not look at)
MALFORMED_REASONS = frozenset(
    {LINK_TRUNCATED, IP_TRUNCATED, IP_BAD_HEADER, TCP_TRUNCATED, UDP_TRUNCATED}
)

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


class Segment(NamedTuple):
    """A transport segment. Addresses are raw (4 or 16 bytes); see ``address_text``."""

    src: bytes
    dst: bytes
    proto: int  # TCP or UDP
    sport: int
    dport: int
    payload: bytes
    seq: int = 0  # TCP only
    flags: int = 0  # TCP only


def address_text(addr: bytes) -> str:
    """IPv4 dotted quad or compressed IPv6 text of a raw address."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return socket.inet_ntop(socket.AF_INET6, addr)


_UDP_HDR = struct.Struct("!HHH")  # ports, length
_TCP_HDR = struct.Struct("!HHIxxxxBB")  # ports, sequence number, data offset, flags


def _transport(proto: int, src: bytes, dst: bytes, data: bytes, p: int) -> Segment | str:
    n = len(data)
    if proto == UDP:
        if p + 8 > n:
            return UDP_TRUNCATED
        sport, dport, ulen = _UDP_HDR.unpack_from(data, p)
        end = p + ulen if ulen >= 8 else n  # 0 is a jumbogram (RFC 2675): use the IP length
        if end > n:
            return UDP_TRUNCATED
        return Segment(src, dst, UDP, sport, dport, data[p + 8 : end])
    if proto == TCP:
        if p + 20 > n:
            return TCP_TRUNCATED
        sport, dport, seq, off, flags = _TCP_HDR.unpack_from(data, p)
        off = (off >> 4) * 4
        if off < 20 or p + off > n:
            return TCP_TRUNCATED
        return Segment(src, dst, TCP, sport, dport, data[p + off :], seq, flags)
    return NOT_TCP_UDP


def _ipv4(data: bytes, p: int) -> Segment | str:
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
    if (data[p + 6] & 0x3F) or data[p + 7]:
        return IP_FRAGMENT  # MF set or a non-zero offset: we do not reassemble
    if end < n:
        data = data[:end]  # Ethernet padding after a short packet
    return _transport(data[p + 9], data[p + 12 : p + 16], data[p + 16 : p + 20], data, p + ihl)


def _ipv6(data: bytes, p: int) -> Segment | str:
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
    nxt = data[p + 6]
    src = data[p + 8 : p + 24]
    dst = data[p + 24 : p + 40]
    q = p + 40
    for _ in range(_MAX_IPV6_EXT):
        if nxt in _IPV6_EXT:
            if q + 8 > end:
                return IP_TRUNCATED
            nxt, q = data[q], q + 8 + data[q + 1] * 8
        elif nxt == _IPV6_FRAGMENT:
            if q + 8 > end:
                return IP_TRUNCATED
            if (data[q + 2] << 8 | data[q + 3]) != 0:  # offset or M flag: a real fragment
                return IP_FRAGMENT
            nxt, q = data[q], q + 8
        else:
            break
    else:
        return IP_BAD_HEADER
    if q > end:
        return IP_TRUNCATED
    return _transport(nxt, src, dst, data, q)


def _by_ethertype(etype: int, data: bytes, p: int) -> Segment | str:
    if etype == ETH_IPV4:  # the common case first
        return _ipv4(data, p)
    if etype == ETH_IPV6:
        return _ipv6(data, p)
    n = len(data)
    tags = 0
    while etype in VLAN_TPIDS:
        tags += 1
        if tags > MAX_VLAN_TAGS:
            return NOT_IP
        if p + 4 > n:
            return LINK_TRUNCATED
        etype = (data[p + 2] << 8) | data[p + 3]
        p += 4
    if etype == ETH_IPV4:
        return _ipv4(data, p)
    if etype == ETH_IPV6:
        return _ipv6(data, p)
    if etype == ETH_PPPOE_SESSION:
        # version/type, code, session id, length, then the PPP protocol number
        if p + 8 > n:
            return LINK_TRUNCATED
        return _by_ppp_protocol((data[p + 6] << 8) | data[p + 7], data, p + 8)
    if etype in ETH_MPLS:
        for _ in range(MAX_MPLS_LABELS):
            if p + 4 > n:
                return LINK_TRUNCATED
            bottom = data[p + 2] & 0x01
            p += 4
            if bottom:
                return _by_version(data, p)  # an Ethernet pseudowire gives not_ip
        return NOT_IP
    return NOT_IP


def _by_ppp_protocol(proto: int, data: bytes, p: int) -> Segment | str:
    if proto == PPP_IPV4:
        return _ipv4(data, p)
    if proto == PPP_IPV6:
        return _ipv6(data, p)
    return NOT_IP


def _ppp(data: bytes, p: int) -> Segment | str:
    if p + 2 <= len(data) and data[p] == 0xFF and data[p + 1] == 0x03:
        p += 2  # HDLC address and control
    if p >= len(data):
        return LINK_TRUNCATED
    if data[p] & 0x01:  # protocol field compression: one byte
        return _by_ppp_protocol(data[p], data, p + 1)
    if p + 2 > len(data):
        return LINK_TRUNCATED
    return _by_ppp_protocol((data[p] << 8) | data[p + 1], data, p + 2)


def _nflog(data: bytes) -> Segment | str:
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


def _wifi(data: bytes, p: int) -> Segment | str:
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


def _by_version(data: bytes, p: int) -> Segment | str:
    if p >= len(data):
        return IP_TRUNCATED
    v = data[p] >> 4
    if v == 4:
        return _ipv4(data, p)
    if v == 6:
        return _ipv6(data, p)
    return NOT_IP


def decode(linktype: int, frame: bytes) -> Segment | str:
    """Decode one captured frame of the given pcap link type to a TCP/UDP segment.

    Returns a reason string (``not_ip``, ``ip_fragment``, ``tcp_truncated``, …) otherwise.
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
