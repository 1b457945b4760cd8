"""The proxy path without the proxy: who is it, what is it, what to do with the connection
and with each request. Pure functions over a :class:`District` snapshot; the mitmproxy addons
and the sensor are thin adapters over these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from monitor.district import District
from monitor.model import Identity
from monitor.platforms.activity import request_activity
from monitor.platforms.catalogue import Platform
from monitor.platforms.classify import normalise_host
from monitor.rules.decide import Ruling, blocked_for_every_activity, connection_decision, ruling

Outcome = Literal["passthrough", "intercept", "refuse"]
Name = tuple[Platform, str]  # a catalogue platform and the normalised host that named it

# How strict an outcome is: when the names of one connection disagree, the strictest wins.
_OUTCOME_RANK = {"passthrough": 0, "intercept": 1, "refuse": 3}
_ACTION_RANK = {"allow": 0, "restrict": 1, "block": 2}
_SEVERITY_RANK = {None: 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    outcome: Outcome
    platform: Platform | None
    host: str | None  # normalised
    ruling: Ruling | None  # when the connection is refused or blocked: what every request gets
    # every catalogue name the client gave (SNI, CONNECT host, destination): each request on
    # the connection is decided over all of them, with its own Host, strictest first
    names: tuple[Name, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestRuling:
    """The decision on one request, and the name it was made for (the strictest one)."""

    platform: Platform
    host: str
    activity: str
    ruling: Ruling


def catalogue_names(district: District, hosts: Iterable[str | None]) -> tuple[Name, ...]:
    """The distinct catalogue names among ``hosts`` (raw names, normalised here), in order."""
    out: list[Name] = []
    seen: set[str] = set()
    for raw in hosts:
        h = normalise_host(raw) if raw else None
        if h is None or h in seen:
            continue
        seen.add(h)
        p = district.classifier.platform_of_normalised(h)
        if p is not None:
            out.append((p, h))
    return tuple(out)


def plan_connection(
    district: District, who: Identity, hosts: tuple[str | None, ...], when: float
) -> ConnectionPlan:
    """What to do with a new TLS connection, from the names the client gave (SNI, CONNECT host,
    transparent destination).

    Not in the catalogue → pass through untouched. If the decision is the same for every
    request on the connection and injects no headers: allow → pass through; block → refuse
    without decrypting, unless it is a page host, where a person should see the block page.
    Otherwise intercept, to decide per request. A media host (video, images, static files) is
    planned on what a GET of content can be there (:func:`_plan_media`). When the names
    disagree (domain fronting: a CONNECT to one platform with the SNI of another), each is
    planned and the strictest plan wins: refuse, then intercept to block, then intercept, then
    pass through.
    """
    names = catalogue_names(district, hosts)
    if not names:
        first = next((h for raw in hosts if raw and (h := normalise_host(raw))), None)
        return ConnectionPlan("passthrough", None, first, None)
    best = _plan_one(district, who, *names[0], when)
    for platform, host in names[1:]:
        plan = _plan_one(district, who, platform, host, when)
        if _strictness(plan) > _strictness(best):
            best = plan
    return replace(best, names=names)


def _strictness(plan: ConnectionPlan) -> int:
    return _OUTCOME_RANK[plan.outcome] + (plan.outcome == "intercept" and plan.ruling is not None)


def _plan_one(
    district: District, who: Identity, platform: Platform, host: str, when: float
) -> ConnectionPlan:
    policy, overrides = district.policy, district.overrides
    if platform.is_media_host(host):
        return _plan_media(district, who, platform, host, when)
    d = connection_decision(policy, who, None, platform, when, overrides)
    if d is not None and d.action == "allow":
        return ConnectionPlan("passthrough", platform, host, None)
    if d is None and not blocked_for_every_activity(policy, who, None, platform, when, overrides):
        return ConnectionPlan("intercept", platform, host, None)
    # Blocked for every request. The ruling recorded for a refusal: the one decision every
    # activity gets (that of "view"), or, when rules differ by activity, the connection's own.
    r = ruling(policy, who, None, platform, "view" if d is not None else None, when, overrides)
    if platform.is_page_host(host):
        # the API and media hosts are refused without decrypting; a page host shows the page
        return ConnectionPlan("intercept", platform, host, r)
    return ConnectionPlan("refuse", platform, host, r)


def _plan_media(
    district: District, who: Identity, platform: Platform, host: str, when: float
) -> ConnectionPlan:
    """A media host carries GETs of content: ``view`` (``embed`` when another site's page
    loads it), ``stream``, and whatever a catalogue rule naming the host says it also takes
    (``Platform.media_activities``). Over those activities only:

    * none blocked (allowed, or restricted: restriction is a header the page and API hosts
      need, e.g. ``YouTube-Restrict``; a video segment carries no decision) → pass through;
    * all blocked → refuse without decrypting (nobody navigates to a media host, so there is
      no block page to show); the refusal is recorded as the ``view`` it stops;
    * some blocked, some not → intercept and decide per request, as for any other host.
    """
    policy, overrides = district.policy, district.overrides
    rulings = {
        a: ruling(policy, who, None, platform, a, when, overrides)
        for a in sorted(platform.media_activities(host))
    }
    blocked = [a for a, r in rulings.items() if r.decision.action == "block"]
    if not blocked:
        return ConnectionPlan("passthrough", platform, host, None)
    if len(blocked) == len(rulings):
        return ConnectionPlan("refuse", platform, host, rulings["view"])
    return ConnectionPlan("intercept", platform, host, None)


def decide_request(
    district: District,
    who: Identity,
    names: Sequence[Name],
    method: str,
    path: str,
    headers: Mapping[str, str],
    when: float | datetime,
) -> RequestRuling | None:
    """The decision on one request, over every catalogue name it carries: where it will
    actually be sent, its Host header, and its connection's names. The strictest wins (block,
    then restrict, then allow; then the higher incident severity; then the first name), so a
    Host header or SNI of an allowed platform never opens a blocked one. None: no catalogue
    name at all (not this policy's business)."""
    best: RequestRuling | None = None
    for platform, host in names:
        activity = request_activity(
            platform, method, host, path, headers, district.classifier.platform_of
        )
        r = ruling(district.policy, who, None, platform, activity, when, district.overrides)
        if best is None or _rank(r) > _rank(best.ruling):
            best = RequestRuling(platform, host, activity, r)
    return best


def _rank(r: Ruling) -> tuple[int, int]:
    d = r.decision
    return _ACTION_RANK[d.action], _SEVERITY_RANK[d.incident]
