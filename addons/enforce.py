"""Enforcement on the request path: activity, decision, then block page, restriction headers
or nothing; and no HTTP/3 advertisements from catalogue hosts, so browsers stay on TCP
through the proxy."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from mitmproxy import http

from monitor.flow.blockpage import BlockInfo, render_html, render_json, wants_html
from monitor.flow.engine import decide_request
from monitor.model import Decision
from monitor.platforms.classify import normalise_host

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
            host = normalise_host(flow.request.pretty_host) or ""
            platform = district.classifier.platform_of_normalised(host) if host else None
            if platform is None and st.plan is not None and st.plan.platform is not None:
                # a Host header outside the catalogue on a catalogue TLS name: the TLS name counts
                platform = st.plan.platform
                host = st.plan.host or host
            if platform is None:
                return  # plain HTTP to a host outside the catalogue: not our business
            now = time.time()
            activity, ruling = decide_request(
                district,
                who,
                platform,
                flow.request.method,
                host,
                flow.request.path,
                decision_headers(flow.request.headers),
                now,
            )
            self.rt.metrics.decision_seconds.observe(time.perf_counter() - started)
            decision = ruling.decision
            flow.metadata["monitor"] = {
                "platform": platform.id,
                "activity": activity,
                "action": decision.action,
                "rule": decision.rule_id,
            }
            school = district.school_label(ruling.school)
            self.rt.record(who, ruling, school, platform.id, activity, host, now)
            if decision.action == "block":
                self._block(flow, platform.name, host, activity, decision, now)
            elif decision.action == "restrict":
                for name, value in decision.headers:
                    flow.request.headers[name] = value
        except Exception:  # noqa: BLE001 - one flow must never take the proxy down
            log.exception("monitor: request handling failed")
            if self.sel.failed(flow.client_conn):
                self._block(
                    flow, "this site", flow.request.pretty_host, "view", _FAILED, time.time()
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
