"""``monitor report``: the formats carry the same numbers, the HTML file opens in headless
Chromium with every chart loaded and its tables equal to the CSV, a school's report, bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from reportworld import World, build_world

from monitor.cli import main
from monitor.incidents.access import AccessFilter, AccessLog
from monitor.reports.render import cell

CHROMIUM = "/usr/bin/chromium"
Cells = dict[tuple[str, str, str], str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("cli"))
    yield w
    w.store.close()
    w.loader.close()


def run(world: World, *args: str) -> Any:
    base = ["report", "--config", str(world.district.config_dir), "--db", world.url]
    return CliRunner().invoke(main, [*base, *args], catch_exceptions=False)


PERIOD = ("--from", "2026-11-02", "--to", "2026-11-15")


def csv_cells(text: str) -> Cells:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "row", "column", "value"]
    return {(s, r, c): v for s, r, c, v in rows[1:]}


def test_csv_json_and_xlsx_carry_the_same_numbers(world: World, tmp_path: Path) -> None:
    r = run(world, *PERIOD, "--format", "csv")
    assert r.exit_code == 0, r.output
    cells = csv_cells(r.stdout)
    assert cells[("blocked_by_platform", "tiktok", "blocked")] == "17"
    assert cells[("under13_trend", "direction", "value")] == "falling"
    assert len(cells) > 100

    r = run(world, *PERIOD, "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["from"] == "2026-11-02" and doc["schools"] is None and not doc["empty"]
    from_json = {
        (s["name"], row["row"], c): cell(row[c])
        for s in doc["sections"]
        for row in s["rows"]
        for c in s["columns"]
    }
    assert from_json == cells

    out = tmp_path / "r.xlsx"
    r = run(world, *PERIOD, "--out", str(out))  # the format from the suffix
    assert r.exit_code == 0, r.output
    wb = load_workbook(out)
    from_xlsx: Cells = {}
    for name in wb.sheetnames[1:]:
        rows = list(wb[name].iter_rows(values_only=True))
        header = rows[1]
        for row in rows[2:]:
            for c, v in zip(header[1:], row[1:], strict=True):
                from_xlsx[(name, str(row[0]), str(c))] = cell("" if v is None else v)
    assert from_xlsx == cells


def test_a_principals_report_holds_only_their_school(world: World) -> None:
    r = run(world, *PERIOD, "--school", "hs", "--format", "csv")
    cells = csv_cells(r.stdout)
    schools = {row for (s, row, _c) in cells if s == "overview"}
    assert schools == {"hs", "total"}
    assert cells[("overview", "total", "requests")] == "116"
    assert {v for (s, _r, c), v in cells.items() if s == "top_students" and c == "school"} == {"hs"}


def test_a_report_listing_students_is_in_the_record_of_access(world: World) -> None:
    log = AccessLog(world.store.engine)
    before = log.count(AccessFilter(action="report"))
    run(world, *PERIOD, "--school", "ms", "--format", "json")
    assert log.count(AccessFilter(action="report")) == before + 1
    record = log.list(AccessFilter(action="report"), limit=1)[0]
    assert "· ms ·" in record.detail and record.account.endswith("@cli")
    for name, listed in (("ana", True), ("cy", True), ("ben", False)):
        found = log.list(AccessFilter(action="report", person=world.people[name]), limit=50)
        assert (record.id in {r.id for r in found}) is listed, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-11-15", "--to", "2026-11-02"), "--to must be on or after --from"),
        (("--from", "2026-11-31", "--to", "2026-12-02"), "--from '2026-11-31': expected a date"),
        ((*PERIOD, "--school", "zz"), "'zz' is not a school of the district (known: es, hs, ms)"),
        ((*PERIOD, "--format", "xlsx"), "--format xlsx writes a file: give --out FILE.xlsx"),
    ],
)
def test_bad_input_is_a_clear_error(world: World, args: tuple[str, ...], message: str) -> None:
    r = run(world, *args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_an_empty_period_is_a_report_that_says_so(world: World, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    r = run(world, "--from", "2025-01-06", "--to", "2025-01-12", "--out", str(out))
    assert r.exit_code == 0
    assert "nothing was recorded from 2025-01-06 to 2025-01-12" in r.stderr
    assert "Nothing was recorded in this period" in out.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_html_report_in_chromium(world: World, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    assert run(world, *PERIOD, "--out", str(out)).exit_code == 0
    cells = csv_cells(run(world, *PERIOD, "--format", "csv").stdout)
    html = out.read_text()
    assert "http://" not in html.replace("http://127.0.0.1:8000/students/", "").replace(
        "http://www.w3.org", ""
    )  # self-contained: nothing to fetch
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto(out.as_uri())
            images = page.evaluate(
                "Array.from(document.images).map(i => ({alt: i.alt, done: i.complete,"
                " w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))"
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
            page.emulate_media(media="print")
            pdf = page.pdf()
        finally:
            browser.close()
    assert len(images) == 5
    for img in images:
        assert img["done"] and img["w"] > 0 and img["h"] > 0 and img["shown"] > 0, img
    assert {(s, r, c): v for s, r, c, v in shown} == cells  # every cell, the same numbers
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000  # printable
