"""The proxy path without the proxy: who is it, what is it, what to do with the connection
and with each request. Pure functions over a :class:`District` snapshot; the mitmproxy addons
and the sensor are thin adapters over these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from monitor.district import District
from monitor.model import Identity
from monitor.platforms.activity import request_activity
from monitor.platforms.catalogue import Platform
from monitor.platforms.classify import normalise_host
from monitor.rules.decide import Ruling, blocked_for_every_activity, connection_decision, ruling

Outcome = Literal["passthrough", "intercept", "refuse"]


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    outcome: Outcome
    platform: Platform | None
    host: str | None  # normalised
    ruling: Ruling | None  # when the connection is refused or blocked: what every request gets


def plan_connection(
    district: District, who: Identity, hosts: tuple[str | None, ...], when: float
) -> ConnectionPlan:
    """What to do with a new TLS connection, from the names the client gave (SNI, CONNECT).

    Not in the catalogue → pass through untouched. If the decision is the same for every
    request on the connection and injects no headers: allow → pass through; block → refuse
    without decrypting, unless it is a page host, where a person should see the block page.
    Otherwise intercept, to decide per request.
    """
    platform: Platform | None = None
    host: str | None = None
    for raw in hosts:
        h = normalise_host(raw) if raw else None
        if h is None:
            continue
        p = district.classifier.platform_of_normalised(h)
        if p is not None:
            # any catalogue name wins: a fronted connection (SNI ≠ CONNECT host) is not a way out
            platform, host = p, h
            break
        if host is None:
            host = h
    if platform is None:
        return ConnectionPlan("passthrough", None, host, None)
    policy, overrides = district.policy, district.overrides
    d = connection_decision(policy, who, None, platform, when, overrides)
    if d is not None and d.action == "allow":
        return ConnectionPlan("passthrough", platform, host, None)
    if d is None and not blocked_for_every_activity(policy, who, None, platform, when, overrides):
        return ConnectionPlan("intercept", platform, host, None)
    # Blocked for every request. The ruling recorded for a refusal: the one decision every
    # activity gets (that of "view"), or, when rules differ by activity, the connection's own.
    r = ruling(policy, who, None, platform, "view" if d is not None else None, when, overrides)
    if host is not None and platform.is_page_host(host):
        # the API and media hosts are refused without decrypting; a page host shows the page
        return ConnectionPlan("intercept", platform, host, r)
    return ConnectionPlan("refuse", platform, host, r)


def decide_request(
    district: District,
    who: Identity,
    platform: Platform,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    when: float | datetime,
) -> tuple[str, Ruling]:
    """The activity of one request and the ruling on it."""
    activity = request_activity(
        platform, method, host, path, headers, district.classifier.platform_of
    )
    return activity, ruling(
        district.policy, who, None, platform, activity, when, district.overrides
    )
