"""One student's incidents under their pseudonym, the reveal (with a reason) and the export of
the student's whole record for a parent's or eligible student's request.

The district must be able to give a parent or an eligible student their records (FERPA
34 CFR 99.10): the export is open to the reviewers who may reveal the student and to auditors,
who handle those requests (from the student's access report) but see no incident list and
reveal no names otherwise. Every export is in the record of access with its reason."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from monitor.incidents.events import Incident
from monitor.incidents.store import IncidentFilter
from monitor.web.auth import actor
from monitor.web.exports import student_record_json
from monitor.web.incident_views import MAX_REASON, PSEUDONYM, REVIEWERS, can_reveal
from monitor.web.pages import Call, page, render
from monitor.web.people import Revealed
from monitor.web.queries import list_scoped

MAX_SHOWN = 500
MIN_REASON = 5
RECORD_KEEPERS = (*REVIEWERS, "auditor")  # who may export a student's whole record


def _person(call: Call) -> str:
    person = str(call.request.path_params["person"])
    if not PSEUDONYM.fullmatch(person):
        raise HTTPException(404)
    return person


def _visible(call: Call, person: str) -> list[Incident]:
    """The student's incidents this account may see; 404 when it may see nothing of them."""
    review, account = call.review, call.user.account
    rows = list_scoped(review.store, IncidentFilter(person=person), account.scope, MAX_SHOWN)
    if not rows and not can_reveal(review, account, person):
        raise HTTPException(404)
    return rows


def _reason(call: Call) -> str:
    reason = " ".join(call.field("reason").split())
    if len(reason) < MIN_REASON:
        raise HTTPException(400, "reason: say why (at least 5 characters); it is recorded")
    if len(reason) > MAX_REASON:
        raise HTTPException(400, f"reason: at most {MAX_REASON} characters")
    return reason


def _student_page(
    call: Call, person: str, rows: list[Incident], revealed: Revealed | None = None
) -> Response:
    review = call.review
    return render(
        call.request,
        "student.html",
        user=call.user,
        person=person,
        rows=rows,
        revealed=revealed,
        can_reveal=can_reveal(review, call.user.account, person),
        schools=review.school_names(),
        max_shown=MAX_SHOWN,
    )


@page(*REVIEWERS)
def student(call: Call) -> Response:
    person = _person(call)
    rows = _visible(call, person)
    call.review.access.record(
        actor(call.user.account),
        "view_student",
        person=person,
        detail=f"{len(rows)} incidents shown",
    )
    return _student_page(call, person, rows)


def _revealable(call: Call, person: str) -> Revealed:
    review = call.review
    if not can_reveal(review, call.user.account, person):
        raise HTTPException(
            403,
            "Only a counselor of the student's school (or an administrator) may see who this is.",
        )
    found = review.directory.find(person)
    assert found is not None  # can_reveal checked it
    return found


@page(*REVIEWERS)
def reveal(call: Call) -> Response:
    person = _person(call)
    rows = _visible(call, person)
    found = _revealable(call, person)
    reason = _reason(call)
    call.review.access.record(
        actor(call.user.account),
        "reveal",
        person=person,
        sourced_id=found.sourced_id,
        reason=reason,
    )
    return _student_page(call, person, rows, found)


def _exportable(call: Call, person: str) -> Revealed:
    """The student whose record this account may export: an auditor any student of the
    roster (404 for anyone else), a reviewer one they may reveal."""
    if call.user.account.role == "auditor":
        found = call.review.directory.find(person)
        if found is None:
            raise HTTPException(404)
        return found
    _visible(call, person)
    return _revealable(call, person)


@page(*RECORD_KEEPERS)
def student_record(call: Call) -> Response:
    """Everything held about the student: name, incidents of every school, and the record of
    access, as a printable page or JSON."""
    review, account = call.review, call.user.account
    person = _person(call)
    found = _exportable(call, person)
    reason = _reason(call)
    fmt = call.field("format") or "html"
    if fmt not in ("html", "json"):
        raise HTTPException(400, "format: html or json")
    items = review.store.list(IncidentFilter(person=person), limit=1_000_000)
    review.access.record(
        actor(account),
        "export_record",
        person=person,
        sourced_id=found.sourced_id,
        reason=reason,
        detail=f"{len(items)} incidents, as {fmt}",
    )
    access = review.access.for_person(person)
    now = review.clock()
    if fmt == "json":
        body = student_record_json(
            found,
            items,
            access,
            district=review.district_name,
            tz=review.tz,
            made_at=now,
            made_by=account.username,
        )
        name = f"student-record-{found.sourced_id}.json".replace('"', "")
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return render(
        call.request,
        "record.html",
        user=call.user,
        student=found,
        items=items,
        access=access,
        made_at=now,
        schools=review.school_names(),
    )
