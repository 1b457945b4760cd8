"""The incident list (filters, paging), one incident (review, assign) and the CSV export."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from monitor.incidents.events import STATUSES, UNKNOWN_PERSON, Incident
from monitor.incidents.store import IncidentFilter
from monitor.model import SEVERITIES
from monitor.web.accounts import Account
from monitor.web.auth import actor
from monitor.web.context import Review
from monitor.web.exports import incidents_csv
from monitor.web.pages import Call, local_time, page, query, render
from monitor.web.queries import apply_review, count_scoped, get_scoped, list_scoped

FILTERS = ("school", "platform", "severity", "status", "since", "until", "person")
PSEUDONYM = re.compile(r"p-[0-9a-f]{16}")
MAX_OFFSET = 10_000  # deeper than this, narrow the filters
MAX_NOTE = 2000
MAX_REASON = 500
REVIEWERS = ("counselor", "administrator")


# Dates a filter accepts: wide enough for any record, narrow enough that a day's start in
# the district's zone, the next day and their UTC times are all dates Python and the store hold.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)


def _day(value: str, name: str, review: Review) -> datetime:
    """The start of a day (ISO date) in the district's zone; 400 for anything else."""
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}: expected a date such as 2026-03-01") from None
    if not FIRST_DAY <= d <= LAST_DAY:
        raise HTTPException(400, f"{name}: expected a date between {FIRST_DAY} and {LAST_DAY}")
    return datetime.combine(d, time(0), review.tz)


def page_number(call: Call, size: int) -> tuple[int, int]:
    """The ``page`` parameter (1 when absent) and its offset; 400 when it is not a number or
    deeper than ``MAX_OFFSET``."""
    try:
        page_no = max(1, int(call.arg("page") or 1))
    except ValueError:
        raise HTTPException(400, "page: expected a number") from None
    offset = (page_no - 1) * size
    if offset > MAX_OFFSET:
        raise HTTPException(400, "That page is too deep: narrow the filters.")
    return page_no, offset


def parse_filters(
    review: Review, account: Account, values: Mapping[str, str]
) -> tuple[dict[str, str], IncidentFilter]:
    """The list filters from a query string or form: the raw values (for links and forms) and
    the store filter. Bad values are refused (400), a school outside the scope too (403)."""
    raw = {k: str(values.get(k, "")).strip() for k in FILTERS}
    if len(raw["platform"]) > 64:
        raise HTTPException(400, "platform: too long")
    if raw["school"] and not account.sees_school(raw["school"]):
        raise HTTPException(403, "That school is not one of yours.")
    if raw["severity"] and raw["severity"] not in SEVERITIES:
        raise HTTPException(400, f"severity: expected one of {', '.join(SEVERITIES)}")
    if raw["status"] and raw["status"] not in STATUSES:
        raise HTTPException(400, f"status: expected one of {', '.join(STATUSES)}")
    person = raw["person"]
    if person and person != UNKNOWN_PERSON and not PSEUDONYM.fullmatch(person):
        raise HTTPException(400, "student: expected a pseudonym such as p-0123456789abcdef")
    since = _day(raw["since"], "from", review) if raw["since"] else None
    until = _day(raw["until"], "to", review) + timedelta(days=1) if raw["until"] else None
    f = IncidentFilter(
        school=raw["school"] or None,
        platform=raw["platform"] or None,
        severity=raw["severity"] or None,
        status=raw["status"] or None,
        person=person or None,
        since=since,
        until=until,
    )
    return raw, f


def describe(raw: Mapping[str, str]) -> str:
    parts = [f"{k}={v}" for k, v in raw.items() if v]
    return "filters: " + (", ".join(parts) if parts else "none")


@page(*REVIEWERS)
def incident_list(call: Call) -> Response:
    review, account = call.review, call.user.account
    raw, f = parse_filters(review, account, call.request.query_params)
    size = review.settings.page_size
    page_no, offset = page_number(call, size)
    rows = list_scoped(review.store, f, account.scope, size + 1, offset)
    more, rows = len(rows) > size, rows[:size]
    cap = review.settings.count_cap
    total = count_scoped(review.store, f, account.scope, cap)
    review.access.record(
        actor(account),
        "list",
        person=f.person,
        detail=f"{describe(raw)}; page {page_no}, {len(rows)} shown",
        subjects=[i.person for i in rows],
    )
    schools = review.school_names()
    scope = account.scope
    choices = sorted(s for s in schools if scope is None or s in scope)
    return render(
        call.request,
        "incidents.html",
        user=call.user,
        rows=rows,
        raw=raw,
        page_no=page_no,
        more=more,
        total=total,
        capped=total >= cap,
        offset=offset,
        schools=schools,
        school_choices=choices,
        platforms=review.platforms(),
        severities=SEVERITIES,
        statuses=STATUSES,
        prev_q=query(**raw, page=page_no - 1 if page_no > 2 else None),
        next_q=query(**raw, page=page_no + 1),
        filters_q=query(**raw),
    )


def _incident(call: Call) -> Incident:
    inc = get_scoped(
        call.review.store, int(call.request.path_params["id"]), call.user.account.scope
    )
    if inc is None:
        # The same answer for "absent" and "another school's": ids reveal nothing.
        raise HTTPException(404)
    return inc


def assignees(review: Review, school: str) -> list[Account]:
    """Enabled accounts that may review incidents of ``school``."""
    return [
        a
        for a in review.accounts.list()
        if a.reviews_incidents and not a.disabled and a.sees_school(school)
    ]


def can_reveal(review: Review, account: Account, person: str) -> bool:
    """Administrators, and counselors of a school the student is enrolled in now."""
    if review.directory.find(person) is None:
        return False
    scope = account.scope
    if scope is None:
        return True
    return bool(set(review.directory.schools_of(person)) & set(scope))


@page(*REVIEWERS)
def incident_detail(call: Call) -> Response:
    review, account = call.review, call.user.account
    inc = _incident(call)
    review.access.record(actor(account), "view_incident", person=inc.person, incident_id=inc.id)
    return render(
        call.request,
        "incident.html",
        user=call.user,
        inc=inc,
        schools=review.school_names(),
        assignees=assignees(review, inc.school),
        can_reveal=can_reveal(review, account, inc.person),
        notes=inc.notes.splitlines(),
    )


_ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "new", "note": None}


@page(*REVIEWERS)
def incident_review(call: Call) -> Response:
    """Acknowledge, resolve or reopen, with a note (required to resolve)."""
    review, account = call.review, call.user.account
    inc = _incident(call)
    action = call.field("action")
    if action not in _ACTIONS:
        raise HTTPException(400, "action: expected acknowledge, resolve, reopen or note")
    note = " ".join(call.field("note").split())  # one line per note
    if len(note) > MAX_NOTE:
        raise HTTPException(400, f"note: at most {MAX_NOTE} characters")
    if action in ("resolve", "note") and not note:
        raise HTTPException(400, "note: write what was done (a note is required here)")
    status = _ACTIONS[action]
    line = None
    if note:
        line = f"{local_time(review, review.clock())} {account.username}: {note}"
    apply_review(review.store, inc.id, status=status, note=line)
    change = (
        f"status {inc.status} → {status}" if status and status != inc.status else "no status change"
    )
    review.access.record(
        actor(account),
        "review",
        person=inc.person,
        incident_id=inc.id,
        detail=f"{action}: {change}" + ("; note added" if note else ""),
    )
    return RedirectResponse(f"/incidents/{inc.id}", status_code=303)


@page(*REVIEWERS)
def incident_assign(call: Call) -> Response:
    review, account = call.review, call.user.account
    inc = _incident(call)
    who = call.field("assignee")
    if who and who not in {a.username for a in assignees(review, inc.school)}:
        raise HTTPException(400, "assignee: not an account that reviews this school")
    apply_review(review.store, inc.id, assignee=who or None, set_assignee=True)
    review.access.record(
        actor(account),
        "review",
        person=inc.person,
        incident_id=inc.id,
        detail=f"assigned to {who}" if who else "unassigned",
    )
    return RedirectResponse(f"/incidents/{inc.id}", status_code=303)


@page(*REVIEWERS)
def incident_export(call: Call) -> Response:
    """The filtered list as CSV (pseudonyms, never names), with the reason recorded."""
    review, account = call.review, call.user.account
    raw, f = parse_filters(review, account, call.form)
    reason = " ".join(call.field("reason").split())
    if not reason:
        raise HTTPException(400, "reason: say why you export these incidents")
    if len(reason) > MAX_REASON:
        raise HTTPException(400, f"reason: at most {MAX_REASON} characters")
    limit = review.settings.export_limit
    rows = list_scoped(review.store, f, account.scope, limit + 1)
    if len(rows) > limit:
        raise HTTPException(400, f"More than {limit} incidents: narrow the filters.")
    review.access.record(
        actor(account),
        "export_csv",
        person=f.person,
        reason=reason,
        detail=f"{describe(raw)}; {len(rows)} incidents",
        subjects=[i.person for i in rows],
    )
    stamp = review.clock().astimezone(review.tz).strftime("%Y%m%d-%H%M")
    return Response(
        incidents_csv(rows, review.tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents-{stamp}.csv"'},
    )
