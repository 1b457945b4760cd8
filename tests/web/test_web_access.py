"""The record of access: every view, reveal, export and report writes who, role, position,
when, which student, what and why; auditors read it; the reveal needs a reason."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from reviewharness import Browser, World, students

from monitor.incidents.access import AccessFilter


@pytest.fixture
def hs(world: World) -> tuple[str, int, object]:
    p = students(world.review.loader, "hs", 1)[0]
    return world.pseudonym(p), world.incident(p), p


def last(world: World) -> object:
    return world.review.access.list(limit=1)[0]


@pytest.mark.parametrize(
    ("method", "url", "form", "action", "detail", "reason"),
    [
        ("get", "/incidents?platform=tiktok", {}, "list", "filters: platform=tiktok; page 1, 1 shown", ""),
        ("get", "/incidents/{id}", {}, "view_incident", "", ""),
        ("get", "/students/{p}", {}, "view_student", "1 incidents shown", ""),
        ("post", "/incidents/{id}/review", {"action": "acknowledge", "note": "seen"}, "review",
         "acknowledge: status new → acknowledged; note added", ""),
        ("post", "/incidents/{id}/assign", {"assignee": "hs-counselor"}, "review", "assigned to hs-counselor", ""),
        ("post", "/students/{p}/reveal", {"reason": "meeting with parents"}, "reveal", "", "meeting with parents"),
        ("post", "/incidents/export", {"reason": "monthly report", "school": "hs"}, "export_csv",
         "filters: school=hs; 1 incidents", "monthly report"),
        ("post", "/students/{p}/record", {"reason": "parent's FERPA request", "format": "json"}, "export_record",
         "1 incidents, as json", "parent's FERPA request"),
    ],
)  # fmt: skip
def test_each_access_is_recorded(world: World, hs: tuple[str, int, object], browser_for: Callable[..., Browser],
                                 method: str, url: str, form: dict[str, str], action: str, detail: str,
                                 reason: str) -> None:  # fmt: skip
    p, iid, person = hs
    b = browser_for("hs-counselor")
    before = world.review.access.count()
    url = url.format(id=iid, p=p)
    resp = b.get(url) if method == "get" else b.post(url, form)
    assert resp.status_code in (200, 303), resp.text
    assert world.review.access.count() == before + 1
    rec = world.review.access.list(limit=1)[0]
    assert (rec.account, rec.role, rec.position) == (
        "hs-counselor",
        "counselor",
        "School counselor",
    )
    assert rec.action == action
    assert rec.detail == detail and rec.reason == reason
    assert abs((rec.at - world.review.clock()).total_seconds()) < 60
    # which student: named, or at least among those the access touched
    assert [r.id for r in world.review.access.list(AccessFilter(person=p))][0] == rec.id
    if action in ("view_incident", "review"):
        assert rec.incident_id == iid and rec.person == p
    if action in ("reveal", "export_record"):
        assert rec.sourced_id == person.sourced_id  # type: ignore[attr-defined]


def test_reveal_needs_a_reason_and_shows_only_then(world: World, hs: tuple[str, int, object],
                                                    browser_for: Callable[..., Browser]) -> None:  # fmt: skip
    p, _iid, person = hs
    name = f"{person.given_name} {person.family_name}"  # type: ignore[attr-defined]
    b = browser_for("hs-counselor")
    page = b.get(f"/students/{p}").text
    assert name not in page and 'action="/students/' in page  # the reveal form, no name
    before = world.review.access.count()
    for reason in ("", "   ", "why"):
        resp = b.post(f"/students/{p}/reveal", {"reason": reason})
        assert resp.status_code == 400 and name not in resp.text
    assert world.review.access.count() == before
    resp = b.post(f"/students/{p}/reveal", {"reason": "safety concern, called home"})
    assert resp.status_code == 200
    assert name in resp.text and person.sourced_id in resp.text  # type: ignore[attr-defined]
    assert ",".join(person.grades) in resp.text  # type: ignore[attr-defined]
    # nothing sticks: the next view is pseudonymous again
    assert name not in b.get(f"/students/{p}").text


@pytest.mark.parametrize(("user", "status"), [("admin", 200), ("hs-counselor", 200), ("ms-hs-counselor", 200),
                                              ("es-counselor", 404), ("auditor", 403)])  # fmt: skip
def test_who_may_reveal(world: World, hs: tuple[str, int, object], browser_for: Callable[..., Browser],
                        user: str, status: int) -> None:  # fmt: skip
    p, _iid, person = hs
    resp = browser_for(user).post(f"/students/{p}/reveal", {"reason": "a proper reason"})
    assert resp.status_code == status
    assert (person.given_name in resp.text) == (status == 200)  # type: ignore[attr-defined]
    reveals = world.review.access.list(AccessFilter(action="reveal"))
    assert len(reveals) == (1 if status == 200 else 0)


def test_counselor_sees_incident_but_cannot_reveal_a_student_now_at_another_school(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    # recorded at hs, but the roster puts the student at ms now: the hs counselor reviews
    # the incident, only an ms counselor (or an administrator) may reveal the name
    p = students(world.review.loader, "ms", 1)[0]
    iid = world.incident(p, school="hs")
    b = browser_for("hs-counselor")
    assert b.get(f"/incidents/{iid}").status_code == 200
    assert (
        b.post(f"/students/{world.pseudonym(p)}/reveal", {"reason": "a proper reason"}).status_code
        == 403
    )
    assert (
        browser_for("ms-hs-counselor")
        .post(f"/students/{world.pseudonym(p)}/reveal", {"reason": "a proper reason"})
        .status_code
        == 200
    )


def test_list_views_are_in_each_shown_students_access_report(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    people = students(world.review.loader, "hs", 3)
    for i, p in enumerate(people):
        world.incident(p, hours_ago=i + 1)
    browser_for("hs-counselor").get("/incidents")
    for p in people:
        recs = world.review.access.for_person(world.pseudonym(p))
        # two list views: one on signing in, one here
        assert [(r.action, r.account) for r in recs] == [("list", "hs-counselor")] * 2
    other = students(world.review.loader, "es", 1)[0]
    assert world.review.access.for_person(world.pseudonym(other)) == []


def test_auditor_sees_the_log_and_prints_a_student_report(world: World, hs: tuple[str, int, object],
                                                            browser_for: Callable[..., Browser]) -> None:  # fmt: skip
    p, iid, person = hs
    c = browser_for("hs-counselor")
    c.get(f"/incidents/{iid}")
    c.post(f"/students/{p}/reveal", {"reason": "parent meeting on Monday"})
    c.post("/incidents/export", {"reason": "board report"})
    a = browser_for("auditor")
    log = a.get("/access").text
    for text in ("viewed an incident", "revealed a student&#39;s name", "parent meeting on Monday",
                 "exported incidents (CSV)", "board report", "School counselor"):  # fmt: skip
        assert text in log
    only = a.get("/access?action=reveal").text
    assert "parent meeting on Monday" in only and "board report" not in only
    by_account = a.get("/access?account=auditor").text
    assert "hs-counselor" not in by_account.split("<tbody>")[1]
    # by pseudonym or by roster id: the same report
    sid = person.sourced_id  # type: ignore[attr-defined]
    for key in (p, sid):
        report = a.get(f"/access/student?student={key}")
        assert report.status_code == 200
        assert "parent meeting on Monday" in report.text and sid in report.text
        assert "board report" in report.text  # the export included this student
    rows = list(csv.DictReader(io.StringIO(a.get(f"/access/student?student={p}&format=csv").text)))
    assert [r["action"] for r in rows] == [
        "list",
        "view_incident",
        "reveal",
        "export_csv",
        "access_report",
        "access_report",
    ]
    assert (
        rows[2]["reason"] == "parent meeting on Monday"
        and rows[2]["position"] == "School counselor"
    )
    # printing the report is itself recorded
    assert world.review.access.list(limit=1)[0].action == "access_report"


def test_student_record_export(
    world: World, hs: tuple[str, int, object], browser_for: Callable[..., Browser]
) -> None:
    p, iid, person = hs
    b = browser_for("hs-counselor")
    b.post(f"/incidents/{iid}/review", {"action": "acknowledge", "note": "talked"})
    resp = b.post(f"/students/{p}/record", {"reason": "parent asked (FERPA)", "format": "json"})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    doc = json.loads(resp.text)
    assert doc["student"]["sourced_id"] == person.sourced_id  # type: ignore[attr-defined]
    assert doc["student"]["given_name"] == person.given_name  # type: ignore[attr-defined]
    assert [i["id"] for i in doc["incidents"]] == [iid]
    assert "talked" in doc["incidents"][0]["notes"]
    assert [r["action"] for r in doc["record_of_access"]] == ["list", "review", "export_record"]
    page = b.post(f"/students/{p}/record", {"reason": "parent asked (FERPA)", "format": "html"})
    assert page.status_code == 200 and "Record of access" in page.text
    assert (
        b.post(f"/students/{p}/record", {"reason": "parent asked", "format": "xml"}).status_code
        == 400
    )
