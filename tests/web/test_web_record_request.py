"""A parent's or eligible student's request for the student's records (FERPA 34 CFR 99.10):
the auditor who handles it exports the whole record from the student's access report, with the
requester's reason, and the export is itself in the record of access. Auditors still see no
incident list and reveal no names on the review pages."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from reviewharness import Browser, World, students

from monitor.incidents.access import AccessFilter
from monitor.model import Person


@pytest.fixture
def student(world: World) -> tuple[Person, str, list[int]]:
    """A high-school student with incidents recorded at two schools."""
    p = students(world.review.loader, "hs", 1)[0]
    ids = [world.incident(p, hours_ago=2), world.incident(p, hours_ago=1, school="ms")]
    return p, world.pseudonym(p), ids


def test_auditor_exports_a_students_record_for_a_request(
    world: World, student: tuple[Person, str, list[int]], browser_for: Callable[..., Browser]
) -> None:
    person, p, ids = student
    browser_for("hs-counselor").get(f"/students/{p}")  # an access the record must list
    a = browser_for("auditor")
    before = world.review.access.count()
    # the request starts from the student's access report: a form, no script needed
    report = a.get(f"/access/student?student={person.sourced_id}")
    assert report.status_code == 200
    assert f'action="/students/{p}/record"' in report.text
    assert f'name="csrf" value="{a.csrf}"' in report.text
    reason = "Parent's request of 3 March, ticket 1234"
    resp = a.post(f"/students/{p}/record", {"reason": reason, "format": "json"})
    assert resp.status_code == 200, resp.text
    doc = json.loads(resp.text)
    assert doc["made_by"] == "auditor"
    assert doc["student"]["sourced_id"] == person.sourced_id
    assert doc["student"]["given_name"] == person.given_name
    assert sorted(i["id"] for i in doc["incidents"]) == sorted(ids)  # every school's
    assert "view_student" in [r["action"] for r in doc["record_of_access"]]
    # the export is recorded, with who, why and which student
    assert world.review.access.count() == before + 2  # the report, then the export
    rec = world.review.access.list(limit=1)[0]
    assert (rec.account, rec.role, rec.position) == ("auditor", "auditor", "Records officer")
    assert (rec.action, rec.person, rec.sourced_id) == ("export_record", p, person.sourced_id)
    assert rec.reason == reason and rec.detail == "2 incidents, as json"
    assert doc["record_of_access"][-1]["action"] == "export_record"
    # the printable page is there too
    page = a.post(f"/students/{p}/record", {"reason": reason, "format": "html"})
    assert page.status_code == 200 and person.family_name in page.text


def test_auditor_export_needs_a_reason_and_a_known_student(
    world: World, student: tuple[Person, str, list[int]], browser_for: Callable[..., Browser]
) -> None:
    person, p, _ids = student
    a = browser_for("auditor")
    before = world.review.access.count()
    for reason in ("", "why"):
        resp = a.post(f"/students/{p}/record", {"reason": reason, "format": "json"})
        assert resp.status_code == 400 and "reason" in resp.text
        assert person.given_name not in resp.text
    # not in the roster: nothing to give, and no name to show
    assert (
        a.post("/students/p-0123456789abcdef/record", {"reason": "parent's request"}).status_code
        == 404
    )
    assert world.review.access.list(AccessFilter(action="export_record")) == []
    assert world.review.access.count() == before


def test_auditor_still_reveals_nothing_on_the_review_pages(
    world: World, student: tuple[Person, str, list[int]], browser_for: Callable[..., Browser]
) -> None:
    _person, p, ids = student
    a = browser_for("auditor")
    assert a.get(f"/students/{p}").status_code == 403
    assert a.post(f"/students/{p}/reveal", {"reason": "just looking"}).status_code == 403
    assert a.get(f"/incidents/{ids[0]}").status_code == 403
    # and a counselor of another school still gets nothing from the export
    es = browser_for("es-counselor")
    assert es.post(f"/students/{p}/record", {"reason": "parent's request"}).status_code == 404
