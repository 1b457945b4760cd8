"""End to end: a real mitmdump with the monitor's addons, real curl clients bound to the
example district's loopback demo addresses, and a local origin server with its own test CA.

The district is generated for today (so the 12/13 demo people are on either side of their
birthday); school hours are switched by rewriting the policy, which the proxy reloads.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from proxyharness import (
    ORIGIN_CA_NAME,
    Origin,
    OriginCA,
    Proxy,
    curl,
    free_port,
    make_origin_ca,
    start_proxy,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("America/New_York")
HOSTS = [
    "www.tiktok.com",
    "api16-normal-c-useast1a.tiktokv.com",
    "www.youtube.com",
    "www.youtubekids.com",
    "www.school-site.example",
    "www.instagram.com",
]
HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}

ALWAYS_OPEN = '{days: [mon-sun], start: "00:00", end: "23:59"}'


def write_policy(district: Path, *, in_hours: bool) -> None:
    """Rewrite the example policy so that 'now' is in (or outside) school hours."""
    text = (district / "policy.orig.yaml").read_text()
    text = re.sub(r'\{days: \[mon-fri\], start: "08:00", end: "15:00"\}', ALWAYS_OPEN, text)
    # drop the closed days so that today is a school day
    text = re.sub(r"(?ms)^closed:.*?(?=^schools:)", "closed: []\n\n", text)
    if not in_hours:
        today = datetime.now(TZ).date()
        span = f"{{from: {today - timedelta(days=150)}, to: {today + timedelta(days=150)}}}"
        text = text.replace("closed: []", f"closed: [{span}]", 1)
    (district / "policy.yaml").write_text(text)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("e2e")
    today = datetime.now(TZ).date()
    district = base / "district"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "generate_district.py"),
            "--out",
            str(district),
            "--today",
            today.isoformat(),
        ],
        check=True,
        capture_output=True,
    )
    (district / "policy.orig.yaml").write_text((district / "policy.yaml").read_text())
    write_policy(district, in_hours=True)
    ca = make_origin_ca(base / "ca", HOSTS)
    origin = Origin().start(ca)
    metrics_port = free_port()
    proxy = start_proxy(
        base,
        origin,
        ca,
        {
            "monitor_config": str(district),
            "monitor_metrics_listen": f"127.0.0.1:{metrics_port}",
            "monitor_reload_interval": "0.3",
            "connection_strategy": "lazy",
        },
    )
    try:
        yield {
            "district": district,
            "ca": ca,
            "origin": origin,
            "proxy": proxy,
            "metrics": metrics_port,
            "base": base,
        }
    finally:
        log = proxy.stop()
        origin.stop()
        if "Traceback" in log:
            print(log)


def _get(world: dict[str, object], url: str, client: str, **kw: object):  # type: ignore[no-untyped-def]
    proxy: Proxy = world["proxy"]  # type: ignore[assignment]
    ca: OriginCA = world["ca"]  # type: ignore[assignment]
    return curl(proxy, url, client=client, cacert=[proxy.ca_cert, ca.cert_pem], **kw)  # type: ignore[arg-type]


def metric(world: dict[str, object], name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{world['metrics']}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_reload(world: dict[str, object], component: str, result: str, before: float) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (
            metric(world, "monitor_config_reloads_total", component=component, result=result)
            > before
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {component} reload with result {result}")


def set_hours(world: dict[str, object], in_hours: bool) -> None:
    before = metric(world, "monitor_config_reloads_total", component="policy", result="success")
    time.sleep(0.05)  # a different mtime
    write_policy(world["district"], in_hours=in_hours)  # type: ignore[arg-type]
    wait_reload(world, "policy", "success", before)


def test_under13_gets_the_block_page_and_the_origin_sees_nothing(world: dict[str, object]) -> None:
    origin: Origin = world["origin"]  # type: ignore[assignment]
    n = len(origin.requests_to("www.tiktok.com"))
    r = _get(world, "https://www.tiktok.com/", "127.0.0.11", headers=HTML)
    assert r.status == 403
    assert "text/html" in r.headers["content-type"]
    assert "Students 12 and under may only use platforms made for their age group" in r.body
    assert "Example Unified School District" in r.body
    assert "help@district.example" in r.body
    assert ">under13<" in r.body  # the rule id
    assert "<script" not in r.body and "http://" not in r.body and "https://" not in r.body
    assert "mitmproxy" in r.issuer  # intercepted to show the page
    assert len(origin.requests_to("www.tiktok.com")) == n


def test_fetch_requests_get_a_short_json_answer(world: dict[str, object]) -> None:
    r = _get(
        world,
        "https://www.tiktok.com/api/feed",
        "127.0.0.11",
        headers={
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert r.status == 403
    body = json.loads(r.body)
    assert body["blocked"] is True and body["rule"] == "under13"


def test_api_host_is_refused_without_decrypting(world: dict[str, object]) -> None:
    before = metric(world, "monitor_connections_total", outcome="refused", platform="tiktok")
    r = _get(world, "https://api16-normal-c-useast1a.tiktokv.com/aweme/v1/feed/", "127.0.0.11")
    assert r.status == 403  # the CONNECT itself is answered: no TLS at all
    assert r.issuer == ""
    assert "CONNECT tunnel failed, response 403" in r.stderr
    assert (
        metric(world, "monitor_connections_total", outcome="refused", platform="tiktok")
        == before + 1
    )


def test_not_in_catalogue_passes_through_untouched(world: dict[str, object]) -> None:
    origin: Origin = world["origin"]  # type: ignore[assignment]
    r = _get(world, "https://www.school-site.example/lesson?id=7", "127.0.0.11")
    assert r.status == 200
    # the client talks TLS with the origin itself: the proxy did not decrypt
    assert ORIGIN_CA_NAME in r.issuer and "mitmproxy" not in r.issuer
    assert origin.requests_to("www.school-site.example")[-1].path == "/lesson?id=7"
    assert r.headers.get("alt-svc")  # untouched, not even headers


def test_staff_pass_through_on_social_media(world: dict[str, object]) -> None:
    r = _get(world, "https://www.tiktok.com/", "127.0.0.50", headers=HTML)
    assert r.status == 200
    assert ORIGIN_CA_NAME in r.issuer  # allowed without conditions: not decrypted


def test_unknown_device_is_treated_as_under13(world: dict[str, object]) -> None:
    for client in ("127.0.0.99", "127.0.0.1"):
        r = _get(world, "https://www.instagram.com/", client, headers=HTML)
        assert r.status == 403, client
        assert "under13" in r.body


def test_kids_platform_allowed_for_under13(world: dict[str, object]) -> None:
    r = _get(world, "https://www.youtubekids.com/", "127.0.0.11", headers=HTML)
    assert r.status == 200
    assert ORIGIN_CA_NAME in r.issuer


def test_thirteen_year_old_youtube_in_and_out_of_school_hours(world: dict[str, object]) -> None:
    origin: Origin = world["origin"]  # type: ignore[assignment]
    set_hours(world, in_hours=True)
    r = _get(world, "https://www.youtube.com/watch?v=abc", "127.0.0.13", headers=HTML)
    assert r.status == 200
    assert "mitmproxy" in r.issuer  # decrypted: restriction needs the request
    seen = origin.requests_to("www.youtube.com")[-1]
    assert seen.headers.get("YouTube-Restrict") == "Strict"
    assert "alt-svc" not in r.headers  # HTTP/3 advertisements removed from catalogue hosts
    # the 12-year-old who turns 13 tomorrow is still under the COPPA rule today
    r12 = _get(world, "https://www.youtube.com/", "127.0.0.12", headers=HTML)
    assert r12.status == 403 and "under13" in r12.body
    try:
        set_hours(world, in_hours=False)
        r = _get(world, "https://www.youtube.com/watch?v=abc", "127.0.0.13", headers=HTML)
        assert r.status == 403
        assert "student-social" in r.body
    finally:
        set_hours(world, in_hours=True)


def test_plain_http_is_enforced_too(world: dict[str, object]) -> None:
    origin: Origin = world["origin"]  # type: ignore[assignment]
    n = len(origin.requests_to("www.tiktok.com"))
    r = _get(world, "http://www.tiktok.com/", "127.0.0.11", headers=HTML)
    assert r.status == 403 and "under13" in r.body
    assert len(origin.requests_to("www.tiktok.com")) == n
    r = _get(world, "http://www.school-site.example/", "127.0.0.11")
    assert r.status == 200


def test_teacher_override_opens_a_platform_then_expires(world: dict[str, object]) -> None:
    district: Path = world["district"]  # type: ignore[assignment]
    # long enough for the grant command to start on a loaded machine (it refuses a past end)
    until = (datetime.now(TZ) + timedelta(seconds=15)).isoformat(timespec="seconds")
    before = metric(world, "monitor_config_reloads_total", component="overrides", result="success")
    # the 15-year-old is blocked on Instagram; a teacher opens it for them
    assert _get(world, "https://www.instagram.com/", "127.0.0.15", headers=HTML).status == 403
    teacher = _first_teacher(district)
    g = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "override",
            "grant",
            "--config",  # the district's store, which the proxy polls (not a file any more)
            str(district),
            "--teacher",
            teacher,
            "--platform",
            "instagram",
            "--student",
            _person_of(district, "127.0.0.15"),
            "--until",
            until,
            "--reason",
            "class project",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert g.returncode == 0, g.stderr
    wait_reload(world, "overrides", "success", before)
    r = _get(world, "https://www.instagram.com/", "127.0.0.15", headers=HTML)
    assert r.status == 200
    # an override never opens a non-children's platform to an under-13
    assert _get(world, "https://www.instagram.com/", "127.0.0.11", headers=HTML).status == 403
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        time.sleep(1)
        if _get(world, "https://www.instagram.com/", "127.0.0.15", headers=HTML).status == 403:
            break
    else:
        raise AssertionError("the override did not expire")


def test_incident_written_once_per_window_with_its_count(world: dict[str, object]) -> None:
    for _ in range(3):
        r = _get(
            world,
            "https://www.tiktok.com/api/commit/item/post/",
            "127.0.0.11",
            method="POST",
            data="x=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status == 403
    district: Path = world["district"]  # type: ignore[assignment]
    deadline = time.monotonic() + 20
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "monitor",
                "incidents",
                "list",
                "--config",
                str(district),
                "--platform",
                "tiktok",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            rows = [x for x in json.loads(out.stdout) if x["rule_id"] == "under13-activity"]
            if rows and rows[0]["count"] >= 3:
                break
        time.sleep(0.5)
    assert len(rows) == 1, rows
    inc = rows[0]
    assert inc["count"] == 3
    assert inc["platform"] == "tiktok" and inc["decision"] == "block"
    assert inc["school"] == "ms" and inc["age_band"] == "under13"
    assert str(inc["person"]).startswith("p-")  # a pseudonym, never the roster id
    assert inc["host"] == "www.tiktok.com"
    assert "x=1" not in json.dumps(inc)  # metadata, never content


def test_broken_policy_is_rejected_and_the_old_one_stays(world: dict[str, object]) -> None:
    district: Path = world["district"]  # type: ignore[assignment]
    good = (district / "policy.yaml").read_text()
    before = metric(world, "monitor_config_reloads_total", component="policy", result="failure")
    try:
        time.sleep(0.05)
        (district / "policy.yaml").write_text(
            good.replace("platforms: [youtube]", "platforms: [youtub]", 1)
        )
        wait_reload(world, "policy", "failure", before)
        # still the old policy: under-13 blocked, 13-year-old restricted on YouTube
        assert _get(world, "https://www.tiktok.com/", "127.0.0.11", headers=HTML).status == 403
        assert _get(world, "https://www.youtube.com/", "127.0.0.13", headers=HTML).status == 200
    finally:
        set_hours(world, in_hours=True)


def test_metrics_have_bounded_labels(world: dict[str, object]) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{world['metrics']}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "monitor_requests_total{" in text
    assert "127.0.0." not in text  # never an address
    assert "stu-" not in text and "p-" not in text  # never a person
    assert 'outcome="passthrough"' in text


def _person_of(district: Path, address: str) -> str:
    text = (district / "district.yaml").read_text()
    m = re.search(rf"cidr: {re.escape(address)}/32, (person|device): ([\w-]+)", text)
    assert m
    if m.group(1) == "person":
        return m.group(2)
    for line in (district / "devices.csv").read_text().splitlines():
        if line.startswith(m.group(2) + ","):
            return line.split(",")[2]
    raise AssertionError(address)


def _first_teacher(district: Path) -> str:
    for line in (district / "roster" / "roles.csv").read_text().splitlines():
        cells = line.split(",")
        if cells[5] == "teacher":
            return cells[3]
    raise AssertionError("no teacher")


def test_chromium_shows_the_block_page(world: dict[str, object]) -> None:
    """A real browser (Debian's Chromium, driven by Playwright) navigates to a blocked page."""
    from playwright.sync_api import sync_playwright

    proxy: Proxy = world["proxy"]  # type: ignore[assignment]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
            proxy={"server": f"http://127.0.0.1:{proxy.port}"},
        )
        try:
            # the browser connects from 127.0.0.1: an unknown person, treated as under 13
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            response = page.goto("https://www.tiktok.com/", timeout=30_000)
            assert response is not None and response.status == 403
            assert page.title() == "Blocked by Example Unified School District"
            reason = page.locator("#reason").inner_text()
            assert "Students 12 and under may only use platforms made for their age group" in reason
            assert page.locator("#rule").inner_text() == "under13"
            assert "You tried to visit TikTok." in page.locator("main").inner_text()
            page.screenshot(path=str(world["base"]) + "/block-page.png")  # type: ignore[operator]
        finally:
            browser.close()


def _traffic(world: dict[str, object]) -> None:
    """A scripted school morning: blocks, restrictions, passthrough, a bypass attempt, incidents."""
    _get(world, "https://www.tiktok.com/", "127.0.0.11", headers=HTML)
    _get(
        world,
        "https://www.tiktok.com/api/commit/item/post/",
        "127.0.0.11",
        method="POST",
        data="x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _get(world, "https://www.youtube.com/watch?v=abc", "127.0.0.13", headers=HTML)
    _get(world, "https://www.instagram.com/", "127.0.0.15", headers=HTML)
    _get(world, "https://dns.google/dns-query", "127.0.0.13")
    _get(world, "https://www.tiktok.com/", "127.0.0.50", headers=HTML)
    _get(world, "https://www.school-site.example/", "127.0.0.11")


def test_dashboards_have_data_from_a_real_proxy(
    world: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A real Prometheus scrapes the running proxy while scripted traffic goes through it; every
    dashboard panel's query, with its template variables filled in, returns data."""
    from promharness import empty_dashboard_queries, running_prometheus

    dashboards = {
        p.name: json.loads(p.read_text()) for p in sorted((ROOT / "dashboards").glob("*.json"))
    }
    rules = sorted((ROOT / "dashboards" / "rules").glob("*.yaml"))
    target = f"127.0.0.1:{world['metrics']}"
    with running_prometheus(tmp_path_factory.mktemp("prom"), [target], rule_files=rules) as prom:
        for _ in range(4):  # rate() needs two scrapes that saw the counters move
            _traffic(world)
            prom.wait_scrapes(1)
        prom.wait_scrapes(2)
        # recording rules need an evaluation after two samples of moving counters
        for expr in (
            "school_platform:monitor_bypass_requests:rate5m",
            'school:monitor_under13_blocks:ratio_rate5m{school="ms"}',
        ):
            try:
                prom.wait_for(f"count({expr}) > 0", timeout=20)
            except TimeoutError:
                _traffic(world)
                prom.wait_for(f"count({expr}) > 0", timeout=20)
        assert prom.label_values("school", 'monitor_requests_total{job="monitor"}')
        values = {"datasource": "unused", "school": "ms", "platform": "tiktok", "instance": target}
        empty = empty_dashboard_queries(prom, dashboards, values)
        # the teacher-override panels need a teacher's grant, which this traffic does not make:
        # tests/web/test_teacher_browser.py reads the gauge from a real proxy after a grant
        # made in Chromium, tests/web/test_teacher_messages.py the allowed-requests counter
        needs_grant = ("monitor_overrides_active", "monitor_override_allowed_requests_total")
        empty = [e for e in empty if not any(m in e for m in needs_grant)]
        assert empty == [], "\n".join(empty)
        # bounded labels only: no address or person reached Prometheus
        series = prom.api("series", {"match[]": '{job="monitor"}'})
        text = json.dumps(series)
        assert "127.0.0." not in text.replace(target, "")
        assert '"p-' not in text and "stu-" not in text
