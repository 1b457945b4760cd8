"""``monitor explain``: every rule in order, why each did not match, and the decision.

Evaluates the policy without the compiled table, so the answer can be read rule by rule; the
decision is always the one :func:`monitor.rules.decide.decide` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.model import AgeBand, Decision, Device, Person, age_on
from monitor.platforms.catalogue import Platform
from monitor.rules.decide import (
    NOT_IN_CATALOGUE,
    Who,
    group_band,
    override_applies,
    override_decision,
    resolve_who,
    schools_of,
    timestamp,
)
from monitor.rules.overrides import Override, OverrideSet, role_words
from monitor.rules.policy import Group, Policy


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
            "override_granted_by": self.override.granted_by if self.override else None,
            "override_granted_by_role": self.override.granted_by_role if self.override else None,
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
    person, device = resolve_who(who, device)
    ts = timestamp(when)
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
        why_not = override_applies(group, band, platform)
        if result.action != "block":
            note = f"override {active.id} is active but the rule does not block"
        elif why_not:
            note = f"override {active.id} is active but not applied: {why_not}"
        else:
            applied = active
            note = (
                f"override {active.id} ({active.platform} for {active.target_words()}) granted "
                f"by {active.granted_by}, {role_words(active.granted_by_role)}, applies"
            )
            result = override_decision(policy, active)
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
