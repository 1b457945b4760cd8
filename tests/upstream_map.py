"""Test-only mitmproxy addon: every upstream connection goes to one local origin server.

The tests never leave 127.0.0.1: catalogue hosts (www.tiktok.com, …) and a non-catalogue
host are all served by the harness's origin, which holds certificates for them signed by a
test CA of its own. Loaded with ``mitmdump -s tests/upstream_map.py --set test_upstream=H:P``.
"""

from __future__ import annotations

from mitmproxy import ctx
from mitmproxy.proxy import server_hooks


class UpstreamMap:
    def __init__(self) -> None:
        self.original: dict[str, tuple[str, int]] = {}

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("test_upstream", str, "", "host:port every server connection goes to")
        loader.add_option("test_upstream_plain", str, "", "host:port for plain HTTP (port 80)")

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.address is None:
            return
        port = data.server.address[1]
        target = ctx.options.test_upstream_plain if port == 80 else ctx.options.test_upstream
        if target:
            host, _, p = target.rpartition(":")
            self.original[data.server.id] = data.server.address
            data.server.address = (host, int(p))

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        # put the name back, so that mitmproxy reuses this connection for the next request
        # to the same host (it matches connections by address)
        original = self.original.pop(data.server.id, None)
        if original is not None:
            # Server refuses a new address on an open connection (it would not move the
            # socket); the socket stays, only the name mitmproxy matches requests against
            # goes back to what the client asked for
            data.server.__dict__["address"] = original

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.original.pop(data.server.id, None)


addons = [UpstreamMap()]
