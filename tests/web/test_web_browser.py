"""The review app in a real browser: ``monitor review`` (uvicorn) on 127.0.0.1 driven by
Debian's headless Chromium through Playwright. A counselor signs in, filters, opens an
incident, acknowledges it with a note, reveals a student with a reason and downloads the CSV
export; an auditor then finds each of those in the record of access; a stranger gets nowhere."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reviewharness import copy_district, students

from monitor.district import DistrictLoader, pseudonym_key
from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.incidents.store import open_store
from monitor.incidents.store.migrations import upgrade

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
PASSWORD = "counselor password 1"
AUDITOR_PASSWORD = "auditor password 22"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _monitor(*args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "monitor", *args], input=stdin, text=True,
                   check=True, capture_output=True, timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("browser")
    config = copy_district(base / "district")
    loader = DistrictLoader(config)
    district = loader.load()
    key = pseudonym_key(district)
    upgrade(district.store_url)
    hs = students(loader, "hs", 3)
    es = students(loader, "es", 1)
    now = datetime.now(UTC)

    def ev(person: Any, hours: float, **over: Any) -> IncidentEvent:
        base_: dict[str, Any] = dict(
            time=now - timedelta(hours=hours), person=pseudonym(key, person.sourced_id),
            school=district.school_label(person.school), grade=",".join(person.grades),
            age_band="teen", role="student", platform="tiktok", activity="post",
            action="block", rule_id="students.social", reason="Social media is for class use.",
            host="www.tiktok.com", source="proxy", severity="high",
        )  # fmt: skip
        base_.update(over)
        return IncidentEvent(**base_)

    store = open_store(district.store_url, create=False)
    store.write_batch([
        ev(hs[0], 1, host="<script>alert(1)<"),
        ev(hs[1], 2, platform="instagram", severity="low"),
        ev(hs[2], 3, platform="snapchat", severity="medium"),
        ev(es[0], 1),
    ])  # fmt: skip
    store.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_ADMIN_PASSWORD"}
    log = (base / "review.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "review", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("monitor review did not start:\n" + log.read()) from None
                time.sleep(0.1)
        # accounts made after the first start, which made 'admin' (there was no account yet)
        _monitor("users", "add", "pat", "--role", "counselor", "--school", "hs", "--position",
                 "School counselor", "--password-stdin", "--config", str(config), stdin=PASSWORD + "\n")  # fmt: skip
        _monitor("users", "add", "rita", "--role", "auditor", "--position", "Records officer",
                 "--password-stdin", "--config", str(config), stdin=AUDITOR_PASSWORD + "\n")  # fmt: skip
        yield {"url": f"http://127.0.0.1:{port}", "base": base, "log": log, "hs": hs, "es": es,
               "key": key, "store_url": district.store_url}  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/")
    assert page.url.startswith(url + "/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")


def test_first_start_made_an_administrator_and_printed_its_password_once(
    server: dict[str, Any],
) -> None:
    server["log"].seek(0)
    out = server["log"].read()
    found = re.findall(r"created the administrator account 'admin' with password (\S+)", out)
    assert len(found) == 1
    # it works, in the store the app uses
    from monitor.web.accounts import Accounts

    store = open_store(server["store_url"], create=False)
    assert Accounts(store.engine).authenticate("admin", found[0]) is not None
    store.close()


def test_counselor_then_auditor(server: dict[str, Any], chromium: Any) -> None:
    url, base = server["url"], server["base"]
    hs, es = server["hs"], server["es"]
    key = server["key"]
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    sign_in(page, url, "pat", PASSWORD)
    page.wait_for_url(url + "/incidents")
    rows = page.locator("table.incidents tbody tr")
    assert rows.count() == 3  # hs only: the es incident is not there
    assert "<script>alert(1)<" in page.locator("td.host").first.inner_text()  # shown as text
    assert es[0].given_name not in page.content()

    # filter: high severity, TikTok
    page.select_option("select[name=severity]", "high")
    page.fill("input[name=platform]", "tiktok")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r".*severity=high.*"))
    assert rows.count() == 1
    first_id = rows.first.locator("td").first.inner_text()

    # open it, acknowledge with a note
    rows.first.locator("a").first.click()
    page.wait_for_url(f"{url}/incidents/{first_id}")
    page.fill("textarea[name=note]", "Talked with the student after class.")
    page.click("button[value=acknowledge]")
    page.wait_for_url(f"{url}/incidents/{first_id}")
    assert page.locator("h1 .badge.st-acknowledged").inner_text() == "acknowledged"
    assert "pat: Talked with the student after class." in page.locator("ul.notes").inner_text()

    # reveal with a reason
    p0 = pseudonym(key, hs[0].sourced_id)
    name = f"{hs[0].given_name} {hs[0].family_name}"
    assert name not in page.content()
    page.click(f"a[href='/students/{p0}'] >> nth=0")
    page.wait_for_url(f"{url}/students/{p0}")
    assert name not in page.content()
    page.fill("form.reveal input[name=reason]", "Parent meeting about phone use")
    page.click("button:has-text('Reveal')")
    assert page.locator(".revealed .name").inner_text() == name
    page.screenshot(path=str(base / "revealed.png"), full_page=True)

    # export the filtered list as CSV (a real download)
    page.goto(url + "/incidents?severity=high")
    page.click("details.export summary")
    page.fill("details.export input[name=reason]", "Weekly safety review")
    with page.expect_download() as dl:
        page.click("button:has-text('Export CSV')")
    path = dl.value.path()
    rows_csv = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert [r["id"] for r in rows_csv] == [first_id]
    assert rows_csv[0]["person"] == p0 and rows_csv[0]["host"] == "<script>alert(1)<"
    assert hs[0].given_name not in Path(path).read_text()
    page.screenshot(path=str(base / "incidents.png"), full_page=True)
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r".*/signin.*"))
    context.close()

    # the auditor sees each of those
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, url, "rita", AUDITOR_PASSWORD)
    page.wait_for_url(url + "/access")
    text = page.locator("table.access").inner_text()
    for expected in ("viewed the incident list", "filters: severity=high", "viewed an incident",
                     "acknowledge: status new → acknowledged; note added",
                     "revealed a student's name", "Parent meeting about phone use",
                     "exported incidents (CSV)", "Weekly safety review", "School counselor"):  # fmt: skip
        assert expected in text, expected
    reveal_row = page.locator("tr.act-reveal").first.inner_text()
    assert "pat" in reveal_row and hs[0].sourced_id in reveal_row and p0 in reveal_row
    assert (
        page.locator("tr.act-view_incident").count() >= 2
    )  # opened, then back after acknowledging
    page.screenshot(path=str(base / "access.png"), full_page=True)
    # the per-student access report, by roster id
    page.fill("form.report input[name=student]", hs[0].sourced_id)
    page.click("form.report button")
    page.wait_for_url(re.compile(r".*/access/student.*"))
    report = page.locator("table.access").inner_text()
    assert "Parent meeting about phone use" in report and "Weekly safety review" in report
    assert "Talked with the student" not in report  # notes are not access records
    # the auditor cannot read incidents
    assert page.goto(url + "/incidents").status == 403
    context.close()


def test_a_stranger_gets_nowhere(server: dict[str, Any], chromium: Any) -> None:
    url = server["url"]
    context = chromium.new_context()
    page = context.new_page()
    for target in ("/incidents", "/incidents/1", "/access"):
        page.goto(url + target)
        assert page.url.startswith(url + "/signin")
        assert "<table" not in page.content()
    for i in range(6):
        sign_in(page, url, "pat", f"guess number {i}")
        msg = page.locator(".error").inner_text()
        if i < 5:
            assert "Wrong username or password" in msg
        else:
            assert "Too many failed sign-ins" in msg
    # even the right password is refused now (from this address, for this account)
    sign_in(page, url, "pat", PASSWORD)
    assert "Too many failed sign-ins" in page.locator(".error").inner_text()
    cookies = {c["name"]: c for c in context.cookies()}
    assert "monitor_session" not in cookies
    assert (
        cookies["monitor_signin"]["httpOnly"] and cookies["monitor_signin"]["sameSite"] == "Strict"
    )
    context.close()
