"""Observation → who (address → device → person), what (platform), the policy's decision, and
recording it like the proxy does: ``monitor_requests_total{source="sensor"}`` and incidents
through the district's recorder.

Choices, and why:

* **Activity ``view``.** A name in DNS, a ClientHello or a QUIC Initial says only that a
  client is opening the platform, the least a visit does; the proxy records its own
  connection-level refusals as ``view`` too, and the example district's table of decisions is
  for ``view``. So rules with ``activities: [view]`` apply, rules for posting or messaging do
  not (the sensor cannot see those).
* **A name is its alias's platform.** An observation whose ``via`` names a platform (a DNS
  query name whose CNAME chain reaches a platform's host, a STUN realm or software value that
  names a calling app) is judged and counted as that platform, under its own host name.
* **Only catalogue platforms are judged.** A name outside the catalogue is not the policy's
  business (``not-in-catalogue``, as the proxy passes such connections through untouched): its
  client address is not resolved to a person, and it is not counted in the request metrics.
* **Incidents come from the policy.** A decision whose rule names an ``incident`` severity
  becomes an incident with ``source="sensor"``: a public DoH resolver, a VPN or proxy service
  (catalogue platforms with ``bypass_kind``) seen from a student is one under the example
  district's ``bypass-student`` rule, whether it was named in DNS, TLS or QUIC.
* **QUIC to a blocked platform is a bypass.** The proxy does not carry UDP, so the gateway
  must drop UDP 443 and clients fall back to TCP through the proxy. An HTTP/3 ClientHello to
  a platform the policy *blocks* for that person (``view``) means the proxy was bypassed (or
  is about to be): it is recorded as an incident with rule id ``quic-bypass:<rule>``, the
  rule's severity (``medium`` when the rule has none) and a reason that says so. Put the
  sensor where it sees what leaves the network (the uplink, after the gateway's filter); on
  the inside interface it also reports attempts the gateway then dropped. ``restrict``
  decisions over QUIC (YouTube's restricted mode headers cannot be injected there) are counted
  with decision ``restrict`` but raise no incident.

Beside a transparent proxy (``monitor sensor --transparent-gateway``, the sensor on the
gateway's client-side interface) the proxy decides and records what the ruleset redirects to
it; the sensor sees the same connections, and the DNS lookups before them. Those are reported
but left to the proxy (``Judge.leave_to_proxy``), so one visit is one event: only what skipped
the proxy (QUIC, a connection to an address the resolver never put in the catalogue sets) is
counted and recorded here.

Privacy: output and incidents carry the keyed pseudonym (``incidents.pseudonym``), never a
name or roster id; host names are the sensor's escaped ones, normalised before use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.district import District
from monitor.flow.recording import DecisionLog
from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.model import Decision, Identity, Severity
from monitor.platforms.classify import normalise_host
from monitor.rules.decide import NOT_IN_CATALOGUE, Ruling, ruling
from monitor.sensor.model import Observation

ACTIVITY = "view"
QUIC_BYPASS_PREFIX = "quic-bypass:"
QUIC_BYPASS_SEVERITY: Severity = "medium"
_MAX_REASON = 1000  # the incident store's limit
NONE = "-"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy says about one observation.

    ``person`` is the pseudonym (``-`` unknown or not judged); ``age_band`` and ``school`` are
    the bounded metric labels (``-`` when not judged: the host is not a catalogue platform).
    """

    person: str
    age_band: str
    school: str
    platform: str | None
    host: str
    decision: Decision
    who: Identity | None = None
    ruling: Ruling | None = None

    @property
    def judged(self) -> bool:
        return self.platform is not None


def quic_bypass(decision: Decision) -> Decision:
    """The incident-raising form of a ``block`` seen over QUIC (see the module docstring)."""
    reason = (
        "The proxy was bypassed over QUIC (HTTP/3 on UDP port 443, which the district "
        "gateway should drop): this platform is blocked for this person. " + decision.reason
    )
    return Decision(
        "block",
        QUIC_BYPASS_PREFIX + decision.rule_id,
        reason[:_MAX_REASON],
        decision.incident or QUIC_BYPASS_SEVERITY,
    )


class Judge:
    """Decides and records observations against a district snapshot.

    ``district`` may be replaced (after a reload). ``log`` is None to decide without
    recording (no metrics, no incidents).
    """

    def __init__(self, district: District, key: bytes, log: DecisionLog | None = None) -> None:
        self.district = district
        self.key = key
        self.log = log
        #: observations the proxy decides and records itself (see the module docstring):
        #: judged and reported, but not counted or recorded here
        self.leave_to_proxy: Callable[[Observation], bool] | None = None

    def judge(self, obs: Observation) -> Verdict:
        """The verdict for one observation (pure: nothing is recorded)."""
        district = self.district
        catalogue = district.catalogue
        # the sensor's classify callback already gave the platform id (the district's
        # classifier); without one, classify here
        platform = catalogue.get(obs.platform) if obs.platform else None
        host = normalise_host(obs.hostname)  # None for escaped bytes, IP literals
        via = normalise_host(obs.via) if obs.via else None
        if host is None:
            host = via  # a STUN software value names its app by the app's host name
        if platform is None and host is not None:
            platform = district.classifier.platform_of_normalised(host)
            if platform is None and via is not None:
                platform = district.classifier.platform_of_normalised(via)
        if platform is None or host is None:
            return Verdict(NONE, NONE, NONE, None, obs.hostname, NOT_IN_CATALOGUE)
        who = district.resolver.resolve(obs.client)
        r = ruling(district.policy, who, None, platform, ACTIVITY, obs.time, district.overrides)
        if obs.protocol == "quic" and r.decision.action == "block":
            r = r._replace(decision=quic_bypass(r.decision))
        person = who.person
        return Verdict(
            pseudonym(self.key, person.sourced_id) if person is not None else NONE,
            r.band,
            district.school_label(r.school),
            platform.id,
            host,
            r.decision,
            who,
            r,
        )

    def record(self, obs: Observation, verdict: Verdict) -> IncidentEvent | None:
        """Count a judged observation and queue its incident when there is one."""
        if self.log is None or verdict.platform is None:
            return None
        assert verdict.who is not None and verdict.ruling is not None
        return self.log.record(
            verdict.who,
            verdict.ruling,
            verdict.school,
            verdict.platform,
            ACTIVITY,
            verdict.host,
            obs.time,
            source="sensor",
        )

    def __call__(self, obs: Observation) -> Verdict:
        """Judge and record one observation."""
        verdict = self.judge(obs)
        if verdict.judged and self.leave_to_proxy is not None and self.leave_to_proxy(obs):
            return verdict
        self.record(obs, verdict)
        return verdict


def redirected_to_proxy(in_catalogue_sets: Callable[[str], bool]) -> Callable[[Observation], bool]:
    """What a transparent gateway hands to its proxy: a DNS lookup (the connection that
    follows is judged where it goes), and TCP 80 or 443 to an address in the catalogue sets
    (``in_catalogue_sets``), which the ruleset redirects."""

    def redirected(obs: Observation) -> bool:
        if obs.protocol == "dns":
            return True
        return (
            obs.transport == "tcp"
            and obs.server_port in (80, 443)
            and in_catalogue_sets(obs.server)
        )

    return redirected
