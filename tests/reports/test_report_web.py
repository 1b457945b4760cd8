"""The review app's Reports page: the same report as ``monitor report``, scoped by role and
school like every other page, student rows written to the record of access; in-process with
the web test harness, and in headless Chromium against a real server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reportworld import PERIOD, World, build_world
from reviewharness import PASSWORD, Browser, live_server, make_review
from starlette.testclient import TestClient

from monitor.incidents.access import AccessFilter
from monitor.reports import build
from monitor.web import Review, create_app

CHROMIUM = "/usr/bin/chromium"
Q = "from=2026-11-02&to=2026-11-15"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("web"))
    yield w
    w.store.close()
    w.loader.close()


@pytest.fixture(scope="module")
def review(world: World) -> Iterator[Review]:
    r = make_review(world.loader, world.url)
    for name, role, schools in (
        ("admin", "administrator", ()), ("hs-c", "counselor", ("hs",)),
        ("ms-hs-c", "counselor", ("ms", "hs")), ("rita", "auditor", ()),
    ):  # fmt: skip
        r.accounts.add(name, PASSWORD, role, schools=schools, position=role.title())
    yield r
    r.close()


@pytest.fixture
def browser_for(review: Review) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(username: str) -> Browser:
        client = TestClient(create_app(review), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        b = Browser(client)
        assert b.sign_in(username).status_code == 303
        return b

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def cells(text: str) -> dict[tuple[str, str, str], str]:
    rows = list(csv.reader(io.StringIO(text)))
    return {(s, r, c): v for s, r, c, v in rows[1:]}


def test_a_counselor_sees_only_their_schools(world: World, browser_for: Any) -> None:
    b = browser_for("hs-c")
    page = b.get(f"/reports?{Q}")
    assert page.status_code == 200
    html = page.text
    assert world.people["ben"] in html  # hs
    assert world.people["ana"] not in html and world.people["cy"] not in html  # ms
    assert 'data-section="overview"' in html and "<svg" in html
    assert b.get(f"/reports?{Q}&school=ms").status_code == 403
    got = cells(b.get(f"/reports/download?{Q}&format=csv").text)
    assert {r for (s, r, _c) in got if s == "overview"} == {"hs", "total"}
    # the same numbers as monitor report --school hs
    expected = build(world.store, PERIOD, ["hs"], district=world.district).to_csv()
    assert got == cells(expected)


def test_a_counselor_of_two_schools_and_an_administrator(world: World, browser_for: Any) -> None:
    two = cells(browser_for("ms-hs-c").get(f"/reports/download?{Q}&format=csv").text)
    assert {r for (s, r, _c) in two if s == "overview"} == {"hs", "ms", "total"}
    one = cells(browser_for("ms-hs-c").get(f"/reports/download?{Q}&school=ms&format=csv").text)
    assert {r for (s, r, _c) in one if s == "overview"} == {"ms", "total"}
    admin = cells(browser_for("admin").get(f"/reports/download?{Q}&format=csv").text)
    assert {r for (s, r, _c) in admin if s == "overview"} == {"es", "hs", "ms", "total"}
    assert admin[("overview", "total", "requests")] == "166"


def test_viewing_student_rows_is_in_the_record_of_access(
    world: World, review: Review, browser_for: Any
) -> None:
    ben = world.people["ben"]
    before = review.access.count(AccessFilter(action="report", person=ben))
    browser_for("hs-c").get(f"/reports?{Q}")
    records = review.access.list(AccessFilter(action="report", person=ben), limit=1)
    assert review.access.count(AccessFilter(action="report", person=ben)) == before + 1
    assert records[0].account == "hs-c" and records[0].position == "Counselor"
    assert "(page)" in records[0].detail
    # a period without students listed writes nothing
    n = review.access.count(AccessFilter(action="report"))
    browser_for("hs-c").get("/reports?from=2025-01-06&to=2025-01-12")
    assert review.access.count(AccessFilter(action="report")) == n


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("from=2026-11-15&to=2026-11-02", 400, "to (2026-11-02) is before from (2026-11-15)"),
        ("from=2026-11-02", 400, "give both from and to"),
        ("from=yesterday&to=2026-11-02", 400, "from: expected a date"),
        ("from=2020-01-01&to=2026-11-02", 400, "at most 800 days"),
        (f"{Q}&format=pdf", 400, "format: expected one of"),
    ],
)
def test_bad_periods(browser_for: Any, query: str, status: int, text: str) -> None:
    path = "/reports/download" if "format" in query else "/reports"
    r = browser_for("admin").get(f"{path}?{query}")
    assert r.status_code == status
    assert text in r.text


def test_an_empty_period_and_roles(browser_for: Any) -> None:
    r = browser_for("admin").get("/reports?from=2025-01-06&to=2025-01-12")
    assert r.status_code == 200 and "Nothing was recorded in this period" in r.text
    assert browser_for("rita").get(f"/reports?{Q}").status_code == 403  # auditors see no incidents
    assert browser_for("admin").get("/reports").status_code == 200  # default: last week


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_reports_page_in_chromium(world: World, review: Review, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with live_server(create_app(review)) as url, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(url + "/signin")
            page.fill("input[name=username]", "ms-hs-c")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_url(url + "/incidents")
            page.click("nav a:has-text('Reports')")
            page.wait_for_url(url + "/reports")
            page.fill("input[name=from]", "2026-11-02")
            page.fill("input[name=to]", "2026-11-15")
            page.select_option("select[name=school]", "ms")
            page.click("button:has-text('Show')")
            page.wait_for_url("**school=ms**")
            charts = page.evaluate(
                "Array.from(document.querySelectorAll('figure.chart svg')).map(s => {"
                " const r = s.getBoundingClientRect(); return [r.width, r.height,"
                " s.querySelectorAll('path, use').length]; })"
            )
            shown = page.evaluate(
                """Array.from(document.querySelectorAll('table[data-section]')).flatMap(t => {
                  const cols = Array.from(t.querySelectorAll('thead th')).slice(1)
                    .map(th => th.textContent);
                  return Array.from(t.querySelectorAll('tbody tr')).flatMap(tr => {
                    const row = tr.querySelector('th').textContent;
                    return Array.from(tr.querySelectorAll('td')).map((td, i) =>
                      [t.dataset.section, row, cols[i], td.textContent]);
                  });
                })"""
            )
            fill = page.evaluate(
                "getComputedStyle(document.querySelector('figure.chart svg path[fill]')).fill"
            )
            page.screenshot(path=str(tmp_path / "reports.png"), full_page=True)
            with page.expect_download() as info:
                page.click("a:has-text('CSV')")
            download = Path(info.value.path()).read_text()
        finally:
            browser.close()
    assert len(charts) >= 4
    for w, h, marks in charts:
        assert w > 100 and h > 50 and marks > 10
    assert fill != "rgb(0, 0, 0)"  # presentation attributes, not CSS blocked by the CSP
    assert not [m for m in problems if "Content Security Policy" in m], problems
    assert {(s, r, c): v for s, r, c, v in shown} == cells(download)
    assert {r for (s, r, _c) in cells(download) if s == "overview"} == {"ms", "total"}
