"""The whole path, with real parts: a teacher signs in through the local OpenID provider in
Chromium (Playwright), opens YouTube for a class, and a student of that class is then let
through the real proxy (mitmdump, curl from the student's demo address); after revocation the
student is blocked again; an under-13 classmate stays blocked all along."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from oidcprovider.harness import User, running
from proxyharness import (
    EXAMPLE_HOSTS,
    CurlResult,
    Origin,
    curl,
    example_district,
    free_port,
    make_origin_ca,
    start_proxy,
)

from monitor.district import DistrictLoader
from monitor.incidents.access import AccessFilter
from monitor.web import Review, ReviewSettings, create_app
from monitor.web.oidc import load_signin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
PASSWORD = "provider password 1"
TEEN, CHILD = "127.0.0.13", "127.0.0.12"  # turned 13 yesterday; turns 13 tomorrow

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


CAS: list[Path] = []  # the proxy's CA, and the origin's (an allowed tunnel is not decrypted)


def youtube(proxy: Any, client: str) -> CurlResult:
    return curl(proxy, "https://www.youtube.com/", client=client, cacert=CAS,
                headers={"Accept": "text/html"})  # fmt: skip


def until(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    district = example_district(tmp_path, always_in_hours=False)
    # a district closed every day: no school hours, so a student's YouTube is blocked (not
    # restricted) at whatever time the test runs, and only an override can open it
    policy = district / "policy.yaml"
    today = date.today()
    closed = f"closed: [{{from: {today - timedelta(days=150)}, to: {today + timedelta(days=150)}}}]"
    policy.write_text(re.sub(r"(?ms)^closed:.*?(?=^schools:)", closed + "\n\n", policy.read_text()))
    loader = DistrictLoader(district)
    d = loader.load()
    teen, child = (d.resolver.resolve(a).person for a in (TEEN, CHILD))
    assert teen is not None and child is not None
    shared = sorted(set(teen.classes) & set(child.classes))
    assert shared, "the demo pair shares a class"
    cls = d.roster.classes[shared[0]]
    teacher = d.roster.people[cls.teachers[0]]
    ca = make_origin_ca(tmp_path / "ca", EXAMPLE_HOSTS)
    origin = Origin().start(ca)
    metrics_port = free_port()
    proxy = start_proxy(tmp_path, origin, ca, {
        "monitor_config": str(district), "monitor_reload_interval": "0.3",
        "monitor_metrics_listen": f"127.0.0.1:{metrics_port}", "connection_strategy": "lazy",
    })  # fmt: skip
    CAS[:] = [proxy.ca_cert, ca.cert_pem]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    users = [User(teacher.email, PASSWORD, teacher.email, "Demo teacher")]
    import uvicorn

    try:
        with running([app_url + "/signin/oidc/callback"], users) as provider:
            (tmp_path / "signin").mkdir()
            (tmp_path / "signin" / "signin.yaml").write_text(provider.signin_yaml())
            signin = load_signin(tmp_path / "signin",
                                 {"MONITOR_OIDC_CLIENT_SECRET": provider.client_secret})  # fmt: skip
            review = Review.open(district, ReviewSettings(signin=signin, purge_every=None,
                                                          reload_every=None, overrides_every=0.5))  # fmt: skip
            server = uvicorn.Server(uvicorn.Config(create_app(review), log_level="warning"))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            assert until(lambda: server.started, 30)
            try:
                yield {"app": app_url, "proxy": proxy, "class": cls, "teacher": teacher,
                       "review": review, "metrics": metrics_port, "child": child}  # fmt: skip
            finally:
                server.should_exit = True
                thread.join(timeout=30)
                review.close()
    finally:
        sock.close()
        proxy.stop()
        origin.stop()


def metric(port: int, name: str, **labels: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()))  # fmt: skip


def test_a_teacher_opens_youtube_for_a_class(world: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    proxy, cls, app = world["proxy"], world["class"], world["app"]
    before = youtube(proxy, TEEN)
    assert before.status == 403 and "student-social" in before.headers["x-monitor-rule"]
    assert 'id="ask-teacher"' in before.body  # a teacher could open it for them
    child_before = youtube(proxy, CHILD)
    assert child_before.status == 403 and 'id="ask-teacher"' not in child_before.body

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(app + "/signin")
            page.click("#oidc")
            page.fill("#login", world["teacher"].email)
            page.fill("#password", PASSWORD)
            page.click("#submit")
            page.wait_for_url(app + "/teacher")
            page.click(f"a[href='/teacher/classes/{cls.sourced_id}']")
            page.select_option("select[name=platform]", "youtube")
            page.click("text=Check who it applies to")
            excluded = page.inner_text("#excluded")
            child = world["child"]
            assert f"{child.given_name} {child.family_name[0]}." in excluded
            page.fill("#grant input[name=minutes]", "30")
            page.fill("#grant input[name=reason]", "art history documentary")
            page.click("#grant button[type=submit]")
            page.wait_for_selector("#active")
            assert "youtube" in page.inner_text("#active")

            allowed = until(lambda: (r := youtube(proxy, TEEN)).status == 200 and r)
            assert allowed and '"origin": "ok"' in allowed.body
            assert youtube(proxy, CHILD).status == 403  # under 13: never by an override
            assert metric(world["metrics"], "monitor_overrides_active", platform="youtube") == 1
            # allowed for every request: the tunnel passes through, undecrypted
            assert metric(world["metrics"], "monitor_connections_total", outcome="passthrough",
                          platform="youtube") >= 1  # fmt: skip

            page.click("#active button[name=revoke]")
            page.wait_for_load_state()
            blocked = until(lambda: (r := youtube(proxy, TEEN)).status == 403 and r)
            assert blocked and "student-social" in blocked.headers["x-monitor-rule"]
        finally:
            browser.close()
    access = world["review"].access
    (g,) = access.list(AccessFilter(action="override_grant"))
    (r,) = access.list(AccessFilter(action="override_revoke"))
    assert (
        g.role == "teacher" and cls.sourced_id in g.detail and g.reason == "art history documentary"
    )
    assert r.account == g.account
