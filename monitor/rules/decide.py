"""The decision engine: (person, device, platform, activity, time) → Decision. Pure.

* A host outside the catalogue (``platform is None``) is not this policy's business: allow,
  rule ``not-in-catalogue``.
* The age band comes from birthDate on the *local* date of ``when`` in the district's time
  zone, so a birthday changes the band at local midnight. Students without birthDate get the
  policy's ``missing_birthdate_band``; unknown people get ``unknown`` (see monitor.rules.policy).
* School hours are those of the person's first school, or of the device's school when the
  person has none.
* Rules: first match wins (compiled lookup, see ``Policy.candidates``), then the default.
* Teacher overrides turn a *block* into an *allow* (rule ``override:<id>``). The district
  policy lets students 12 and under use only platforms made for their age group (COPPA), and
  a teacher's permission cannot change a platform's terms, so overrides apply to students in
  the teen and adult bands, and to under-13s only on platforms designed for children. They
  never apply to bypass services (monitoring itself is not negotiable) nor to unknown people
  (whom would they name?). A student without birthDate counts as ``missing_birthdate_band``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from monitor.model import (
    STAFF_ROLES,
    STUDENT_ROLES,
    AgeBand,
    Decision,
    Device,
    Identity,
    Person,
    age_band_for,
    age_on,
)
from monitor.platforms.catalogue import ACTIVITIES, Platform
from monitor.rules.overrides import Override, OverrideSet
from monitor.rules.policy import Group, Policy

Who = Identity | Person | None

NOT_IN_CATALOGUE = Decision(
    "allow",
    "not-in-catalogue",
    "Not a platform in the district's catalogue: the social media policy does not apply.",
)


def _timestamp(when: datetime | float) -> float:
    if isinstance(when, float | int):
        return float(when)
    if when.tzinfo is None:
        raise ValueError(f"decide() needs an aware datetime, got naive {when.isoformat()}")
    return when.timestamp()


def _resolve(who: Who, device: Device | None) -> tuple[Person | None, Device | None]:
    if isinstance(who, Identity):
        return who.person, device if device is not None else who.device
    return who, device


def group_band(policy: Policy, person: Person | None, day: date) -> tuple[Group, AgeBand | None]:
    """Who the policy sees on ``day``: student with a band, staff, or unknown (with the fail-safe
    band). :func:`decide` inlines the same steps on its hot path."""
    if person is not None:
        role = person.role
        if role in STUDENT_ROLES:
            b = person.birth_date
            if b is None:
                return "student", policy.missing_birthdate_band
            return "student", age_band_for(age_on(b, day))
        if role in STAFF_ROLES:
            return "staff", None
    # no person, or a role the policy does not know (a guardian's account): fail safe
    return "unknown", policy.unknown_band_key


def schools_of(person: Person | None, device: Device | None) -> tuple[str, ...]:
    if person is not None and person.schools:
        return person.schools
    if device is not None and device.school:
        return (device.school,)
    return ()


def _override_applies(group: Group, band: AgeBand | None, platform: Platform) -> str:
    """'' when an override may apply; else why not (shown by explain)."""
    if group != "student":
        return "overrides apply to students only"
    if platform.is_bypass:
        return "overrides never apply to bypass services"
    if band == "under13" and not platform.designed_for_children:
        return (
            "overrides do not apply to students 12 and under on a platform not designed for "
            "children (COPPA)"
        )
    return ""


def decide(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    activity: str | None,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> Decision:
    """The decision for one request (or connection, with ``activity=None``).

    ``who`` is an Identity (its device is used when ``device`` is None), a Person or None;
    ``when`` is an aware datetime or a POSIX timestamp.
    """
    # This is the proxy's per-request path (target: p99 under 5 µs), hence the inlining.
    if platform is None:
        return NOT_IN_CATALOGUE
    if type(who) is Identity:
        person = who.person
        if device is None:
            device = who.device
    else:
        person = who  # type: ignore[assignment]
    ts = when if type(when) is float else _timestamp(when)
    tick = policy.clock.get(int(ts // 900))
    if tick is not None and tick[2] >= 0:
        day = tick[0]
    else:
        day, _, _ = policy.local(ts)
        tick = None

    group: Group
    band: AgeBand | None
    if person is not None and person.role in STUDENT_ROLES:
        group = "student"
        birth = person.birth_date
        if birth is None:
            band = policy.missing_birthdate_band
        else:
            band = age_band_for(age_on(birth, day))
    elif person is not None and person.role in STAFF_ROLES:
        group, band = "staff", None
    else:  # no person, or a role the policy does not know (a guardian's account): fail safe
        group, band = "unknown", policy.unknown_band_key

    hit = policy.table.get((group, band, platform.id, activity))
    cands = hit[1] if hit is not None and hit[0] is platform else None
    if cands is None:
        cands = policy.candidates(group, band, platform, activity)
    result = cands[-1][2]
    in_hours: bool | None = None
    for schools, hours, decision in cands:
        if schools is not None and not any(s in schools for s in schools_of(person, device)):
            continue
        if hours is not None:
            if in_hours is None:
                here = schools_of(person, device)
                if tick is not None:
                    weekday, minute = tick[1], tick[2] + int((ts - tick[3]) // 60)
                else:
                    _, weekday, minute = policy.local(ts)
                in_hours = policy.in_school_hours(here[0] if here else None, day, weekday, minute)
            if hours != in_hours:
                continue
        result = decision
        break

    if (
        result.action == "block"
        and overrides is not None
        and group == "student"
        and (band != "under13" or platform.designed_for_children)
        and not platform.is_bypass
    ):
        ov = overrides.active_for(person, platform.id, ts)  # type: ignore[arg-type]
        if ov is not None:
            return policy.override_decision(ov)
    return result


def needs_request(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> bool:
    """Whether the decision could depend on the request (method, path, headers → activity)
    or injects headers. False means :func:`connection_decision` holds for every request on
    the connection; the proxy may still choose to intercept to show a block page."""
    return connection_decision(policy, who, device, platform, when, overrides) is None


def connection_decision(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> Decision | None:
    """The one decision every activity gets, if there is one and it injects nothing."""
    if platform is None:
        return NOT_IN_CATALOGUE
    first: Decision | None = None
    for activity in ACTIVITIES:
        d = decide(policy, who, device, platform, activity, when, overrides)
        if d.action == "restrict":
            return None
        if first is None:
            first = d
        elif d is not first and d != first:
            return None
    return first


# ---------------------------------------------------------------- explain


@dataclass(frozen=True, slots=True)
class RuleCheck:
    rule_id: str
    line: int
    matched: bool
    failed: tuple[str, ...] = ()  # the conditions that did not hold


@dataclass(frozen=True)
class Explanation:
    """What ``monitor explain`` shows: inputs as the policy saw them, rules in order up to the
    first match, and the decision (identical to :func:`decide`'s)."""

    decision: Decision
    person: str | None  # sourcedId; never a name
    role: str | None
    group: Group
    treated_as: str
    band: AgeBand | None
    band_basis: str
    local_time: datetime
    schools: tuple[str, ...]
    in_school_hours: bool
    platform: str | None
    category: str | None
    approved: bool
    activity: str | None
    checks: tuple[RuleCheck, ...] = ()
    override: Override | None = None
    override_note: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "decision": {
                "action": d.action,
                "rule_id": d.rule_id,
                "reason": d.reason,
                "incident": d.incident,
                "headers": [list(h) for h in d.headers],
                "safe_search": d.safe_search,
            },
            "person": self.person,
            "role": self.role,
            "group": self.group,
            "treated_as": self.treated_as,
            "band": self.band,
            "band_basis": self.band_basis,
            "local_time": self.local_time.isoformat(),
            "schools": list(self.schools),
            "in_school_hours": self.in_school_hours,
            "platform": self.platform,
            "category": self.category,
            "approved": self.approved,
            "activity": self.activity,
            "checks": [
                {"rule": c.rule_id, "line": c.line, "matched": c.matched, "failed": list(c.failed)}
                for c in self.checks
            ],
            "override": self.override.id if self.override else None,
            "override_note": self.override_note,
        }


def _band_basis(policy: Policy, person: Person | None, group: Group, local: datetime) -> str:
    if group == "staff":
        return "staff: no age band"
    if group == "unknown":
        who = "no identified person" if person is None else f"role '{person.role}' is not known"
        if policy.unknown_role == "staff":
            return f"{who}: treated as staff (policy 'unknown')"
        return f"{who}: treated as a student, band {policy.unknown_band} (policy 'unknown')"
    assert person is not None
    if person.birth_date is None:
        return (
            f"no birthDate: band {policy.missing_birthdate_band} (policy 'missing_birthdate_band')"
        )
    age = age_on(person.birth_date, local.date())
    return f"age {age} on {local.date().isoformat()} ({policy.timezone})"


def explain(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    activity: str | None,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> Explanation:
    """Evaluate every rule in order, without the compiled table, and say why each failed."""
    person, device = _resolve(who, device)
    ts = _timestamp(when)
    local = datetime.fromtimestamp(ts, policy.tz)
    group, band = group_band(policy, person, local.date())
    schools = schools_of(person, device)
    in_hours = policy.in_school_hours(
        schools[0] if schools else None,
        local.date(),
        local.weekday(),
        local.hour * 60 + local.minute,
    )
    base: dict[str, Any] = {
        "person": person.sourced_id if person else None,
        "role": person.role if person else None,
        "group": group,
        "treated_as": policy.treated_as(group),
        "band": band,
        "band_basis": _band_basis(policy, person, group, local),
        "local_time": local,
        "schools": schools,
        "in_school_hours": in_hours,
        "activity": activity,
    }
    if platform is None:
        return Explanation(
            decision=NOT_IN_CATALOGUE, platform=None, category=None, approved=False, **base
        )
    approved = platform.id in policy.approved
    checks: list[RuleCheck] = []
    result = policy.default.decision
    for rule in policy.rules:
        failed = rule.match.static_failures(
            group, policy.treated_as(group), band, platform, approved, activity
        ) + rule.match.dynamic_failures(schools, in_hours)
        checks.append(RuleCheck(rule.id, rule.line, not failed, tuple(failed)))
        if not failed:
            result = rule.decision
            break
    else:
        checks.append(RuleCheck("default", policy.default.line, True))
    applied: Override | None = None
    note = ""
    active = overrides.active_for(person, platform.id, ts) if overrides and person else None
    if active is not None:
        why_not = _override_applies(group, band, platform)
        if result.action != "block":
            note = f"override {active.id} is active but the rule does not block"
        elif why_not:
            note = f"override {active.id} is active but not applied: {why_not}"
        else:
            applied = active
            note = f"override {active.id} granted by {active.granted_by} applies"
            result = policy.override_decision(active)
    return Explanation(
        decision=result,
        platform=platform.id,
        category=platform.category,
        approved=approved,
        checks=tuple(checks),
        override=applied,
        override_note=note,
        **base,
    )
