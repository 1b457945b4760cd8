"""Who is on the other end: the connection's peer, unless the peer is one of the district's
reverse proxies, whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are then believed.

The address is written in the record of access and is what the sign-in limit counts per
address, so a header any local process can send must not change it: by default no proxy is
trusted and both headers are ignored. This is the app's own rule, whatever server runs it
(``monitor review`` turns uvicorn's forwarded-header handling off).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Proxy addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``), each value
    possibly a comma-separated list; ValueError names a value that is neither."""
    out: list[Network] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not a proxy address or network (such as 10.0.0.5 or 10.0.0.0/24)"
                ) from None
    return tuple(out)


def _address(value: str) -> Address | None:
    """An address in a forwarded header (``1.2.3.4``, ``1.2.3.4:5678``, ``::1``,
    ``[::1]:443``); None for anything else."""
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        value = host
    elif value.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class ForwardedHeaders:
    """ASGI middleware: when the peer is in ``proxies``, the client is the nearest address
    of ``X-Forwarded-For`` that is not itself a trusted proxy (read from the right, stopping
    at anything that is not an address) and the scheme is ``X-Forwarded-Proto``; otherwise
    the peer is the client and both headers are ignored."""

    def __init__(self, app: ASGIApp, proxies: Iterable[Network] = ()) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    def trusted(self, address: Address) -> bool:
        return any(address in net for net in self.proxies)

    def _peer_is_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.proxies or not client:
            return False
        try:
            return self.trusted(ipaddress.ip_address(client[0]))
        except ValueError:
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._peer_is_proxy(scope):
            chain: list[str] = []
            proto = ""
            for name, raw in scope.get("headers", []):
                if name == b"x-forwarded-for":
                    chain += raw.decode("latin-1").split(",")
                elif name == b"x-forwarded-proto":
                    proto = raw.decode("latin-1").split(",")[-1].strip().lower()
            client = scope["client"][0]
            for entry in reversed(chain):
                address = _address(entry)
                if address is None:
                    break
                client = str(address)
                if not self.trusted(address):
                    break
            scope = dict(scope, client=(client, 0))
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
