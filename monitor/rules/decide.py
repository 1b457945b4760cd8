"""The decision: (person, device, platform, activity, time) → Decision. Pure.

* A host outside the catalogue (``platform is None``) is not this policy's business: allow,
  rule ``not-in-catalogue``.
* The age band comes from birthDate on the *local* date of ``when`` in the district's time
  zone, so a birthday changes the band at local midnight. Students without birthDate get the
  policy's ``missing_birthdate_band``; unknown people get ``unknown`` (see monitor.rules.schema).
* School hours are those of the person's first school, or of the device's school when the
  person has none.
* Rules: first match wins (compiled lookup, see ``Policy.candidates``), then the default.
* Teacher overrides turn a *block* into an *allow* (rule ``override:<id>``). The district
  policy lets students 12 and under use only platforms made for their age group (COPPA), and
  a teacher's permission cannot change a platform's terms, so overrides apply to students in
  the teen and adult bands, and to under-13s only on platforms designed for children. They
  never apply to bypass services (monitoring itself is not negotiable) nor to unknown people
  (whom would they name?). A student without birthDate counts as ``missing_birthdate_band``.

:func:`ruling` is :func:`decide` plus what the decision was made from (the band, the school, the
override), so that recording labels metrics and incidents without resolving the person again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

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
from monitor.rules.overrides import Override, OverrideSet, role_words
from monitor.rules.policy import Group, Policy

Who = Identity | Person | None

NOT_IN_CATALOGUE = Decision(
    "allow",
    "not-in-catalogue",
    "Not a platform in the district's catalogue: the social media policy does not apply.",
)


class Ruling(NamedTuple):
    """A decision with what it was made from (a tuple: the proxy makes one per request)."""

    decision: Decision
    # under13 | teen | adult for students, else staff or unknown ("" outside the catalogue)
    band: str
    school: str | None  # the person's (or device's) first school, as the roster names it
    override: Override | None = None  # the teacher override that turned a block into an allow


_NOT_IN_CATALOGUE = Ruling(NOT_IN_CATALOGUE, "", None)
# tuple.__new__ skips the generated __new__'s argument handling (a third of a decision's time)
_new = tuple.__new__


def timestamp(when: datetime | float) -> float:
    """POSIX seconds of an aware datetime (or of a timestamp already)."""
    if isinstance(when, float | int):
        return float(when)
    if when.tzinfo is None:
        raise ValueError(f"decide() needs an aware datetime, got naive {when.isoformat()}")
    return when.timestamp()


def resolve_who(who: Who, device: Device | None) -> tuple[Person | None, Device | None]:
    """The person and device behind ``who`` (an Identity's device unless one is given)."""
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


def band_label(group: Group, band: AgeBand | None) -> str:
    """The bounded label of a group and band: the band for students, else the group."""
    return band if group == "student" and band is not None else group


def schools_of(person: Person | None, device: Device | None) -> tuple[str, ...]:
    if person is not None and person.schools:
        return person.schools
    if device is not None and device.school:
        return (device.school,)
    return ()


def override_applies(group: Group, band: AgeBand | None, platform: Platform) -> str:
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


def window_words(policy: Policy, ov: Override) -> str:
    """When an override applies, in the district's local time."""
    s, e = ov.starts.astimezone(policy.tz), ov.ends.astimezone(policy.tz)
    if s.date() == e.date():
        window = f"{s:%H:%M}–{e:%H:%M} on {s:%a %d %b %Y}"
    else:
        window = f"{s:%a %d %b %Y %H:%M} to {e:%a %d %b %Y %H:%M}"
    return f"{window}, {policy.timezone} time"


def override_decision(policy: Policy, ov: Override) -> Decision:
    """The allow decision an active override produces; names the granter's role, not name."""
    # keyed by object identity (hashing a dataclass of datetimes costs more than the rest)
    memo = policy.override_memo
    hit = memo.get(id(ov))
    if hit is not None and hit[0] is ov:
        return hit[1]
    reason = (
        f"Allowed for a limited time by {role_words(ov.granted_by_role)}'s override "
        f"({window_words(policy, ov)})."
    )
    decision = Decision("allow", f"override:{ov.id}", reason)
    if len(memo) > 4096:
        memo.clear()
    memo[id(ov)] = (ov, decision)
    return decision


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
    return _decide(policy, who, device, platform, activity, when, overrides)[0]


def ruling(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    activity: str | None,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> Ruling:
    """:func:`decide`, with the band, school and override it used."""
    return _decide(policy, who, device, platform, activity, when, overrides)


def _decide(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform | None,
    activity: str | None,
    when: datetime | float,
    overrides: OverrideSet | None,
) -> Ruling:
    # This is the proxy's per-request path (target: p99 under 5 µs), hence the inlining.
    if platform is None:
        return _NOT_IN_CATALOGUE  # not this policy's business: nothing resolved
    if type(who) is Identity:
        person = who.person
        if device is None:
            device = who.device
    else:
        person = who  # type: ignore[assignment]
    ts = when if type(when) is float else timestamp(when)
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
        label: str = band
    elif person is not None and person.role in STAFF_ROLES:
        group, band, label = "staff", None, "staff"
    else:  # no person, or a role the policy does not know (a guardian's account): fail safe
        group, band, label = "unknown", policy.unknown_band_key, "unknown"
    if person is not None and person.schools:
        here = person.schools
    elif device is not None and device.school:
        here = (device.school,)
    else:
        here = ()
    school = here[0] if here else None

    hit = policy.table.get((group, band, platform.id, activity))
    cands = hit[1] if hit is not None and hit[0] is platform else None
    if cands is None:
        cands = policy.candidates(group, band, platform, activity)
    result = cands[-1][2]
    in_hours: bool | None = None
    for schools, hours, decision in cands:
        if schools is not None and not any(s in schools for s in here):
            continue
        if hours is not None:
            if in_hours is None:
                if tick is not None:
                    weekday, minute = tick[1], tick[2] + int((ts - tick[3]) // 60)
                else:
                    _, weekday, minute = policy.local(ts)
                in_hours = policy.in_school_hours(school, day, weekday, minute)
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
            return _new(Ruling, (override_decision(policy, ov), label, school, ov))
    return _new(Ruling, (result, label, school, None))


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


def blocked_for_every_activity(
    policy: Policy,
    who: Who,
    device: Device | None,
    platform: Platform,
    when: datetime | float,
    overrides: OverrideSet | None = None,
) -> bool:
    """Whether every activity on ``platform`` is blocked (so nothing need be decrypted)."""
    return all(
        decide(policy, who, device, platform, a, when, overrides).action == "block"
        for a in ACTIVITIES
    )
