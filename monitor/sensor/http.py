"""Plain HTTP request → the host it names (the ``Host`` header, or a CONNECT's target).

Only the host is kept: never the path, query string, cookies or any other header (metadata,
never content). HTTP on port 80 normally crosses the proxy; the sensor reads it for traffic
that does not (another port, an outside proxy reached with CONNECT, capture files). Pure;
never raises.
"""

from __future__ import annotations

from monitor.sensor.model import Malformed, printable_name

#: the first four bytes of a request line the sensor reads
METHOD_PREFIXES = frozenset(
    {b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN"}
)
_METHODS = frozenset(
    {b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"}
)
MAX_HEADER = 8192  # the Host header is searched in the first bytes only

BAD_REQUEST = Malformed("http_bad_request")


def _strip_port(authority: bytes) -> bytes:
    if authority.startswith(b"["):  # an IPv6 literal: not a host name, the classifier says so
        end = authority.find(b"]")
        return authority[: end + 1] if end > 0 else authority
    host, sep, port = authority.rpartition(b":")
    return host if sep and port.isdigit() else authority


def parse_request(data: bytes) -> str | Malformed | None:
    """The host named by the HTTP/1.x request at the start of ``data``.

    None when ``data`` does not start a request, or names no host within its first
    ``MAX_HEADER`` bytes (a request cut over several segments); Malformed when broken.
    """
    try:
        head = data[:MAX_HEADER]
        eol = head.find(b"\r\n")
        line = head if eol < 0 else head[:eol]
        parts = line.split(b" ")
        if len(parts) != 3 or parts[0] not in _METHODS or not parts[2].startswith(b"HTTP/1."):
            return None if eol < 0 else BAD_REQUEST
        target = parts[1]
        if parts[0] == b"CONNECT":
            host = _strip_port(target)
        else:
            host = b""
            low = head.lower()
            i = low.find(b"\r\nhost:", eol)
            if i >= 0:
                end = head.find(b"\r\n", i + 7)
                if end < 0:
                    return None  # the header continues in the next segment
                host = _strip_port(head[i + 7 : end].strip(b" \t"))
            elif target.startswith((b"http://", b"https://")):
                authority = target.split(b"/", 3)[2]
                host = _strip_port(authority.rpartition(b"@")[2])
            elif head.find(b"\r\n\r\n") < 0:
                return None  # headers not complete yet
        if not host:
            return None  # HTTP/1.0 needs no Host header
        return printable_name(host)
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return Malformed("http_unparsable")
