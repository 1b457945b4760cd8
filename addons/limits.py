"""Bounds on client connections: how many one address may hold open, and how long a new
connection may take to say what it wants (a slowloris defence).

Options (``--set name=value``):
  monitor_max_client_connections  open connections per client address (0: no limit)
  monitor_header_timeout          seconds from connect to the first complete request head:
                                  a CONNECT, an HTTP request's headers or a TLS ClientHello
                                  (0: no timeout)

A connection over the per-address limit is refused in ``client_connected`` by setting
``client.error``, which mitmproxy documents as the way to kill a connection there. mitmproxy has
no hook for "headers still incomplete" and no option for a header timeout (``tcp_timeout`` only
closes *idle* connections, and a slowloris client is never idle), so a timer per connection
closes it the way mitmproxy's own inactivity timeout does: by cancelling the connection's
handler task (``ConnectionHandler.on_timeout``). That runs on the event loop, lets the handler
close both sockets and fire ``client_disconnected`` as for any other close, and touches only a
connection that never produced a request, so no flow is cut short. Both are counted in
``monitor_client_connections_closed_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import connection, ctx, exceptions, http, tcp, tls
from mitmproxy.proxy import layer, layers

from .runtime import Runtime

log = logging.getLogger("monitor")

DEFAULT_MAX_PER_ADDRESS = 256  # a Chromebook opens tens; a browser caps itself at 32 per proxy
DEFAULT_HEADER_TIMEOUT = 15.0  # seconds; nginx allows 60 for a header, Apache 20–40


class Limits:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.max_per_address = DEFAULT_MAX_PER_ADDRESS
        self.header_timeout = DEFAULT_HEADER_TIMEOUT
        self.per_address: dict[str, int] = {}
        self.counted: set[str] = set()  # client ids counted in per_address
        self.waiting: dict[str, asyncio.TimerHandle] = {}  # client id → header timer

    def load(self, loader: Any) -> None:
        loader.add_option(
            "monitor_max_client_connections",
            int,
            DEFAULT_MAX_PER_ADDRESS,
            "Most connections one client address may hold open at once; more are refused "
            "(0: no limit).",
        )
        loader.add_option(
            "monitor_header_timeout",
            str,
            str(DEFAULT_HEADER_TIMEOUT),
            "Seconds a new client connection has to send its first complete request head "
            "(CONNECT, HTTP headers or TLS ClientHello) before it is closed (0: no timeout).",
        )

    def configure(self, updated: set[str]) -> None:
        if "monitor_max_client_connections" in updated:
            value = ctx.options.monitor_max_client_connections
            if value < 0:
                raise exceptions.OptionsError(
                    f"monitor_max_client_connections: {value} is negative (0: no limit)"
                )
            self.max_per_address = value
        if "monitor_header_timeout" in updated:
            raw = ctx.options.monitor_header_timeout
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 <= value <= 3600:
                raise exceptions.OptionsError(
                    f"monitor_header_timeout: {raw!r} is not a number of seconds from 0 to 3600"
                )
            self.header_timeout = value

    # -- connections ---------------------------------------------------------------------------

    def client_connected(self, client: connection.Client) -> None:
        address = str(client.peername[0]) if client.peername else ""
        n = self.per_address.get(address, 0)
        if self.max_per_address and n >= self.max_per_address:
            client.error = "too many connections from this address"
            self._count_closed("address_limit")
            return
        self.per_address[address] = n + 1
        self.counted.add(client.id)
        self.rt.metrics.client_connections.inc()
        if self.header_timeout > 0:
            loop = asyncio.get_running_loop()
            self.waiting[client.id] = loop.call_later(self.header_timeout, self._expire, client)

    def client_disconnected(self, client: connection.Client) -> None:
        self._started(client)
        if client.id not in self.counted:
            return
        self.counted.discard(client.id)
        self.rt.metrics.client_connections.dec()
        address = str(client.peername[0]) if client.peername else ""
        n = self.per_address.get(address, 1) - 1
        if n > 0:
            self.per_address[address] = n
        else:
            self.per_address.pop(address, None)

    # A complete request head of any kind: the connection is doing what connections do.

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._started(flow.client_conn)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._started(flow.client_conn)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        self._started(data.context.client)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._started(flow.client_conn)

    def next_layer(self, nl: layer.NextLayer) -> None:
        # a connection passed through as raw TCP (decided on its first bytes: a ClientHello
        # seen by Selective, loaded before this addon) is under way
        if isinstance(nl.layer, layers.TCPLayer):
            self._started(nl.context.client)

    def _started(self, client: connection.Client) -> None:
        timer = self.waiting.pop(client.id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, client: connection.Client) -> None:
        if self.waiting.pop(client.id, None) is None:
            return
        handler = _handler_of(client)
        if handler is None:
            return  # already gone
        self._count_closed("header_timeout")
        log.info(
            "monitor: closed a client connection that sent no complete request head in %gs",
            self.header_timeout,
        )
        asyncio.get_running_loop().create_task(handler.on_timeout())

    def _count_closed(self, reason: str) -> None:
        self.rt.metrics.client_connections_closed.labels(reason).inc()


def _handler_of(client: connection.Client) -> Any:
    """The live connection handler of ``client`` (mitmproxy's proxyserver addon keeps them by
    client id), or None."""
    server = ctx.master.addons.get("proxyserver")
    connections = getattr(server, "connections", None)
    return connections.get(client.id) if connections is not None else None
