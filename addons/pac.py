"""The proxy serves its own PAC file: ``GET /proxy.pac`` and ``GET /wpad.dat``.

Devices in explicit mode read the proxy auto-config from the proxy itself
(``http://PROXY:PORT/proxy.pac``), generated from the district's catalogue as it is now (a
catalogue reload changes the next answer; browsers re-read within ``max-age``).

Only a request addressed to the proxy itself is answered, never one for some other site that
happens to have that path: it must arrive on a regular (explicit) proxy listener as plain
HTTP, outside any CONNECT tunnel, and name the proxy as its host and port: the address the
client connected to (the listener's own address on that connection), or ``monitor_pac_proxy``.
Everything else goes on as any other request.

Option:
  monitor_pac_proxy  HOST:PORT written in the PAC file, and accepted as the proxy's own name
                     (default: the address and port the client connected to)
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any

from mitmproxy import exceptions, http
from mitmproxy.proxy.mode_specs import RegularMode

from monitor.gateway.pac import MEDIA_TYPE, parse_proxy_address, render_pac
from monitor.platforms.catalogue import Catalogue

from .runtime import Runtime

log = logging.getLogger("monitor")

PATHS = frozenset({"/proxy.pac", "/wpad.dat"})
MAX_AGE = 300  # seconds: a catalogue change reaches browsers within five minutes


def _same_host(a: str, b: str) -> bool:
    """Host names compared without case and trailing dot; addresses by value (an IPv4 address
    equals its IPv4-mapped IPv6 form, as a dual-stack listener reports it)."""

    def norm(h: str) -> str:
        h = h.strip("[]").lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            return h
        mapped = getattr(ip, "ipv4_mapped", None)
        return str(mapped or ip)

    return norm(a) == norm(b)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Pac:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.public: tuple[str, int] | None = None
        self._cache: dict[tuple[int, str], bytes] = {}
        self._catalogue: Catalogue | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "monitor_pac_proxy",
            str,
            "",
            "HOST:PORT of the proxy as devices reach it, written in the PAC file served at "
            "/proxy.pac and /wpad.dat (and accepted there as the proxy's own name); default: "
            "the address and port each client connected to.",
        )

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        if "monitor_pac_proxy" in updated:
            value = ctx.options.monitor_pac_proxy
            if not value:
                self.public = None
                return
            try:
                host, _, port = parse_proxy_address(value).rpartition(":")
            except ValueError as e:
                raise exceptions.OptionsError(f"monitor_pac_proxy: {e}") from e
            self.public = (host.strip("[]"), int(port))
            self._cache.clear()

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        district = self.rt.district
        if district is None or not self.addressed_to_proxy(flow):
            return
        req = flow.request
        if req.method not in ("GET", "HEAD") or req.path.split("?", 1)[0] not in PATHS:
            return
        body = self.pac(district.catalogue, self.proxy_for(flow))
        flow.metadata["monitor_pac"] = True
        headers = {"Content-Type": MEDIA_TYPE, "Cache-Control": f"max-age={MAX_AGE}"}
        if req.method == "GET":
            flow.response = http.Response.make(200, body, headers)
        else:  # HEAD: the headers a GET would get, no body
            flow.response = http.Response.make(200, b"", headers)
            flow.response.headers["Content-Length"] = str(len(body))

    def addressed_to_proxy(self, flow: http.HTTPFlow) -> bool:
        """Plain HTTP sent to this proxy itself on an explicit-mode listener: not a request
        for another host (``GET http://elsewhere/proxy.pac``), not one inside a CONNECT
        tunnel (its server is the tunnel's destination), not a transparent one."""
        client = flow.client_conn
        if not isinstance(client.proxy_mode, RegularMode) or client.tls:
            return False
        if flow.server_conn.address is not None or flow.request.scheme != "http":
            return False
        host, port = flow.request.host, flow.request.port
        if self.public is not None and port == self.public[1] and _same_host(host, self.public[0]):
            return True
        local = client.sockname
        return bool(local) and port == local[1] and _same_host(host, str(local[0]))

    def proxy_for(self, flow: http.HTTPFlow) -> str:
        """The HOST:PORT the PAC file names: the configured one, else the listener's address
        as this client reached it."""
        if self.public is not None:
            return _hostport(*self.public)
        local = flow.client_conn.sockname
        host = str(local[0])
        try:
            ip = ipaddress.ip_address(host)
            host = str(getattr(ip, "ipv4_mapped", None) or ip)
        except ValueError:
            pass
        return _hostport(host, local[1])

    def pac(self, catalogue: Catalogue, proxy: str) -> bytes:
        """The rendered file, kept until the catalogue is reloaded."""
        if catalogue is not self._catalogue:
            self._cache.clear()
            self._catalogue = catalogue
        key = (id(catalogue), proxy)
        body = self._cache.get(key)
        if body is None:
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            body = render_pac(catalogue, proxy, generated=stamp).encode()
            if len(self._cache) > 64:  # one entry per listener address: a handful
                self._cache.clear()
            self._cache[key] = body
        return body
