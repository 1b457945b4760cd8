"""Link, IP and transport headers by hand: captured frame → (addresses, ports, payload).

Far cheaper than a full dissection: the sensor reads a few header fields and hands the
transport payload to the protocol parsers. Understands Ethernet (with one or two VLAN tags),
Linux cooked capture v1 and v2, raw IP, BSD loopback; IPv4 (unfragmented) and IPv6 (with
hop-by-hop, routing, destination-options and atomic-fragment headers); TCP and UDP.
Never raises: a frame it cannot read gives a short reason string instead.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

# pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_DLT_RAW_ALIASES = (12, 14)  # DLT_RAW on OpenBSD / other BSDs, seen in old files

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
MAX_VLAN_TAGS = 2

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


def _transport(proto: int, src: bytes, dst: bytes, data: bytes, p: int) -> Segment | str:
    n = len(data)
    if proto == UDP:
        if p + 8 > n:
            return UDP_TRUNCATED
        ulen = (data[p + 4] << 8) | data[p + 5]
        end = p + ulen if ulen >= 8 else n  # 0 is a jumbogram (RFC 2675): use the IP length
        if end > n:
            return UDP_TRUNCATED
        return Segment(
            src,
            dst,
            UDP,
            (data[p] << 8) | data[p + 1],
            (data[p + 2] << 8) | data[p + 3],
            data[p + 8 : end],
        )
    if proto == TCP:
        if p + 20 > n:
            return TCP_TRUNCATED
        off = (data[p + 12] >> 4) * 4
        if off < 20 or p + off > n:
            return TCP_TRUNCATED
        return Segment(
            src,
            dst,
            TCP,
            (data[p] << 8) | data[p + 1],
            (data[p + 2] << 8) | data[p + 3],
            data[p + off :],
            int.from_bytes(data[p + 4 : p + 8], "big"),
            data[p + 13],
        )
    return NOT_TCP_UDP


def _ipv4(data: bytes, p: int) -> Segment | str:
    n = len(data)
    if p + 20 > n:
        return IP_TRUNCATED
    ihl = (data[p] & 0x0F) * 4
    total = (data[p + 2] << 8) | data[p + 3]
    if total == 0:  # captured before TCP segmentation offload filled it in: use the frame
        total = n - p
    if data[p] >> 4 != 4 or ihl < 20 or total < ihl:
        return IP_BAD_HEADER
    if p + total > n:
        return IP_TRUNCATED  # cut by the capture's snap length
    if ((data[p + 6] & 0x3F) << 8) | data[p + 7]:
        return IP_FRAGMENT  # MF set or a non-zero offset: we do not reassemble
    if p + total < n:
        data = data[: p + total]  # Ethernet padding after a short packet
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
    if etype == ETH_IPV4:
        return _ipv4(data, p)
    if etype == ETH_IPV6:
        return _ipv6(data, p)
    return NOT_IP


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
            etype = (frame[12] << 8) | frame[13]
            p = 14
            tags = 0
            while etype in VLAN_TPIDS:
                tags += 1
                if tags > MAX_VLAN_TAGS:
                    return NOT_IP
                if p + 4 > len(frame):
                    return LINK_TRUNCATED
                etype = (frame[p + 2] << 8) | frame[p + 3]
                p += 4
            return _by_ethertype(etype, frame, p)
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
        return UNSUPPORTED_LINKTYPE
    except IndexError:  # a bug must not take a live sensor down on one packet
        return IP_BAD_HEADER
