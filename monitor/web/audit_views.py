"""The record of access for auditors: the log with filters, and a per-student access report
(printable page or CSV)."""

from __future__ import annotations

from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.responses import Response

from monitor.incidents.access import ACTIONS, AccessFilter
from monitor.web.auth import actor
from monitor.web.exports import access_csv
from monitor.web.incident_views import PSEUDONYM, _day, page_number
from monitor.web.pages import Call, page, query, render

AUDITORS = ("auditor", "administrator")
PAGE = 100


@page(*AUDITORS)
def access_log(call: Call) -> Response:
    review = call.review
    raw = {k: call.arg(k) for k in ("account", "action", "person", "since", "until")}
    if raw["action"] and raw["action"] not in ACTIONS:
        raise HTTPException(400, "action: not a known action")
    if len(raw["account"]) > 64 or len(raw["person"]) > 64:
        raise HTTPException(400, "account or student: too long")
    person = raw["person"]
    if person and not PSEUDONYM.fullmatch(person):
        person = review.directory.pseudonym_of(person)  # a roster sourcedId
    f = AccessFilter(
        account=raw["account"] or None,
        action=raw["action"] or None,
        person=person or None,
        since=_day(raw["since"], "from", review) if raw["since"] else None,
        until=_day(raw["until"], "to", review) + timedelta(days=1) if raw["until"] else None,
    )
    page_no, offset = page_number(call, PAGE)
    rows = review.access.list(f, PAGE + 1, offset)
    more, rows = len(rows) > PAGE, rows[:PAGE]
    return render(
        call.request,
        "access.html",
        user=call.user,
        rows=rows,
        raw=raw,
        actions=ACTIONS,
        page_no=page_no,
        more=more,
        prev_q=query(**raw, page=page_no - 1 if page_no > 2 else None),
        next_q=query(**raw, page=page_no + 1),
    )


@page(*AUDITORS)
def access_report(call: Call) -> Response:
    """Every access to one student's records, oldest first (603 CMR 23.07 (4))."""
    review = call.review
    given = call.arg("student")
    if not given or len(given) > 128:
        raise HTTPException(400, "student: give a pseudonym or a roster sourcedId")
    person = given if PSEUDONYM.fullmatch(given) else review.directory.pseudonym_of(given)
    sourced_id = None if given == person else given
    fmt = call.arg("format") or "html"
    if fmt not in ("html", "csv"):
        raise HTTPException(400, "format: html or csv")
    records = review.access.for_person(person)
    if sourced_id is None:
        sourced_id = next((r.sourced_id for r in records if r.sourced_id), None)
    review.access.record(
        actor(call.user.account),
        "access_report",
        person=person,
        sourced_id=sourced_id,
        detail=f"{len(records)} records, as {fmt}",
    )
    if fmt == "csv":
        return Response(
            access_csv(records, review.tz),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="access-{person}.csv"'},
        )
    return render(
        call.request,
        "access_report.html",
        user=call.user,
        person=person,
        sourced_id=sourced_id,
        records=records,
        made_at=review.clock(),
        # the export form for a parent's or eligible student's request (student_views)
        exportable=review.directory.find(person) is not None,
    )
