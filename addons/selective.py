"""Selective interception: decrypt only what the decision needs.

For each new connection: who is it (client address, proxy-auth user), what is it (SNI and the
CONNECT host, classified). Not in the catalogue → the TLS connection passes through untouched
(``ignore_connection``): the privacy promise. A catalogue connection whose decision cannot
depend on the request: allowed → passes through too; blocked → refused without decrypting,
unless it is a page host, where the person should see the block page. Everything else is
intercepted and decided per request by ``enforce``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mitmproxy import connection, http, tls
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.tls import parse_client_hello

from monitor.flow.engine import ConnectionPlan, plan_connection
from monitor.model import Identity
from monitor.rules.decide import group_band

from .runtime import Runtime

log = logging.getLogger("monitor")


@dataclass
class ConnState:
    """What we know about one client connection."""

    who: Identity
    proxy_user: str | None = None
    connect_host: str | None = None
    plan: ConnectionPlan | None = None
    plan_names: frozenset[str] = frozenset()  # the names ``plan`` was made from


def client_address(client: connection.Client) -> str:
    peer = client.peername
    return str(peer[0]) if peer else ""


def proxy_user(flow: http.HTTPFlow) -> str | None:
    """The username mitmproxy's proxyauth addon accepted for this flow, if any."""
    auth = flow.metadata.get("proxyauth")
    return str(auth[0]) if isinstance(auth, tuple) and auth else None


def fails_closed(who: Identity | None, runtime: Runtime) -> bool:
    """The failure mode for a flow whose handling raised: closed for under-13 and unknown
    students (the strict side of COPPA), open for everybody else."""
    if who is None or who.person is None:
        return True
    if not who.person.is_student or runtime.district is None:
        return False
    policy = runtime.district.policy
    _, band = group_band(policy, who.person, policy.local(runtime.now())[0])
    return band == "under13"


class Selective:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.conns: dict[str, ConnState] = {}

    def state(self, client: connection.Client, proxy_user: str | None = None) -> ConnState:
        st = self.conns.get(client.id)
        if st is None or (proxy_user and st.proxy_user != proxy_user):
            assert self.rt.district is not None
            who = self.rt.district.resolver.resolve(client_address(client), proxy_user)
            st = ConnState(who, proxy_user)
            self.conns[client.id] = st
        return st

    def client_disconnected(self, client: connection.Client) -> None:
        self.conns.pop(client.id, None)

    def plan(self, st: ConnState, *names: str | None) -> ConnectionPlan:
        """The plan for a connection from the names the client gave. The CONNECT, next_layer
        and tls_clienthello hooks usually see the same names: plan once per connection."""
        key = frozenset(n.lower() for n in names if n)
        if st.plan is None or st.plan_names != key:
            assert self.rt.district is not None
            st.plan = plan_connection(self.rt.district, st.who, names, self.rt.now())
            st.plan_names = key
        return st.plan

    def count(self, outcome: str, plan: ConnectionPlan) -> None:
        pid = plan.platform.id if plan.platform else "none"
        self.rt.metrics.connections.labels(outcome, pid).inc()

    def failed(self, client: connection.Client) -> bool:
        """Log and count a hook that raised; True when the connection must fail closed."""
        known = self.conns.get(client.id)
        closed = fails_closed(known.who if known else None, self.rt)
        self.rt.metrics.flow_errors.labels("closed" if closed else "open").inc()
        return closed

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Regular (explicit) proxy mode: the CONNECT names the host before any TLS."""
        if self.rt.district is None or flow.response is not None:
            return
        try:
            st = self.state(flow.client_conn, proxy_user(flow))
            st.connect_host = flow.request.host
            plan = self.plan(st, flow.request.host)
            if plan.outcome == "refuse":
                # cheapest refusal there is: no TLS, no upstream connection
                self.count("refused", plan)
                self._record_refusal(st, plan)
                flow.response = http.Response.make(
                    403,
                    b"Blocked by the district's policy.\n",
                    {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
                )
        except Exception:  # noqa: BLE001 - one flow must never take the proxy down
            log.exception("monitor: http_connect failed")
            if self.failed(flow.client_conn):
                flow.response = http.Response.make(
                    403, b"The district's filter could not check this.\n"
                )

    def next_layer(self, nl: layer.NextLayer) -> None:
        """Pass connections through before mitmproxy builds its TLS layers for them.

        Deciding here, on the ClientHello bytes, keeps a passed-through connection as cheap as
        mitmproxy's own ``ignore_hosts``: with ``ignore_connection`` in ``tls_clienthello``
        the TLS layers stay in the stack and every relayed chunk crosses them. Only the
        passthrough outcome is decided here; everything else goes on to ``tls_clienthello``.
        """
        if self.rt.district is None:
            return
        context = nl.context
        if context.client.transport_protocol != "tcp" or context.client.tls:
            return
        try:
            data = nl.data_client()
            if not starts_like_tls_record(data):
                return
            try:
                hello = parse_client_hello(data)
            except ValueError:
                return
            if hello is None:
                return  # incomplete: tls_clienthello decides once it has all of it
            st = self.state(context.client)
            plan = self.plan(st, hello.sni, st.connect_host, _server_host(context))
            if plan.outcome != "passthrough":
                return
            nl.layer = layers.TCPLayer(context, ignore=True)
            self.count("passthrough", plan)
        except Exception:  # noqa: BLE001 - fall back to tls_clienthello, which fails safe
            log.exception("monitor: next_layer failed")

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if self.rt.district is None:
            return
        client = data.context.client
        try:
            st = self.state(client)
            plan = self.plan(st, data.client_hello.sni, st.connect_host, _server_host(data.context))
            if plan.outcome == "passthrough":
                data.ignore_connection = True
                self.count("passthrough", plan)
            elif plan.outcome == "refuse":
                # Transparent mode has no CONNECT to answer: pass the bytes to nowhere. With
                # no server address the (lazy) upstream connection fails at once and the
                # client connection is closed, without decrypting anything.
                data.ignore_connection = True
                data.context.server.address = None
                self.count("refused", plan)
                self._record_refusal(st, plan)
            else:
                self.count("intercepted", plan)
        except Exception:  # noqa: BLE001 - one connection must never take the proxy down
            log.exception("monitor: tls_clienthello failed")
            # fail closed: intercept, so the request path decides (and fails closed again)
            data.ignore_connection = not self.failed(client)

    def _record_refusal(self, st: ConnState, plan: ConnectionPlan) -> None:
        """A refused connection is one blocked attempt: counted as a request (activity
        ``view``, since no request was read) and an incident when the rule asks for one."""
        r, district = plan.ruling, self.rt.district
        if r is None or plan.platform is None or district is None:
            return
        school = district.school_label(r.school)
        host, now = plan.host or "", self.rt.now()
        self.rt.record(st.who, r, school, plan.platform.id, "view", host, now, refused=True)


def _server_host(context: Context) -> str | None:
    addr = context.server.address
    return str(addr[0]) if addr else None
