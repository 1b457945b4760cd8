"""The Reports page: the activity and incident report (``monitor report``) for a chosen period,
scoped to the account's schools like every other page, with CSV, XLSX and JSON downloads.

Showing the students with most incidents is an access to those students' records: each view
or download that lists one writes a record of access naming them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from monitor.reports.period import Period
from monitor.web.auth import actor
from monitor.web.incident_views import FIRST_DAY, LAST_DAY, REVIEWERS
from monitor.web.pages import Call, page, query, render

MAX_DAYS = 800  # a report covers at most about two school years
DOWNLOADS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}

if TYPE_CHECKING:
    from monitor.reports import Report


@cache
def _css() -> str:
    import monitor.reports

    return (Path(monitor.reports.__file__).parent / "templates" / "report.css").read_text("utf-8")


def _day(value: str, name: str) -> date:
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}: expected a date such as 2026-11-01") from None
    if not FIRST_DAY <= d <= LAST_DAY:
        raise HTTPException(400, f"{name}: expected a date between {FIRST_DAY} and {LAST_DAY}")
    return d


def _choice(call: Call) -> tuple[Period, str, tuple[str, ...] | None]:
    """The period (default: last week), the school asked for ("": every school of the
    account) and the schools the report covers (None: the whole district)."""
    review, account = call.review, call.user.account
    start, end = call.arg("from"), call.arg("to")
    if start or end:
        if not (start and end):
            raise HTTPException(400, "give both from and to")
        first, last = _day(start, "from"), _day(end, "to")
        if last < first:
            raise HTTPException(400, f"to ({last}) is before from ({first})")
        period = Period(first, last)
    else:
        today = datetime.now(review.tz).date()
        period = Period.last_week(today)
    if period.days > MAX_DAYS:
        raise HTTPException(400, f"a report covers at most {MAX_DAYS} days")
    school = call.arg("school")
    if len(school) > 64:
        raise HTTPException(400, "school: too long")
    if school and not account.sees_school(school):
        raise HTTPException(403, "That school is not one of yours.")
    schools = (school,) if school else account.scope
    return period, school, schools


def _report(call: Call, period: Period, schools: tuple[str, ...] | None, how: str) -> Report:
    # pandas and matplotlib load with the first report, not with the app
    from monitor.reports import build

    review = call.review
    report = build(review.store, period, schools, district=review.district)
    if report.students:
        review.access.record(
            actor(call.user.account),
            "report",
            detail=f"{report.title} ({how})",
            subjects=report.students,
        )
    return report


@page(*REVIEWERS)
def reports(call: Call) -> Response:
    review, account = call.review, call.user.account
    period, school, schools = _choice(call)
    report = _report(call, period, schools, "page")
    names = review.school_names()
    scope = account.scope
    choices = sorted(s for s in names if scope is None or s in scope)
    raw = {"from": period.start.isoformat(), "to": period.end.isoformat(), "school": school}
    return render(
        call.request,
        "report.html",
        user=call.user,
        report=report,
        body=report.to_html(inline_svg=True),
        raw=raw,
        schools=names,
        school_choices=choices,
        downloads={fmt: query(**raw, format=fmt) for fmt in DOWNLOADS},
        previous=query(
            **{
                "from": (period.start - timedelta(days=period.days)).isoformat(),
                "to": (period.start - timedelta(days=1)).isoformat(),
                "school": school,
            }
        ),
    )


@page(*REVIEWERS)
def report_download(call: Call) -> Response:
    fmt = call.arg("format")
    if fmt not in DOWNLOADS:
        raise HTTPException(400, f"format: expected one of {', '.join(DOWNLOADS)}")
    period, school, schools = _choice(call)
    report = _report(call, period, schools, fmt)
    media, suffix = DOWNLOADS[fmt]
    body: str | bytes = (
        report.to_csv() if fmt == "csv" else report.to_json() if fmt == "json" else report.to_xlsx()
    )
    name = f"report-{school or 'schools'}-{period.start}-{period.end}.{suffix}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@page(*REVIEWERS)
def report_css(call: Call) -> Response:
    return PlainTextResponse(_css(), media_type="text/css")
