"""Sign-in, sessions, CSRF, cookies, rate limiting, headers: the ways in and the ways not in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from reviewharness import PASSWORD, Browser, World, csrf_of, students
from starlette.testclient import TestClient

from monitor.web import create_app
from monitor.web.accounts import Accounts, ensure_first_admin

GET_PAGES = ["/", "/incidents", "/incidents/1", "/students/p-0123456789abcdef", "/access",
             "/access/student?student=p-0123456789abcdef", "/incidents?school=hs"]  # fmt: skip
POST_PAGES = ["/signout", "/incidents/export", "/incidents/1/review", "/incidents/1/assign",
              "/students/p-0123456789abcdef/reveal", "/students/p-0123456789abcdef/record"]  # fmt: skip


@pytest.mark.parametrize("url", GET_PAGES)
def test_without_a_session_every_page_goes_to_sign_in(
    browser_for: Callable[..., Browser], url: str
) -> None:
    b = browser_for()
    resp = b.get(url)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/signin")
    assert "Eden" not in resp.text and "<table" not in resp.text


@pytest.mark.parametrize("url", POST_PAGES)
def test_without_a_session_no_form_does_anything(
    world: World, browser_for: Callable[..., Browser], url: str
) -> None:
    (p,) = students(world.review.loader, "hs", 1)
    world.incident(p)
    b = browser_for()
    resp = b.post(url, {"action": "resolve", "note": "x", "reason": "because I can"})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/signin")
    (inc,) = world.review.store.list()
    assert inc.status == "new" and inc.notes == ""
    assert world.review.access.count() == 0


def test_a_forged_session_cookie_is_no_session(browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    b.client.cookies.set("monitor_session", "A" * 43)
    assert b.get("/incidents").status_code == 303


def test_sign_in_and_out(world: World, browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    resp = b.sign_in("hs-counselor")
    assert resp.status_code == 303 and resp.headers["location"] == "/incidents"
    page = b.get("/incidents")
    assert page.status_code == 200 and "hs-counselor" in page.text
    old = b.client.cookies.get("monitor_session")
    assert b.post("/signout").status_code == 303
    assert b.get("/incidents").status_code == 303
    # the old token is dead on the server, not just deleted in this browser
    b.client.cookies.set("monitor_session", old or "")
    assert b.get("/incidents").status_code == 303
    actions = [r.action for r in world.review.access.list()]
    assert actions == ["sign_out", "list", "list", "sign_in"]  # sign_in() opened the list once


def test_auditor_lands_on_the_record_of_access(browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    assert b.sign_in("auditor").headers["location"] == "/access"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("hs-counselor", "wrong password!!"),
        ("nobody", PASSWORD),
        ("HS-COUNSELOR", "x" * 2000),
        ("", ""),
    ],
)
def test_wrong_credentials_are_refused(world: World, browser_for: Callable[..., Browser],
                                       username: str, password: str) -> None:  # fmt: skip
    b = browser_for()
    resp = b.sign_in(username, password)
    assert resp.status_code == 401
    assert "Wrong username or password" in resp.text
    assert b.client.cookies.get("monitor_session") is None
    (rec,) = world.review.access.list()
    assert rec.action == "sign_in_failed"
    # a typed password must never end up in the log as a username
    assert rec.account in ("hs-counselor", "(unknown)")
    assert not password or password not in rec.detail + rec.account


def test_disabled_account_cannot_sign_in_and_its_session_ends(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    b = browser_for("hs-counselor")
    assert b.get("/incidents").status_code == 200
    world.review.accounts.set_disabled("hs-counselor", True)
    assert b.get("/incidents").status_code == 303
    assert browser_for().sign_in("hs-counselor").status_code == 401


def test_session_expires_when_idle(world_factory: Callable[..., World]) -> None:
    w = world_factory(session_idle=timedelta(minutes=30))
    w.account("hs-counselor", "counselor", "hs")
    now = [w.review.clock()]
    w.review.sessions.clock = lambda: now[0]
    with TestClient(create_app(w.review), base_url="http://127.0.0.1") as client:
        b = Browser(client)
        assert b.sign_in("hs-counselor").status_code == 303
        now[0] += timedelta(minutes=29)
        assert b.get("/incidents").status_code == 200  # and this touches the session
        now[0] += timedelta(minutes=29)
        assert b.get("/incidents").status_code == 200
        now[0] += timedelta(minutes=31)
        assert b.get("/incidents").status_code == 303


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_sign_in_form_needs_its_csrf_token(
    world: World, browser_for: Callable[..., Browser], token: str | None
) -> None:
    b = browser_for()
    b.get("/signin")  # sets the sign-in cookie
    data = {"username": "hs-counselor", "password": PASSWORD}
    if token is not None:
        data["csrf"] = token
    resp = b.client.post("/signin", data=data, follow_redirects=False)
    assert resp.status_code == 403
    assert b.client.cookies.get("monitor_session") is None


def test_sign_in_token_without_its_cookie_is_refused(browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    token = csrf_of(b.get("/signin").text)
    b.client.cookies.clear()  # a cross-site form post carries no SameSite=strict cookie
    resp = b.client.post(
        "/signin", data={"csrf": token, "username": "hs-counselor", "password": PASSWORD}
    )
    assert resp.status_code == 403


@pytest.mark.parametrize("url", POST_PAGES)
@pytest.mark.parametrize("token", [None, "", "forged"])
def test_every_form_needs_the_session_csrf_token(world: World, browser_for: Callable[..., Browser],
                                                 url: str, token: str | None) -> None:  # fmt: skip
    (p,) = students(world.review.loader, "hs", 1)
    iid = world.incident(p)
    url = url.replace("/1/", f"/{iid}/").replace("p-0123456789abcdef", world.pseudonym(p))
    b = browser_for("admin")
    data = {"action": "resolve", "note": "done", "reason": "a good reason", "assignee": "admin"}
    if token is not None:
        data["csrf"] = token
    before = world.review.access.count()
    resp = b.client.post(url, data=data, follow_redirects=False)
    assert resp.status_code == 403
    assert "security token" in resp.text
    inc = world.review.store.get(iid)
    assert inc is not None and (inc.status, inc.notes, inc.assignee) == ("new", "", None)
    assert world.review.access.count() == before  # nothing was done, so nothing recorded
    assert b.get("/incidents").status_code == 200  # still signed in (sign-out refused too)


def test_session_cookie_flags(browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    signin = b.get("/signin")
    assert "httponly" in signin.headers["set-cookie"].lower()
    page = b.client.post("/signin", data={"csrf": csrf_of(signin.text), "username": "admin",
                                          "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    cookie = next(
        c for c in page.headers.get_list("set-cookie") if c.startswith("monitor_session=")
    )
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http on loopback: a Secure cookie would not come back


def test_cookies_are_secure_behind_tls(world: World) -> None:
    with TestClient(create_app(world.review), base_url="https://127.0.0.1") as client:
        page = client.get("/signin")
        assert "secure" in page.headers["set-cookie"].lower()
        resp = client.post("/signin", data={"csrf": csrf_of(page.text), "username": "admin",
                                            "password": PASSWORD}, follow_redirects=False)  # fmt: skip
        cookie = next(
            c for c in resp.headers.get_list("set-cookie") if c.startswith("monitor_session=")
        )
        assert "secure" in cookie.lower()


def test_rate_limit_after_failed_sign_ins(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    b = browser_for()
    limit = world.review.settings.signin_limit
    for _ in range(limit):
        assert b.sign_in("hs-counselor", "not the password").status_code == 401
    resp = b.sign_in("hs-counselor")  # the right password, but too late
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 0
    assert b.client.cookies.get("monitor_session") is None
    # the same address trying another account is limited too
    assert b.sign_in("es-counselor").status_code == 429
    failed = [r for r in world.review.access.list() if r.action == "sign_in_failed"]
    assert len(failed) == limit


def test_rate_limit_window_passes() -> None:
    from monitor.web.security import SignInLimiter

    now = [0.0]
    lim = SignInLimiter(3, 60, clock=lambda: now[0])
    for _ in range(3):
        lim.failed("a", "1.2.3.4")
    assert lim.retry_after("a", "9.9.9.9") == 60  # by username
    assert lim.retry_after("b", "1.2.3.4") == 60  # by address
    now[0] = 30
    assert lim.retry_after("a", "9.9.9.9") == 30
    now[0] = 61
    assert lim.retry_after("a", "1.2.3.4") == 0


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_sign_in_never_redirects_off_site(browser_for: Callable[..., Browser], target: str) -> None:
    b = browser_for()
    page = b.get(f"/signin?next={target}")
    resp = b.client.post("/signin", data={"csrf": csrf_of(page.text), "username": "admin",
                                          "password": PASSWORD, "next": target}, follow_redirects=False)  # fmt: skip
    assert resp.status_code == 303 and resp.headers["location"] == "/incidents"


def test_sign_in_returns_to_the_page_asked_for(browser_for: Callable[..., Browser]) -> None:
    b = browser_for()
    first = b.get("/incidents?severity=high")
    assert first.headers["location"] == "/signin?next=%2Fincidents%3Fseverity%3Dhigh"
    page = b.client.get(first.headers["location"])
    resp = b.client.post("/signin", data={"csrf": csrf_of(page.text), "username": "admin",
                                          "password": PASSWORD, "next": "/incidents?severity=high"},
                         follow_redirects=False)  # fmt: skip
    assert resp.headers["location"] == "/incidents?severity=high"


@pytest.mark.parametrize(("role_user", "url"), [
    ("auditor", "/incidents"), ("auditor", "/incidents/1"), ("hs-counselor", "/access"),
    ("hs-counselor", "/access/student?student=p-0123456789abcdef"),
])  # fmt: skip
def test_roles_keep_to_their_pages(
    browser_for: Callable[..., Browser], role_user: str, url: str
) -> None:
    assert browser_for(role_user).get(url).status_code == 403


def test_security_headers_on_every_page(browser_for: Callable[..., Browser]) -> None:
    b = browser_for("admin")
    for url in ("/signin", "/incidents", "/access", "/nowhere"):
        h = b.get(url).headers
        assert "script-src" not in h["content-security-policy"]  # so no script may run
        assert "default-src 'none'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["cache-control"] == "no-store"
    assert b.get("/static/style.css").status_code == 200


def test_unknown_host_header_is_refused(world_factory: Callable[..., World]) -> None:
    w = world_factory(allowed_hosts=("127.0.0.1", "localhost"))
    with TestClient(create_app(w.review), base_url="http://127.0.0.1") as client:
        assert client.get("/signin").status_code == 200
        assert client.get("/signin", headers={"host": "rebound.evil.example"}).status_code == 400


def test_first_administrator(world_factory: Callable[..., World]) -> None:
    w = world_factory()
    accounts: Accounts = w.review.accounts
    generated = ensure_first_admin(accounts, None)
    assert generated and len(generated) >= 16
    assert accounts.authenticate("admin", generated) is not None
    assert ensure_first_admin(accounts, "another password!") is None  # only when no account
    w2 = world_factory()
    assert ensure_first_admin(w2.review.accounts, "from the environment") is None
    assert w2.review.accounts.authenticate("admin", "from the environment") is not None
    w3 = world_factory()
    with pytest.raises(ValueError, match="at least 12"):
        ensure_first_admin(w3.review.accounts, "short")
