"""End to end: domain fronting and Host-header tricks against a real mitmdump.

A client controls three names: the CONNECT host (where the proxy connects), the TLS server name
and the Host header. Whichever of them names a platform blocked for the person, in whichever
order, the request is blocked and the origin sees nothing. A raw socket client (bound to a demo
address) makes the names disagree, as curl will not.

A connection whose CONNECT host and server name are both allowed passes through undecrypted (the
privacy promise): its Host header is never seen, and the bytes go to the allowed platform.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxyharness import ORIGIN_CA_NAME, RawResult, World, raw_request, start_world

pytestmark = pytest.mark.slow

KID, TEACHER = "127.0.0.11", "127.0.0.50"
TIKTOK, KIDS = "www.tiktok.com", "www.youtubekids.com"
TIKTOK_API = "api16-normal-c-useast1a.tiktokv.com"
SCHOOL = "www.school-site.example"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("fronting"))
    try:
        yield w
    finally:
        log = w.stop()
        assert "Traceback" not in log, log


def request(world: World, client: str, connect: str | None, sni: str, host: str) -> RawResult:
    return raw_request(
        world.proxy,
        client=client,
        connect_host=connect,
        sni=sni,
        host_header=host,
        cacerts=[world.proxy.ca_cert, world.ca.cert_pem],
        headers=HTML,
    )


def seen(world: World) -> int:
    return len(world.origin.seen)


@pytest.mark.parametrize(
    ("connect", "sni", "host"),
    [
        (TIKTOK, KIDS, KIDS),  # CONNECT to TikTok with YouTube Kids' names
        (KIDS, TIKTOK, KIDS),  # the other way round
        (TIKTOK, TIKTOK, KIDS),  # an intercepted TikTok connection, a YouTube Kids Host
        (TIKTOK, SCHOOL, SCHOOL),  # a name outside the catalogue as the front
        (SCHOOL, TIKTOK, SCHOOL),
    ],
)
def test_fronted_tls_to_a_blocked_platform_gets_the_block_page(
    world: World, connect: str, sni: str, host: str
) -> None:
    before = seen(world)
    r = request(world, KID, connect, sni, host)
    assert r.connect_status == 200
    assert r.status == 403, r
    assert "under13" in r.body and "TikTok" in r.body
    assert "mitmproxy" in r.issuer  # decrypted to show the page, never passed through
    assert seen(world) == before  # nothing reached the origin


@pytest.mark.parametrize(
    ("connect", "sni"),
    [(TIKTOK_API, KIDS), (KIDS, TIKTOK_API), (SCHOOL, TIKTOK_API), (TIKTOK_API, SCHOOL)],
)
def test_fronted_tls_to_a_blocked_api_host_is_refused_without_decrypting(
    world: World, connect: str, sni: str
) -> None:
    before = seen(world)
    refused = world.metric("monitor_connections_total", outcome="refused", platform="tiktok")
    r = request(world, KID, connect, sni, sni)
    assert r.status == 0 and r.issuer == ""  # no TLS session with anyone
    assert seen(world) == before
    assert (
        world.metric("monitor_connections_total", outcome="refused", platform="tiktok")
        == refused + 1
    )


def test_plain_http_is_decided_on_where_it_goes_not_on_its_host_header(world: World) -> None:
    before = seen(world)
    r = request(world, KID, None, TIKTOK, "example.org")  # GET http://www.tiktok.com/, Host: …
    assert r.status == 403 and "under13" in r.body
    r = request(world, KID, None, SCHOOL, TIKTOK)  # and on its Host header too
    assert r.status == 403 and "under13" in r.body
    assert seen(world) == before


def test_agreeing_names_are_unchanged(world: World) -> None:
    before = seen(world)
    kids = request(world, KID, KIDS, KIDS, KIDS)  # allowed, passed through untouched
    assert kids.status == 200 and ORIGIN_CA_NAME in kids.issuer
    teacher = request(world, TEACHER, TIKTOK, KIDS, TIKTOK)  # staff: both names allowed
    assert teacher.status == 200 and ORIGIN_CA_NAME in teacher.issuer
    assert seen(world) == before + 2


def test_fronting_attempts_are_recorded_as_incidents_of_the_blocked_platform(
    world: World,
) -> None:
    blocked = world.metric(
        "monitor_requests_total", platform="tiktok", decision="block", age_band="under13"
    )
    request(world, KID, KIDS, TIKTOK, KIDS)
    assert (
        world.metric(
            "monitor_requests_total", platform="tiktok", decision="block", age_band="under13"
        )
        == blocked + 1
    )
