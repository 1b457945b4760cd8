"""Out-of-range and hostile input: a 400 or 404 in the app's error page, never a 500. First the
cases a review found, then every route of the app's router fuzzed with hypothesis (path, query
and form parameters, signed in as each role, with valid CSRF tokens so the handlers run)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reviewharness import PASSWORD, Browser, World, csrf_of, students
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from monitor.incidents.access import ACTIONS
from monitor.incidents.events import STATUSES
from monitor.model import SEVERITIES
from monitor.web import create_app
from monitor.web.accounts import upsert_idp_account
from monitor.web.security import SESSION_COOKIE, SIGNIN_COOKIE

WEB = Path(__file__).resolve().parents[2] / "monitor" / "web"
ERROR_PAGE = '<p class="error" role="alert">'
HUGE = "9" * 23
ROLE_REFUSED = "Your role does not give access to this page."


@pytest.mark.parametrize(
    ("user", "method", "url", "form", "status", "message"),
    [
        ("admin", "get", f"/incidents/{HUGE}", {}, 404, "nothing here"),
        ("admin", "post", f"/incidents/{HUGE}/review", {"action": "acknowledge"}, 404, "nothing here"),
        ("admin", "post", f"/incidents/{HUGE}/assign", {"assignee": ""}, 404, "nothing here"),
        ("admin", "get", f"/incidents?page={HUGE}", {}, 400, "too deep"),
        ("admin", "get", "/incidents?until=9999-12-31", {}, 400, "to: expected a date between"),
        ("admin", "get", "/incidents?since=0001-01-01", {}, 400, "from: expected a date between"),
        ("admin", "post", "/incidents/export", {"reason": "r", "until": "9999-12-31"}, 400, "to: expected a date"),
        ("auditor", "get", f"/access?page={HUGE}", {}, 400, "too deep"),
        ("auditor", "get", "/access?until=9999-12-31", {}, 400, "to: expected a date between"),
        ("auditor", "get", "/access?since=0001-01-01", {}, 400, "from: expected a date between"),
    ],
)  # fmt: skip
def test_out_of_range_values_are_refused_not_crashes(
    world: World,
    user: str,
    method: str,
    url: str,
    form: dict[str, str],
    status: int,
    message: str,
) -> None:
    # a crash must show as a 500 here, not as the exception re-raised into the test
    b = Browser(TestClient(create_app(world.review), base_url="http://127.0.0.1",
                           raise_server_exceptions=False))  # fmt: skip
    assert b.sign_in(user).status_code == 303
    resp = b.get(url) if method == "get" else b.post(url, form)
    assert resp.status_code == status, resp.text
    assert ERROR_PAGE in resp.text and message in resp.text


def test_dates_at_the_ends_of_the_range_still_work(
    world: World, browser_for: Callable[..., Browser]
) -> None:
    p = students(world.review.loader, "hs", 1)[0]
    iid = world.incident(p)
    b = browser_for("admin")
    page = b.get("/incidents?since=1970-01-01&until=2999-12-31")
    assert page.status_code == 200 and f'href="/incidents/{iid}"' in page.text
    assert b.get("/access?since=1970-01-01&until=2999-12-31").status_code == 200


# -- fuzzing every route ----------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Parameter names the app reads: the fields of its forms (templates) and the names its
    handlers ask for (``arg``, ``field``, ``query_params.get``, ``form.get``), so that a new
    parameter is fuzzed without editing this test."""
    names: set[str] = set()
    for t in (WEB / "templates").glob("*.html"):
        names |= set(re.findall(r'name="([A-Za-z_][A-Za-z0-9_]*)"', t.read_text()))
    for src in WEB.glob("*.py"):
        text = src.read_text()
        names |= set(re.findall(r'(?:\barg|\bfield|\.get)\(\s*"([a-z_]+)"', text))
        # tuples of parameter names, such as the incident list's FILTERS
        for group in re.findall(r"\(((?:\s*\"[a-z_]+\",)+\s*(?:\"[a-z_]+\")?\s*)\)", text):
            names |= set(re.findall(r'"([a-z_]+)"', group))
    return sorted(names)


@dataclass
class Fuzzing:
    world: World
    clients: dict[str, TestClient]  # by role: "anonymous" is not signed in
    usernames: dict[str, str]
    routes: list[tuple[str, str, dict[str, Any]]]  # method, path format, convertor per param
    values: list[str]
    ids: list[int]
    pseudonyms: list[str]

    def session_csrf(self, role: str) -> str:
        """The CSRF token of the role's session (signing in again when a fuzzed sign-out or
        sign-in ended or replaced it)."""
        client = self.clients[role]
        if role == "anonymous":
            client.cookies.delete(SESSION_COOKIE)
            return ""
        user = self.world.review.sessions.lookup(client.cookies.get(SESSION_COOKIE))
        if role == "teacher" and (user is None or user.account.username != self.usernames[role]):
            # teachers sign in through the identity provider only: a session of their account
            account = self.world.review.accounts.get(self.usernames[role])
            assert account is not None
            client.cookies.set(SESSION_COOKIE, self.world.review.sessions.create(account),
                               "127.0.0.1", "/")  # fmt: skip
            user = self.world.review.sessions.lookup(client.cookies.get(SESSION_COOKIE))
        if user is None or user.account.username != self.usernames[role]:
            page = client.get("/signin")
            resp = client.post("/signin", data={"csrf": csrf_of(page.text), "username": self.usernames[role],
                                                "password": PASSWORD}, follow_redirects=False)  # fmt: skip
            assert resp.status_code == 303, resp.text
            user = self.world.review.sessions.lookup(client.cookies.get(SESSION_COOKIE))
            assert user is not None
        return user.csrf

    def signin_csrf(self, role: str) -> str:
        """The sign-in form's token: from the form when not signed in; a signed-in browser
        gets no form (it is sent home), so it posts a token and cookie of its own."""
        client = self.clients[role]
        if not client.cookies.get(SIGNIN_COOKIE):
            if client.get("/signin", follow_redirects=False).status_code != 200:
                # the same cookie the server would set (host 127.0.0.1, path /)
                client.cookies.set(SIGNIN_COOKIE, "a-token-of-its-own", "127.0.0.1", "/")
        token = client.cookies.get(SIGNIN_COOKIE)
        assert token
        return token


def app_routes(app: Any) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            for m in sorted((r.methods or {"GET"}) - {"HEAD"}):
                out.append((m, r.path_format, dict(r.param_convertors)))
        elif isinstance(r, Mount):
            out.append(("GET", r.path_format, dict(r.param_convertors)))
        else:  # pragma: no cover - a new kind of route must be added here
            raise AssertionError(f"cannot fuzz {r!r}")
    return out


def param_value(draw: Any, fz: Fuzzing, convertor: Any) -> str:
    if type(convertor).__name__ == "IntegerConvertor":
        n = draw(st.one_of(st.sampled_from(fz.ids), st.integers(min_value=0)))
        return str(n)
    text = draw(st.one_of(st.sampled_from(fz.pseudonyms), st.text(min_size=1, max_size=40)))
    return quote(text, safe="")


def value(fz: Fuzzing) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(fz.values),
        st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
        st.integers().map(str),
        st.text(max_size=60),
        st.text(alphabet="0123456789-_ .eE+", max_size=30),
    )


def test_no_input_gives_a_server_error(world_factory: Callable[..., World]) -> None:
    w = world_factory(signin_limit=1_000_000)  # fuzzed sign-ins must not lock the roles out
    usernames = {"administrator": "admin", "counselor": "hs-counselor", "auditor": "auditor"}
    w.account("admin", "administrator")
    w.account("hs-counselor", "counselor", "hs", position="School counselor")
    w.account("auditor", "auditor", position="Records officer")
    roster = w.review.district.roster
    cls = roster.classes[sorted(roster.classes)[0]]
    teacher = upsert_idp_account(w.review.accounts, cls.teachers[0], "teacher", position="Teacher")
    usernames["teacher"] = teacher.username
    people = [p for s in ("es", "hs") for p in students(w.review.loader, s, 2)]
    ids = [w.incident(p) for p in people]
    pseudonyms = [w.pseudonym(p) for p in people] + ["p-0123456789abcdef", "unknown"]
    pseudonyms += [cls.sourced_id, sorted(roster.classes)[-1], "ov-0000abcd"]  # teachers' routes
    app = create_app(w.review)
    routes = app_routes(app)
    assert {(m, p) for m, p, _ in routes} >= {("GET", "/incidents/{id}"), ("POST", "/signin")}
    names = vocabulary()
    assert {"page", "since", "until", "reason", "csrf", "student", "person"} <= set(names)
    known = [*STATUSES, *SEVERITIES, *ACTIONS, "html", "json", "csv", "es", "ms", "hs", "tiktok",
             "acknowledge", "resolve", "reopen", "note", "a sound reason", *usernames.values(),
             *pseudonyms, *(str(i) for i in ids), people[0].sourced_id, "/", "//evil.example"]  # fmt: skip
    clients = {
        role: TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        for role in (*usernames, "anonymous")
    }
    fz = Fuzzing(w, clients, usernames, routes, known, ids, pseudonyms)
    reached: set[tuple[str, str]] = set()
    with clients["anonymous"]:

        @settings(max_examples=1000, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(st.data())
        def fuzz(data: Any) -> None:
            method, fmt, convertors = data.draw(st.sampled_from(fz.routes), label="route")
            role = data.draw(st.sampled_from(sorted(fz.clients)), label="role")
            path = fmt.format(**{k: param_value(data.draw, fz, c) for k, c in convertors.items()})
            params = data.draw(st.dictionaries(st.sampled_from(names), value(fz), max_size=8))
            form: dict[str, str] = {}
            if method == "POST":
                form = data.draw(st.dictionaries(st.sampled_from(names), value(fz), max_size=8))
                form["csrf"] = fz.signin_csrf(role) if fmt == "/signin" else fz.session_csrf(role)
            else:
                fz.session_csrf(role)
            resp = fz.clients[role].request(
                method, path, params=params, data=form or None, follow_redirects=False
            )
            if role == "anonymous" or ROLE_REFUSED not in resp.text:
                reached.add((method, fmt))  # past the sign-in and role checks: the handler ran
            assert resp.status_code < 500, (method, path, params, form, resp.text[:300])
            if 400 <= resp.status_code < 500:
                assert ERROR_PAGE in resp.text, (method, path, resp.status_code)

        fuzz()
    for c in clients.values():
        c.close()
    assert reached == {(m, p) for m, p, _ in routes}  # every route's handler ran
