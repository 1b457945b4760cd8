"""The PAC file end to end: served by the real mitmdump with the monitor's addons, run by a
real JavaScript engine (Debian's Chromium, driven by Playwright).

(a) Equivalence: the served file's FindProxyForURL, evaluated in Chromium for a few thousand
    names, sends a name to the proxy exactly when ``Classifier.platform_of`` finds a platform.
(b) A browser configured with ``--proxy-pac-url``: a catalogue host goes through the proxy (the
    block page, counted by the proxy), a site outside the catalogue goes DIRECT (the origin
    sees the request; the proxy counts nothing).
"""

from __future__ import annotations

import random
import string
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxyharness import ORIGIN_CA_NAME, World, start_world

from monitor.platforms.catalogue import Catalogue
from monitor.platforms.classify import Classifier

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    w = start_world(tmp_path_factory.mktemp("pac"))
    try:
        yield w
    finally:
        log = w.stop()
        if "Traceback" in log:
            print(log)


def fetch(
    url: str, *, method: str = "GET", proxy: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    handlers = [urllib.request.ProxyHandler({"http": proxy} if proxy else {})]
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, method=method)
    with opener.open(req, timeout=10) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def names_to_check(catalogue: Catalogue) -> list[str]:
    """Every catalogue name and its neighbourhood: subdomains, label-boundary traps, shared-CDN
    names listed and not, Google's school services, IP literals, trailing dots, upper case,
    malformed names and random names outside the catalogue."""
    rnd = random.Random(20261201)
    names: set[str] = set()
    for p in catalogue:
        for n in (*p.hosts, *p.suffixes, *p.page_hosts, *p.media_hosts):
            names |= {n, "www." + n, "a-1.b2." + n, "instant" + n, "x" + n.split(".", 1)[-1]}
            names |= {n + ".", n.upper(), n.title() + ".", n + "..", "." + n, n + ".evil.example"}
            names |= {n.replace(".", "-") + ".example", n.rsplit(".", 1)[0]}
        for s in (*p.page_suffixes, *p.media_suffixes):
            names.add("img9" + s)
    for cdn in catalogue.shared_cdn_suffixes:
        names |= {cdn, "random-7f3a." + cdn, "www." + cdn, cdn.upper() + "."}
    names |= {
        # Google's school services are never YouTube; YouTube's API host under googleapis is
        "classroom.google.com", "docs.google.com", "drive.google.com", "meet.google.com",
        "accounts.google.com", "www.google.com", "google.com", "fonts.googleapis.com",
        "www.gstatic.com", "storage.googleapis.com", "youtubei.googleapis.com",
        "YOUTUBEI.googleapis.com.", "x.youtubei.googleapis.com", "lh3.googleusercontent.com",
        "yt3.ggpht.com", "lh3.ggpht.com", "instanttelegram.com", "telegram.com.evil.example",
        "notyoutube.com", "youtube.com.example", "mytiktok.com", "tiktok.co",
        # IP literals and other things that are not host names
        "142.250.72.14", "127.0.0.1", "10.0.0.5", "1.2.3.4.", "::1", "2001:db8::1",
        "[2001:db8::1]", "", ".", "..", "localhost", "tiktok", "www..tiktok.com",
        "tik tok.com", "_dmarc.tiktok.com", "-x.tiktok.com", "a" * 63 + ".tiktok.com",
        ("abcdefghij" * 6 + ".") * 4 + "tiktok.com",  # over 253 characters
        "www.school-site.example", "www.wikipedia.org", "khanacademy.org",
    }  # fmt: skip
    tlds = ["com", "org", "net", "edu", "io", "co.uk", "example", "app", "dev"]
    letters = string.ascii_lowercase + string.digits + "-"
    for _ in range(600):
        labels = [
            "".join(rnd.choice(letters) for _ in range(rnd.randint(1, 12))).strip("-") or "a"
            for _ in range(rnd.randint(1, 3))
        ]
        names.add(".".join(labels) + "." + rnd.choice(tlds))
    return sorted(names)


def evaluate_pac(pac: str, hosts: list[str]) -> list[str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            return page.evaluate(  # type: ignore[no-any-return]
                """([source, hosts]) => {
                    const find = new Function(source + "\\nreturn FindProxyForURL;")();
                    return hosts.map((h) => find("https://" + h + "/", h));
                }""",
                [pac, hosts],
            )
        finally:
            browser.close()


def test_the_served_pac_routes_exactly_the_classifier_s_names(
    world: World, catalogue: Catalogue
) -> None:
    status, headers, body = fetch(f"http://127.0.0.1:{world.proxy.port}/proxy.pac")
    assert status == 200 and headers["content-type"] == "application/x-ns-proxy-autoconfig"
    assert headers["cache-control"] == "max-age=300"
    pac = body.decode()
    proxy = f"PROXY 127.0.0.1:{world.proxy.port}"
    classifier = Classifier(catalogue)  # the example district adds nothing to the catalogue
    hosts = names_to_check(catalogue)
    assert len(hosts) > 3000
    results = evaluate_pac(pac, hosts)
    wrong = [
        (h, got)
        for h, got in zip(hosts, results, strict=True)
        if got != (proxy if classifier.platform_of(h) is not None else "DIRECT")
    ]
    assert not wrong, wrong[:20]
    proxied = sum(1 for r in results if r == proxy)
    assert 1000 < proxied < len(hosts) - 1000  # both answers are well represented


def test_the_addon_answers_only_for_the_proxy_itself(world: World) -> None:
    port = world.proxy.port
    # HEAD, and the WPAD name
    status, headers, body = fetch(f"http://127.0.0.1:{port}/wpad.dat", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 10_000
    # through the proxy, to itself: served; to another site with that path: the site answers
    status, _, body = fetch(f"http://127.0.0.1:{port}/proxy.pac", proxy=f"127.0.0.1:{port}")
    assert b"FindProxyForURL" in body
    before = len(world.origin.requests_to("www.school-site.example"))
    status, headers, body = fetch(
        "http://www.school-site.example/proxy.pac", proxy=f"127.0.0.1:{port}"
    )
    assert status == 200 and b'"origin": "ok"' in body
    assert len(world.origin.requests_to("www.school-site.example")) == before + 1
    # inside a CONNECT tunnel, even with the proxy's own address as Host: the site answers
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-p", "-x", f"http://127.0.0.1:{port}",
         "-H", f"Host: 127.0.0.1:{port}", "http://www.school-site.example/proxy.pac"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert '"origin": "ok"' in r.stdout and "FindProxyForURL" not in r.stdout, r.stderr


def test_chromium_with_the_pac_sends_only_catalogue_hosts_to_the_proxy(world: World) -> None:
    from playwright.sync_api import sync_playwright

    port = world.proxy.port
    origin = world.origin
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *ARGS,
                f"--proxy-pac-url=http://127.0.0.1:{port}/proxy.pac",
                # every name the browser resolves itself is this machine: a DIRECT connection
                # reaches the local origin, never the internet
                "--host-resolver-rules=MAP * 127.0.0.1",
            ],
        )
        try:
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            # a catalogue host: through the proxy (the browser's address 127.0.0.1 is an
            # unknown person for the example district: treated as under 13, blocked)
            tiktok = world.metric("monitor_connections_total", platform="tiktok")
            blocked = world.metric("monitor_requests_total", platform="tiktok", decision="block")
            seen = len(origin.requests_to("www.tiktok.com"))
            response = page.goto("https://www.tiktok.com/", timeout=30_000)
            assert response is not None and response.status == 403
            assert page.title() == "Blocked by Example Unified School District"
            assert page.locator("#rule").inner_text() == "under13"
            assert world.metric("monitor_connections_total", platform="tiktok") > tiktok
            assert (
                world.metric("monitor_requests_total", platform="tiktok", decision="block")
                > blocked
            )
            assert len(origin.requests_to("www.tiktok.com")) == seen  # nothing left the proxy

            # a site outside the catalogue: DIRECT to the origin, the proxy never sees it
            others = world.metric("monitor_connections_total", platform="none")
            everything = world.metric("monitor_connections_total")
            seen = len(origin.requests_to("www.school-site.example"))
            url = f"https://www.school-site.example:{origin.https_port}/lesson"
            response = page.goto(url, timeout=30_000)
            assert response is not None and response.status == 200
            details = response.security_details()
            assert details is not None and details.get("issuer") == ORIGIN_CA_NAME
            assert origin.requests_to("www.school-site.example")[seen:][0].path == "/lesson"
            assert world.metric("monitor_connections_total", platform="none") == others
            assert world.metric("monitor_connections_total") == everything
        finally:
            browser.close()
