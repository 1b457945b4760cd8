"""Teachers' pages: their own classes from the roster, and a platform opened for one of them (or
some of its students) for a while, within policy; what is active; revocation. Every grant,
refusal, revocation and expiry goes into the record of access.

A teacher sees a class only when the roster enrolls them in it with role teacher; never an
incident. Overrides never apply to students 12 and under on platforms not designed for
children, nor to bypass services (:mod:`monitor.rules.decide`): the class page lists who a
grant will not apply to before it is made, by first name or pseudonym (never a birthdate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from monitor.incidents.access import SYSTEM, AccessFilter, Actor
from monitor.incidents.events import pseudonym
from monitor.model import ClassSection, Person
from monitor.platforms.catalogue import Platform
from monitor.rules.decide import group_band, override_applies, window_words
from monitor.rules.overrides import Override
from monitor.rules.schema import format_duration
from monitor.web.auth import actor
from monitor.web.context import Review
from monitor.web.pages import Call, page, render

TEACHERS = ("teacher",)
MAX_REASON = 500
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_CLASS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
EXPIRY_LOOKBACK = timedelta(days=2)


@dataclass(frozen=True)
class Student:
    """A student as a teacher's page shows them: a first name or a pseudonym, and why an
    override on the chosen platform would not apply to them ('' when it would)."""

    sourced_id: str
    label: str
    excluded: str


def my_classes(review: Review, call: Call) -> list[ClassSection]:
    """The classes the signed-in teacher teaches (roster enrollments with role teacher)."""
    sid = call.user.account.sourced_id
    if not sid:
        return []
    roster = review.district.roster
    return sorted((c for c in roster.classes.values() if sid in c.teachers), key=lambda c: c.title)


def _label(review: Review, p: Person) -> str:
    if review.signin.teacher_names == "first_name" and p.given_name:
        return f"{p.given_name} {p.family_name[:1]}.".strip()
    return pseudonym(review.key, p.sourced_id)


def students_of(review: Review, cls: ClassSection, platform: Platform | None) -> list[Student]:
    people = review.district.roster.people
    policy = review.district.policy
    today = review.clock().astimezone(policy.tz).date()
    out = []
    for sid in cls.students:
        p = people.get(sid)
        if p is None:
            continue
        why = ""
        if platform is not None:
            group, band = group_band(policy, p, today)
            why = override_applies(group, band, platform)
        out.append(Student(sid, _label(review, p), why))
    return sorted(out, key=lambda s: s.label)


def _teacher(call: Call) -> Actor:
    return actor(call.user.account)


def _refuse(call: Call, status: int, message: str, detail: str) -> HTTPException:
    """Record a refused grant or revocation, and the error to raise."""
    call.review.access.record(_teacher(call), "override_refused", detail=detail[:1000])
    return HTTPException(status, message)


def _class_of(call: Call, class_id: str, doing: str) -> ClassSection:
    """The class when the signed-in teacher teaches it; 403 (recorded) otherwise."""
    if not _CLASS_ID.match(class_id):
        raise HTTPException(404)
    for c in my_classes(call.review, call):
        if c.sourced_id == class_id:
            return c
    raise _refuse(call, 403, "This is not one of your classes.", f"{doing} class {class_id}")


def _platforms(review: Review) -> list[Platform]:
    cat = review.district.catalogue
    return sorted((p for p in (cat.get(i) for i in cat.ids) if p and not p.is_bypass),
                  key=lambda p: p.name.lower())  # fmt: skip


def _targets(ov: Override, cls: ClassSection) -> bool:
    return ov.class_id == cls.sourced_id or bool(set(ov.students) & set(cls.students))


def _describe(review: Review, ov: Override) -> str:
    policy = review.district.policy
    who = ov.target_words()
    return (
        f"{ov.id}: {ov.platform} for {who}, {window_words(policy, ov)}; granted by "
        f"{ov.granted_by} ({ov.granted_by_role})"
    )


def _subjects(review: Review, ov: Override) -> list[str]:
    sids: tuple[str, ...] = ov.students
    if ov.class_id is not None:
        cls = review.district.roster.classes.get(ov.class_id)
        sids = cls.students if cls else ()
    return [pseudonym(review.key, s) for s in sids]


@page(*TEACHERS)
def classes(call: Call) -> Response:
    review = call.review
    mine = my_classes(review, call)
    now = review.clock()
    ids = {c.sourced_id for c in mine}
    active = [o for o in review.overrides.list(active_only=True, now=now)
              if o.class_id in ids or o.granted_by == call.user.account.sourced_id]  # fmt: skip
    return render(call.request, "teacher.html", user=call.user, classes=mine,
                  active=active, state=lambda o: o.status(now),
                  schools=review.school_names())  # fmt: skip


@page(*TEACHERS)
def class_page(call: Call) -> Response:
    review = call.review
    cls = _class_of(call, str(call.request.path_params["class_id"]), "viewed")
    platform = review.district.catalogue.get(call.arg("platform")) if call.arg("platform") else None
    if platform is not None and platform.is_bypass:
        platform = None
    students = students_of(review, cls, platform)
    now = review.clock()
    active = [o for o in review.overrides.list(active_only=True, now=now) if _targets(o, cls)]
    review.access.record(
        _teacher(call), "view_class", detail=f"class {cls.sourced_id} ({cls.title})",
        subjects=[pseudonym(review.key, s.sourced_id) for s in students],
    )  # fmt: skip
    policy = review.district.policy
    return render(
        call.request, "teacher_class.html", user=call.user, cls=cls, students=students,
        platform=platform, platforms=_platforms(review), active=active,
        state=lambda o: o.status(now), window=lambda o: window_words(policy, o),
        max_length=format_duration(policy.override_max_length),
        excluded=[s for s in students if s.excluded],
    )  # fmt: skip


def _ends(call: Call, now: datetime) -> datetime:
    review = call.review
    minutes, until = call.field("minutes"), call.field("until")
    if minutes and until:
        raise HTTPException(400, "Give either a number of minutes or an end time, not both.")
    if minutes:
        if not minutes.isdigit() or int(minutes) <= 0 or int(minutes) > 100_000:
            raise HTTPException(400, "minutes: a whole number of minutes, more than zero")
        return now + timedelta(minutes=int(minutes))
    m = _HHMM.match(until)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise HTTPException(400, "Give how long (minutes) or when the class period ends (HH:MM).")
    tz = review.district.policy.tz
    day = now.astimezone(tz).date()
    end = datetime(day.year, day.month, day.day, int(m.group(1)), int(m.group(2)), tzinfo=tz)
    if end <= now:
        raise HTTPException(400, f"{until} has passed today.")
    return end


@page(*TEACHERS)
def grant(call: Call) -> Response:
    review = call.review
    class_id = str(call.request.path_params["class_id"])
    cls = _class_of(call, class_id, "granted for")
    policy = review.district.policy
    platform = review.district.catalogue.get(call.field("platform"))
    if platform is None:
        raise HTTPException(400, "Choose a platform from the list.")
    if platform.is_bypass:
        raise _refuse(call, 400, f"{platform.name} is a bypass service: overrides never apply "
                      "to it.", f"bypass service {platform.id} for class {class_id}")  # fmt: skip
    # one checkbox per student, named "s:<sourcedId>" (only ticked ones are sent)
    chosen = tuple(k[2:] for k in call.form if k.startswith("s:") and len(k) > 2)
    if call.field("target") == "students":
        if not chosen:
            raise HTTPException(400, "Tick at least one student, or choose the whole class.")
        strangers = [s for s in chosen if s not in cls.students]
        if strangers:
            raise _refuse(call, 403, "Those students are not in this class.",
                          f"granted for students outside class {class_id}")  # fmt: skip
    reason = " ".join(call.field("reason").split())
    if len(reason) > MAX_REASON:
        raise HTTPException(400, f"reason: at most {MAX_REASON} characters")
    now = review.clock()
    ends = _ends(call, now)
    limit = policy.override_max_length
    if ends - now > limit:
        raise _refuse(
            call, 400,
            f"An override may last at most {format_duration(limit)} (the district's policy); "
            f"this one would last {format_duration(ends - now)}.",
            f"too long ({format_duration(ends - now)}) for class {class_id}, {platform.id}",
        )  # fmt: skip
    try:
        ov = review.overrides.grant(
            platform=platform.id, granted_by=call.user.account.sourced_id or "",
            granted_by_role="teacher",
            class_id=None if chosen and call.field("target") == "students" else cls.sourced_id,
            students=chosen if call.field("target") == "students" else (), ends=ends,
            reason=reason, now=now, max_length=limit, known_platforms=review.district.catalogue.ids,
        )  # fmt: skip
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    review.access.record(
        _teacher(call), "override_grant", detail=_describe(review, ov) + f"; class {cls.title}",
        reason=reason, subjects=_subjects(review, ov),
    )  # fmt: skip
    return RedirectResponse(f"/teacher/classes/{cls.sourced_id}", status_code=303)


@page(*TEACHERS)
def revoke(call: Call) -> Response:
    review = call.review
    oid = str(call.request.path_params["override_id"])
    ov = next((o for o in review.overrides.list(active_only=True, now=review.clock())
               if o.id == oid), None)  # fmt: skip
    mine = my_classes(review, call)
    if ov is None or not any(_targets(ov, c) for c in mine):
        raise _refuse(call, 403, "This is not an override for one of your classes, or it has "
                      "ended.", f"revoke {oid}")  # fmt: skip
    try:
        done = review.overrides.revoke(oid, call.user.account.sourced_id or "", review.clock())
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    review.access.record(_teacher(call), "override_revoke", detail=_describe(review, done),
                         subjects=_subjects(review, done))  # fmt: skip
    back = next((c.sourced_id for c in mine if _targets(done, c)), "")
    return RedirectResponse(f"/teacher/classes/{back}" if back else "/teacher", status_code=303)


def record_expiries(review: Review) -> int:
    """Put overrides that ended by themselves (not revoked) into the record of access, once
    each; returns how many were recorded. Run now and then by the app."""
    now = review.clock()
    ended = [o for o in review.overrides.current(now - EXPIRY_LOOKBACK)
             if o.status(now) == "expired" and o.effective_end == o.ends]  # fmt: skip
    if not ended:
        return 0
    seen = {
        r.detail.split(":", 1)[0]
        for r in review.access.list(
            AccessFilter(action="override_expired", since=now - 2 * EXPIRY_LOOKBACK), limit=10_000
        )
    }
    n = 0
    for ov in ended:
        if ov.id in seen:
            continue
        review.access.record(SYSTEM_EXPIRY, "override_expired", detail=_describe(review, ov),
                             reason=ov.reason, subjects=_subjects(review, ov))  # fmt: skip
        n += 1
    return n


SYSTEM_EXPIRY = Actor(SYSTEM.account, SYSTEM.role, "teacher override expiry")
