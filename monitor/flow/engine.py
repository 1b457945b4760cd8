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
from monitor.model import Decision, Identity
from monitor.platforms.activity import request_activity
from monitor.platforms.catalogue import ACTIVITIES, Platform
from monitor.platforms.classify import normalise_host
from monitor.rules.decide import connection_decision, decide, group_band, schools_of

Outcome = Literal["passthrough", "intercept", "refuse"]


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    outcome: Outcome
    platform: Platform | None
    host: str | None  # normalised
    decision: Decision | None  # known for the whole connection, when it is


@dataclass(frozen=True, slots=True)
class Labels:
    """Bounded metric labels for one person."""

    age_band: str  # under13 | teen | adult | staff | unknown
    school: str  # school identifier | unknown


def labels(district: District, who: Identity, when: float) -> Labels:
    """The person's age band (``staff`` or ``unknown`` outside students) and school, as the
    policy sees them: the same band and school that :func:`monitor.rules.decide.decide` uses."""
    policy = district.policy
    group, band = group_band(policy, who.person, policy.local(when)[0])
    schools = schools_of(who.person, who.device)
    return Labels(
        band if group == "student" and band is not None else group,
        district.school_label(schools[0] if schools else None),
    )


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
    d = connection_decision(district.policy, who, None, platform, when, district.overrides)
    if d is not None and d.action == "allow":
        return ConnectionPlan("passthrough", platform, host, d)
    if d is None:
        # the decision depends on the request; but if every activity is blocked, the API and
        # media hosts can still be refused without decrypting (a page host shows the page)
        if not _blocked_for_every_activity(district, who, platform, when):
            return ConnectionPlan("intercept", platform, host, None)
        d = decide(district.policy, who, None, platform, None, when, district.overrides)
    if host is not None and platform.is_page_host(host):
        return ConnectionPlan("intercept", platform, host, d)
    return ConnectionPlan("refuse", platform, host, d)


def _blocked_for_every_activity(
    district: District, who: Identity, platform: Platform, when: float
) -> bool:
    policy, overrides = district.policy, district.overrides
    return all(
        decide(policy, who, None, platform, a, when, overrides).action == "block"
        for a in ACTIVITIES
    )


def decide_request(
    district: District,
    who: Identity,
    platform: Platform,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    when: float | datetime,
) -> tuple[str, Decision]:
    """The activity of one request and the decision for it."""
    activity = request_activity(
        platform, method, host, path, headers, district.classifier.platform_of
    )
    return activity, decide(
        district.policy, who, None, platform, activity, when, district.overrides
    )
