"""The incident list, detail, review and CSV export: filters, scope, escaping, injection."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from reviewharness import NOW, Browser, World, students

from monitor.incidents.store import IncidentFilter


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/incidents/(\d+)">', html)]


@pytest.fixture
def seeded(world: World) -> dict[str, int]:
    """Incidents in all three schools; names are the keys the tests use."""
    loader = world.review.loader
    es, ms, hs = (students(loader, s, 3) for s in ("es", "ms", "hs"))
    w = world.incident
    return {
        "es-tiktok": w(es[0], hours_ago=1, severity="high"),
        "es-youtube": w(es[1], hours_ago=30, platform="youtube", severity="low"),
        "ms-instagram": w(ms[0], hours_ago=2, platform="instagram", severity="medium"),
        "hs-tiktok": w(hs[0], hours_ago=3, severity="high"),
        "hs-snapchat": w(hs[1], hours_ago=50, platform="snapchat", severity="low"),
        "hs-old": w(hs[2], hours_ago=24 * 20, platform="discord", severity="medium"),
    }


def day(days_ago: int) -> str:
    from datetime import UTC

    tz = __import__("zoneinfo").ZoneInfo("America/New_York")
    return (NOW - timedelta(days=days_ago)).astimezone(UTC).astimezone(tz).date().isoformat()


@pytest.mark.parametrize(
    ("user", "query", "expected"),
    [
        (
            "admin",
            "",
            ["es-tiktok", "ms-instagram", "hs-tiktok", "es-youtube", "hs-snapchat", "hs-old"],
        ),
        ("admin", "school=es", ["es-tiktok", "es-youtube"]),
        ("admin", "platform=tiktok", ["es-tiktok", "hs-tiktok"]),
        ("admin", "severity=high", ["es-tiktok", "hs-tiktok"]),
        ("admin", "severity=low&school=hs", ["hs-snapchat"]),
        ("admin", "status=acknowledged", []),
        ("hs-counselor", "", ["hs-tiktok", "hs-snapchat", "hs-old"]),
        ("hs-counselor", "platform=tiktok", ["hs-tiktok"]),
        ("hs-counselor", "school=hs&severity=medium", ["hs-old"]),
        ("es-counselor", "", ["es-tiktok", "es-youtube"]),
        # two schools: merged newest first
        ("ms-hs-counselor", "", ["ms-instagram", "hs-tiktok", "hs-snapchat", "hs-old"]),
        ("ms-hs-counselor", "severity=medium", ["ms-instagram", "hs-old"]),
    ],
)
def test_list_filters_within_scope(seeded: dict[str, int], browser_for: Callable[..., Browser],
                                   user: str, query: str, expected: list[str]) -> None:  # fmt: skip
    b = browser_for(user)
    resp = b.get(f"/incidents?{query}")
    assert resp.status_code == 200
    assert ids_on(resp.text) == [seeded[k] for k in expected]


def test_date_range_filter(seeded: dict[str, int], browser_for: Callable[..., Browser]) -> None:
    b = browser_for("admin")
    recent = ids_on(b.get(f"/incidents?since={day(3)}").text)
    assert seeded["hs-old"] not in recent and seeded["es-tiktok"] in recent
    old = ids_on(b.get(f"/incidents?since={day(25)}&until={day(15)}").text)
    assert old == [seeded["hs-old"]]


def test_person_filter_and_student_page(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    hs0 = students(world.review.loader, "hs", 1)[0]
    p = world.pseudonym(hs0)
    b = browser_for("hs-counselor")
    assert ids_on(b.get(f"/incidents?person={p}").text) == [seeded["hs-tiktok"]]
    page = b.get(f"/students/{p}")
    assert page.status_code == 200 and ids_on(page.text) == [seeded["hs-tiktok"]]


INJECTIONS = ["' OR '1'='1", "tiktok' --", "x\"; DROP TABLE incidents; --", "%' OR 1=1 --",
              "1) UNION SELECT * FROM accounts --", "<script>alert(1)</script>"]  # fmt: skip


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(
    "field", ["platform", "school", "severity", "status", "since", "until", "person"]
)
def test_injection_strings_in_filters(world: World, seeded: dict[str, int], browser_for: Callable[..., Browser],
                                      field: str, value: str) -> None:  # fmt: skip
    b = browser_for("admin")
    resp = b.get("/incidents", params={field: value})
    # Bound parameters: a text filter matches nothing; a closed-set one is refused.
    assert resp.status_code in (200, 400)
    assert ids_on(resp.text) == []
    assert "<script>alert(1)</script>" not in resp.text
    assert world.review.store.count() == len(seeded)  # the table is intact
    assert len(world.review.accounts.list()) == 5


def test_counselor_filter_for_another_school_is_refused(
    seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    resp = browser_for("hs-counselor").get("/incidents?school=es")
    assert resp.status_code == 403 and ids_on(resp.text) == []


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/incidents/{id}"), ("post", "/incidents/{id}/review"), ("post", "/incidents/{id}/assign"),
])  # fmt: skip
def test_guessing_another_schools_incident_id(world: World, seeded: dict[str, int], browser_for: Callable[..., Browser],
                                              method: str, path: str) -> None:  # fmt: skip
    b = browser_for("hs-counselor")
    es_id = seeded["es-tiktok"]
    missing = max(seeded.values()) + 100
    for target in (es_id, missing):
        url = path.format(id=target)
        resp = (
            b.get(url)
            if method == "get"
            else b.post(url, {"action": "resolve", "note": "mine now", "assignee": "hs-counselor"})
        )
        assert resp.status_code == 404  # another school's and a missing one look the same
        assert "tiktok" not in resp.text
    inc = world.review.store.get(es_id)
    assert inc is not None and (inc.status, inc.notes, inc.assignee) == ("new", "", None)


def test_student_of_another_school_is_not_found(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    es0 = students(world.review.loader, "es", 1)[0]
    p = world.pseudonym(es0)
    b = browser_for("hs-counselor")
    assert b.get(f"/students/{p}").status_code == 404
    assert b.post(f"/students/{p}/reveal", {"reason": "curious about it"}).status_code == 404
    assert b.post(f"/students/{p}/record", {"reason": "curious about it"}).status_code == 404
    assert ids_on(b.get(f"/incidents?person={p}").text) == []
    assert es0.given_name not in b.get(f"/students/{p}").text


HOSTILE_HOST = "<script>alert(1)<"
HOSTILE_REASON = '</td><script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_values_are_stored_and_shown_as_text(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    p = students(world.review.loader, "hs", 1)[0]
    iid = world.incident(p, host=HOSTILE_HOST, reason=HOSTILE_REASON, platform="<b>x</b>")
    inc = world.review.store.get(iid)
    assert inc is not None and inc.host == HOSTILE_HOST  # stored as given
    b = browser_for("hs-counselor")
    note = "<script>document.cookie</script>"
    b.post(f"/incidents/{iid}/review", {"action": "acknowledge", "note": note})
    for url in ("/incidents", f"/incidents/{iid}", f"/students/{world.pseudonym(p)}"):
        html = b.get(url).text
        assert "<script>" not in html and "<img" not in html and "<b>x" not in html
        assert "&lt;script&gt;alert(1)&lt;" in html
    detail = b.get(f"/incidents/{iid}").text
    assert "&lt;/td&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in detail
    assert "&lt;script&gt;document.cookie&lt;/script&gt;" in detail
    auditor = browser_for("auditor").get("/access").text
    assert "<script>" not in auditor


def test_csv_cells_cannot_become_formulas(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    p = students(world.review.loader, "hs", 1)[0]
    world.incident(p, host="=HYPERLINK(evil.example)", reason="+cmd|' /C calc'!A0")
    resp = browser_for("hs-counselor").post("/incidents/export", {"reason": "weekly review"})
    assert resp.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(resp.text)))
    assert row["host"] == "'=HYPERLINK(evil.example)"
    assert row["reason"].startswith("'+cmd")


def test_csv_export_is_scoped_and_pseudonymous(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    b = browser_for("hs-counselor")
    resp = b.post("/incidents/export", {"reason": "term report", "platform": "tiktok"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith('attachment; filename="incidents-')
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [int(r["id"]) for r in rows] == [seeded["hs-tiktok"]]
    assert rows[0]["person"].startswith("p-")
    for p in students(world.review.loader, "hs", 3):
        assert p.given_name not in resp.text and p.sourced_id not in resp.text
    # a reason is required, and another school cannot be exported
    assert b.post("/incidents/export", {"reason": ""}).status_code == 400
    assert b.post("/incidents/export", {"reason": "x", "school": "es"}).status_code == 403


def test_names_never_appear_in_lists_or_details(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    b = browser_for("admin")
    pages = [b.get("/incidents").text] + [b.get(f"/incidents/{i}").text for i in seeded.values()]
    everyone = [p for s in ("es", "ms", "hs") for p in students(world.review.loader, s, 3)]
    for html in pages:
        for p in everyone:
            assert f"{p.given_name} {p.family_name}" not in html
            assert p.sourced_id not in html


def test_acknowledge_resolve_reopen_with_notes(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    iid = seeded["hs-tiktok"]
    b = browser_for("hs-counselor")
    assert b.post(f"/incidents/{iid}/review", {"action": "acknowledge"}).status_code == 303
    assert world.review.store.get(iid).status == "acknowledged"  # type: ignore[union-attr]
    # resolving needs a note
    assert (
        b.post(f"/incidents/{iid}/review", {"action": "resolve", "note": "  "}).status_code == 400
    )
    assert (
        b.post(
            f"/incidents/{iid}/review", {"action": "resolve", "note": "Spoke with the\nstudent"}
        ).status_code
        == 303
    )
    inc = world.review.store.get(iid)
    assert inc is not None and inc.status == "resolved"
    assert inc.notes.endswith("hs-counselor: Spoke with the student")
    other = browser_for("ms-hs-counselor")
    other.post(f"/incidents/{iid}/review", {"action": "reopen", "note": "It happened again"})
    inc = world.review.store.get(iid)
    assert inc is not None and inc.status == "new"
    lines = inc.notes.splitlines()
    assert len(lines) == 2 and lines[1].endswith("ms-hs-counselor: It happened again")
    page = b.get(f"/incidents/{iid}").text
    assert "Spoke with the student" in page and "It happened again" in page
    assert b.post(f"/incidents/{iid}/review", {"action": "delete"}).status_code == 400


def test_assign_only_to_reviewers_of_the_school(
    world: World, seeded: dict[str, int], browser_for: Callable[..., Browser]
) -> None:
    iid = seeded["hs-tiktok"]
    b = browser_for("hs-counselor")
    page = b.get(f"/incidents/{iid}").text
    options = re.findall(
        r'<option value="([^"]+)"', page.split('name="assignee"')[1].split("</select>")[0]
    )
    assert options == ["admin", "hs-counselor", "ms-hs-counselor"]
    for bad in ("es-counselor", "auditor", "nobody"):
        assert b.post(f"/incidents/{iid}/assign", {"assignee": bad}).status_code == 400
    assert b.post(f"/incidents/{iid}/assign", {"assignee": "ms-hs-counselor"}).status_code == 303
    assert world.review.store.get(iid).assignee == "ms-hs-counselor"  # type: ignore[union-attr]
    assert b.post(f"/incidents/{iid}/assign", {"assignee": ""}).status_code == 303
    assert world.review.store.get(iid).assignee is None  # type: ignore[union-attr]


def test_paging_and_capped_count(world_factory: Callable[..., World]) -> None:
    from starlette.testclient import TestClient

    from monitor.web import create_app

    w = world_factory(page_size=4, count_cap=7)
    w.account("admin", "administrator")
    people = students(w.review.loader, "hs", 10)
    made = [w.incident(p, hours_ago=i + 1) for i, p in enumerate(people)]
    with TestClient(create_app(w.review), base_url="http://127.0.0.1") as client:
        b = Browser(client)
        b.sign_in("admin")
        first = b.get("/incidents").text
        assert ids_on(first) == made[:4]
        assert "1–4 of 7+ incidents" in first
        second = b.get("/incidents?page=2").text
        assert ids_on(second) == made[4:8]
        third = b.get("/incidents?page=3").text
        assert ids_on(third) == made[8:] and 'rel="next"' not in third
        assert b.get("/incidents?page=x").status_code == 400
        assert b.get("/incidents?page=99999").status_code == 400
    assert w.review.store.count(IncidentFilter(school="hs"), cap=7) == 7
