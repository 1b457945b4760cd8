"""Enforcement on the request path: activity, decision, then block page, restriction headers
or nothing; and no HTTP/3 advertisements from catalogue hosts, so browsers stay on TCP
through the proxy."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from mitmproxy import http

from monitor.flow.blockpage import (
    BlockInfo,
    render_html,
    render_json,
    teacher_could_open,
    wants_html,
)
from monitor.flow.engine import Name, catalogue_names, decide_request
from monitor.model import Decision

from .runtime import Runtime
from .selective import Selective, proxy_user

log = logging.getLogger("monitor")

# The only request headers a decision reads (metadata, never content).
_DECISION_HEADERS = frozenset(
    {
        b"sec-fetch-mode",
        b"sec-fetch-dest",
        b"sec-fetch-site",
        b"origin",
        b"referer",
        b"content-type",
    }
)


def decision_headers(headers: http.Headers) -> dict[str, str]:
    """The few headers a decision reads, in a plain dict with lowercase names: one pass over
    the raw fields is several times cheaper than case-insensitive lookups one by one."""
    out: dict[str, str] = {}
    for name, value in headers.fields:
        lower = name.lower()
        if lower in _DECISION_HEADERS:
            out[lower.decode("ascii", "replace")] = value.decode("latin-1")
    return out


_FAILED = Decision(
    "block",
    "filter-error",
    "The district's filter could not check this request, so it was blocked to be safe. "
    "Try again in a moment.",
)


def _merge(first: tuple[Name, ...], more: tuple[Name, ...]) -> tuple[Name, ...]:
    """``first`` then the names of ``more`` it does not have yet."""
    hosts = {h for _, h in first}
    return first + tuple(n for n in more if n[1] not in hosts)


class Enforce:
    def __init__(self, runtime: Runtime, selective: Selective) -> None:
        self.rt = runtime
        self.sel = selective

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or self.rt.district is None:
            return
        started = time.perf_counter()
        try:
            district = self.rt.district
            st = self.sel.state(flow.client_conn, proxy_user(flow))
            who = st.who
            req = flow.request
            # where the request will go (the URL's host, or the connection's destination) and
            # its Host header, then the names its connection gave: the strictest decision wins
            names = catalogue_names(district, (req.host, req.pretty_host))
            if st.plan is not None and st.plan.names:
                names = _merge(names, st.plan.names)
            if not names:
                return  # plain HTTP to a host outside the catalogue: not our business
            now = self.rt.now()
            rr = decide_request(
                district, who, names, req.method, req.path, decision_headers(req.headers), now
            )
            if rr is None:
                return
            self.rt.metrics.decision_seconds.observe(time.perf_counter() - started)
            decision = rr.ruling.decision
            flow.metadata["monitor"] = {
                "platform": rr.platform.id,
                "activity": rr.activity,
                "action": decision.action,
                "rule": decision.rule_id,
            }
            school = district.school_label(rr.ruling.school)
            self.rt.record(who, rr.ruling, school, rr.platform.id, rr.activity, rr.host, now)
            if decision.action == "block":
                ask = teacher_could_open(rr.ruling.band, rr.platform)
                self._block(flow, rr.platform.name, rr.host, rr.activity, decision, now, ask)
            elif decision.action == "restrict":
                for name, value in decision.headers:
                    flow.request.headers[name] = value
        except Exception:  # noqa: BLE001 - one flow must never take the proxy down
            log.exception("monitor: request handling failed")
            if self.sel.failed(flow.client_conn):
                self._block(
                    flow, "this site", flow.request.pretty_host, "view", _FAILED, self.rt.now()
                )

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or "monitor" not in flow.metadata:
            return
        # Keep browsers on TCP through the proxy: mitmproxy does not carry QUIC here.
        flow.response.headers.pop("alt-svc", None)

    def _block(
        self,
        flow: http.HTTPFlow,
        platform_name: str,
        host: str,
        activity: str,
        decision: Decision,
        now: float,
        ask_teacher: bool = False,
    ) -> None:
        district = self.rt.district
        assert district is not None
        policy = district.policy
        info = BlockInfo(
            district=policy.district,
            contact=policy.contact,
            platform_name=platform_name,
            host=host,
            activity=activity,
            rule_id=decision.rule_id,
            reason=decision.reason,
            when=datetime.fromtimestamp(now, policy.tz).strftime("%Y-%m-%d %H:%M %Z"),
            ask_teacher=policy.ask_teacher if ask_teacher else "",
        )
        headers = {"Cache-Control": "no-store", "X-Monitor-Rule": decision.rule_id}
        if wants_html(flow.request.headers):
            headers["Content-Type"] = "text/html; charset=utf-8"
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
            body = render_html(info).encode()
        else:
            headers["Content-Type"] = "application/json"
            body = render_json(info).encode()
        flow.response = http.Response.make(403, body, headers)
