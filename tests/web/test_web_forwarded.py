"""Forwarded headers: the address in the record of access and the one the sign-in limit counts
is the connection's peer, unless that peer is a proxy the district configured
(``--forwarded-allow-ips``, none by default). Through the real ``monitor review`` command
(uvicorn on 127.0.0.1) and through the app itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from reviewharness import (
    PASSWORD,
    Browser,
    SignInForm,
    World,
    copy_district,
    csrf_of,
    monitor_review,
)
from starlette.testclient import TestClient

from monitor.district import DistrictLoader
from monitor.incidents.access import AccessLog
from monitor.incidents.store import open_store
from monitor.web import create_app


def failed_signins(config: Path) -> list[str]:
    """The details ("from ADDRESS") of the failed sign-ins in the district's store, oldest
    first."""
    district = DistrictLoader(config).load()
    store = open_store(district.store_url, create=False)
    try:
        records = AccessLog(store.engine).list()
    finally:
        store.close()
    return [r.detail for r in reversed(records) if r.action == "sign_in_failed"]


@pytest.mark.slow
def test_by_default_a_forged_forwarded_for_changes_nothing(tmp_path: Path) -> None:
    config = copy_district(tmp_path / "district")
    with monitor_review(config) as base:
        statuses = []
        for i in range(6):
            form = SignInForm(base, {"X-Forwarded-For": f"203.0.113.{i + 1}"})
            statuses.append(form.post(f"ghost{i}", "wrong password").status)
            form.close()
    # one address (the peer) for all six, so the sixth is over the limit of five
    assert statuses == [401] * 5 + [429]
    assert failed_signins(config) == ["from 127.0.0.1"] * 5


@pytest.mark.slow
def test_a_configured_proxy_is_believed(tmp_path: Path) -> None:
    config = copy_district(tmp_path / "district")
    with monitor_review(config, "--forwarded-allow-ips", "127.0.0.1") as base:
        statuses = []
        for i in range(6):
            form = SignInForm(base, {"X-Forwarded-For": f"198.51.100.7, 203.0.113.{i + 1}"})
            statuses.append(form.post(f"ghost{i}", "wrong password").status)
            form.close()
        # six people behind the proxy: each has their own allowance
        assert statuses == [401] * 6
        # and one of them is limited at their own address
        again = []
        for i in range(5):
            form = SignInForm(base, {"X-Forwarded-For": "203.0.113.1"})
            again.append(form.post(f"other{i}", "wrong password").status)
            form.close()
        assert again == [401] * 4 + [429]
    # the nearest address the proxy saw, not what the client claimed before it
    assert failed_signins(config)[:6] == [f"from 203.0.113.{i + 1}" for i in range(6)]


# -- the app itself, whatever server runs it ------------------------------------------------


def sign_in_from(
    world: World, peer: str, headers: dict[str, str], base_url: str = "http://127.0.0.1"
) -> TestClient:
    client = TestClient(create_app(world.review), base_url=base_url, client=(peer, 40000))
    page = client.get("/signin")
    resp = client.post(
        "/signin",
        data={"csrf": csrf_of(page.text), "username": "admin", "password": PASSWORD},
        headers=headers,
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return client


def test_app_uses_the_peer_unless_it_is_a_configured_proxy(
    world_factory: Callable[..., World],
) -> None:
    plain = world_factory()
    plain.account("admin", "administrator")
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with sign_in_from(plain, "10.0.0.5", forged) as client:
        cookie = next(c for c in client.cookies.jar if c.name == "monitor_session")
        assert not cookie.secure  # a forged X-Forwarded-Proto does not make it https
    assert plain.review.access.list(limit=1)[0].detail == "from 10.0.0.5"

    proxied = world_factory(forwarded_allow_ips=("10.0.0.0/24",))
    proxied.account("admin", "administrator")
    with sign_in_from(proxied, "10.0.0.5", forged) as client:
        cookie = next(c for c in client.cookies.jar if c.name == "monitor_session")
        assert cookie.secure  # the proxy terminated TLS
    assert proxied.review.access.list(limit=1)[0].detail == "from 203.0.113.9"
    # another peer, outside the configured network, is not believed
    with sign_in_from(proxied, "10.0.1.5", forged):
        pass
    assert proxied.review.access.list(limit=1)[0].detail == "from 10.0.1.5"


@pytest.mark.parametrize("value", ["not-an-address", "", "203.0.113.9, junk", "::1]"])
def test_a_configured_proxys_garbage_is_not_recorded(
    world_factory: Callable[..., World], value: str
) -> None:
    w = world_factory(forwarded_allow_ips=("10.0.0.5",))
    w.account("admin", "administrator")
    with sign_in_from(w, "10.0.0.5", {"X-Forwarded-For": value}):
        pass
    detail = w.review.access.list(limit=1)[0].detail
    assert detail == "from 10.0.0.5", detail


def test_forwarded_for_does_not_escape_the_limit_in_process(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    b = browser_for()
    limit = world.review.settings.signin_limit
    codes = []
    for i in range(limit + 1):
        page = b.get("/signin")
        resp = b.client.post(
            "/signin",
            data={"csrf": csrf_of(page.text), "username": f"ghost{i}", "password": "wrong"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            follow_redirects=False,
        )
        codes.append(resp.status_code)
    assert codes == [401] * limit + [429]


def test_proxy_addresses_and_networks() -> None:
    from monitor.web.forwarded import parse_proxies

    nets = parse_proxies(["10.0.0.5, 10.1.0.0/16", "::1", " "])
    assert [str(n) for n in nets] == ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]
    assert parse_proxies([]) == ()
    with pytest.raises(ValueError, match="'10.0.0.300' is not a proxy address"):
        parse_proxies(["10.0.0.1,10.0.0.300"])
