"""Sign-in through a real OpenID provider (node's oidc-provider, tests/oidcprovider/): roster
people by email, roles from the roster and from groups, unknown emails refused with the
district's contact, tampered state and nonce refused, PKCE S256, local accounts turned off."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from oidcprovider.harness import Provider, User, running
from reviewharness import Browser, World, csrf_of
from starlette.testclient import TestClient

from monitor.incidents.access import AccessFilter
from monitor.web import create_app
from monitor.web.oidc import OidcClient, load_signin
from monitor.yamlfile import ConfigError

APP = "http://127.0.0.1:8765"
CALLBACK = APP + "/signin/oidc/callback"
PASSWORD = "provider password 1"
ART = "cls-ms-art-07-2"
ROLES = """\
{group: monitor-administrators, role: administrator}
{group: monitor-counselors-hs, role: counselor, schools: [hs]}"""


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    from monitor.district import DistrictLoader

    roster = (
        DistrictLoader(Path(__file__).resolve().parents[2] / "examples" / "district").load().roster
    )
    teacher = roster.people[roster.classes[ART].teachers[0]]
    counselor = roster.people["stf-0008"]
    student = roster.people["stu-00554"]
    users = [
        User(teacher.email, PASSWORD, teacher.email, "A teacher"),
        User(counselor.email, PASSWORD, counselor.email, "A counselor", ["monitor-counselors-hs"]),
        User(student.email, PASSWORD, student.email, "A student"),
        User("stranger@elsewhere.example", PASSWORD, "stranger@elsewhere.example"),
    ]
    with running([CALLBACK], users) as p:
        yield p


@pytest.fixture
def oidc_world(
    world_factory: Callable[..., World], provider: Provider, tmp_path: Path
) -> Callable[..., World]:
    def make(local_accounts: str = "true") -> World:
        (tmp_path / "signin.yaml").write_text(
            provider.signin_yaml(ROLES, local_accounts=local_accounts)
        )
        signin = load_signin(tmp_path, {"MONITOR_OIDC_CLIENT_SECRET": provider.client_secret})
        w = world_factory(signin=signin)
        w.account("admin", "administrator")
        return w

    return make


def app_client(world: World) -> TestClient:
    return TestClient(create_app(world.review), base_url=APP)


def at_provider(url: str, login: str, password: str = PASSWORD) -> str:
    """Sign in at the provider as a browser would; the URL it sends the browser back to."""
    with httpx.Client(timeout=10) as browser:
        r = browser.get(url)
        while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
            r = browser.get(httpx.URL(str(r.url)).join(r.headers["location"]))
        assert r.status_code == 200 and 'name="login"' in r.text, r.text
        action = r.text.split('action="')[1].split('"')[0]
        r = browser.post(
            httpx.URL(str(r.url)).join(action), data={"login": login, "password": password}
        )
        while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
            r = browser.get(httpx.URL(str(r.url)).join(r.headers["location"]))
        assert r.status_code in (302, 303), r.text
        return str(r.headers["location"])


def start(client: TestClient) -> str:
    r = client.get("/signin/oidc", follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def back(client: TestClient, url: str) -> Any:
    u = urlsplit(url)
    return client.get(f"{u.path}?{u.query}", follow_redirects=False)


def test_a_teacher_signs_in_by_roster_email(oidc_world: Callable[..., World]) -> None:
    w = oidc_world()
    with app_client(w) as c:
        assert "Sign in with the test provider" in c.get("/signin").text
        url = start(c)
        q = parse_qs(urlsplit(url).query)
        assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
        assert q["state"][0] and q["nonce"][0] and q["response_type"] == ["code"]
        teacher = w.review.district.roster.classes[ART].teachers[0]
        email = w.review.district.roster.people[teacher].email
        r = back(c, at_provider(url, email))
        assert r.status_code == 200 and 'http-equiv="refresh"' in r.text and "/teacher" in r.text
        page = c.get("/teacher")
        assert page.status_code == 200 and f"/teacher/classes/{ART}" in page.text
        assert c.get("/incidents", follow_redirects=False).status_code == 403
    account = w.review.accounts.get(f"sso-{teacher}")
    assert account is not None and account.role == "teacher" and account.sourced_id == teacher
    assert account.sign_in == "oidc"
    (rec,) = w.review.access.list(AccessFilter(action="sign_in"))
    assert rec.role == "teacher" and "identity provider" in rec.detail
    # no password signs in to an identity-provider account
    assert w.review.accounts.authenticate(f"sso-{teacher}", "!oidc") is None


def test_roles_come_from_groups(oidc_world: Callable[..., World]) -> None:
    w = oidc_world()
    email = w.review.district.roster.people["stf-0008"].email
    with app_client(w) as c:
        r = back(c, at_provider(start(c), email))
        assert r.status_code == 200 and "/incidents" in r.text
        assert c.get("/incidents").status_code == 200
    account = w.review.accounts.get("sso-stf-0008")
    assert account is not None and account.role == "counselor" and account.schools == ("hs",)


@pytest.mark.parametrize(
    ("login", "message"),
    [("stranger@elsewhere.example", "is not in the district"),
     ("student", "no role in this app")],
)  # fmt: skip
def test_unknown_people_are_refused_with_the_district_contact(
    oidc_world: Callable[..., World], login: str, message: str
) -> None:
    w = oidc_world()
    if login == "student":
        login = w.review.district.roster.people["stu-00554"].email
    with app_client(w) as c:
        r = back(c, at_provider(start(c), login))
        assert r.status_code == 403 and message in r.text
        assert "Contact the district: Technology Office" in r.text
        assert c.get("/teacher", follow_redirects=False).status_code == 303  # to sign-in
    (rec,) = w.review.access.list(AccessFilter(action="sign_in_failed"))
    assert login in rec.detail
    assert w.review.accounts.count() == 1  # only the local admin


def test_a_tampered_state_is_refused(oidc_world: Callable[..., World]) -> None:
    w = oidc_world()
    email = w.review.district.roster.people["stf-0008"].email
    with app_client(w) as c:
        url = at_provider(start(c), email)
        u = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        r = c.get(
            f"{u.path}?{urlencode({**q, 'state': q['state'][:-2] + 'xx'})}", follow_redirects=False
        )
        assert r.status_code == 400 and "could not be checked" in r.text
        # the real state from another browser (no binding cookie) is refused too …
        with app_client(w) as other:
            assert back(other, url).status_code == 400
        # … and it was used up: replaying it here fails as well
        assert back(c, url).status_code == 400
    assert w.review.accounts.get("sso-stf-0008") is None
    assert len(w.review.access.list(AccessFilter(action="sign_in_failed"))) == 3


@pytest.mark.parametrize("part", ["nonce", "verifier"])
def test_a_tampered_nonce_or_pkce_verifier_is_refused(
    oidc_world: Callable[..., World], part: str
) -> None:
    w = oidc_world()
    email = w.review.district.roster.people["stf-0008"].email
    oidc = w.review.oidc
    assert isinstance(oidc, OidcClient)
    with app_client(w) as c:
        url = at_provider(start(c), email)
        state = parse_qs(urlsplit(url).query)["state"][0]
        # what the app kept for this sign-in no longer matches what the provider saw
        p = oidc._pending[state]
        oidc._pending[state] = dataclasses.replace(p, **{part: getattr(p, part)[:-3] + "abc"})
        r = back(c, url)
        assert r.status_code == 401 and "was refused" in r.text
    (rec,) = w.review.access.list(AccessFilter(action="sign_in_failed"))
    assert (
        ("nonce" in rec.detail)
        if part == "nonce"
        else ("invalid_grant" in rec.detail or "PKCE" in rec.detail or "code" in rec.detail)
    )
    assert w.review.accounts.get("sso-stf-0008") is None


def test_local_accounts_can_be_turned_off(oidc_world: Callable[..., World]) -> None:
    w = oidc_world(local_accounts="false")
    with app_client(w) as c:
        page = c.get("/signin").text
        assert 'name="password"' not in page and "Sign in with the test provider" in page
        b = Browser(c)
        r = c.post("/signin", data={"csrf": "x", "username": "admin", "password": "correct horse battery staple"},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 403 and "turned off" in r.text
        assert b.csrf == ""


def test_signin_yaml_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "signin.yaml").write_text(
        "version: 1\noidc:\n  issuer: https://idp.example\n  client_id: x\n  roles:\n"
        "    - {group: g, role: counselor}\n"
    )
    with pytest.raises(
        ConfigError, match=r"signin.yaml:6: oidc.roles\[0\]: a counselor role needs schools"
    ):
        load_signin(tmp_path, {"MONITOR_OIDC_CLIENT_SECRET": "s"})
    (tmp_path / "signin.yaml").write_text(
        "version: 1\noidc:\n  issuer: https://idp.example\n  client_id: x\n"
    )
    with pytest.raises(ConfigError, match="MONITOR_OIDC_CLIENT_SECRET is not set"):
        load_signin(tmp_path, {})
    (tmp_path / "signin.yaml").write_text("version: 1\nlocal_acounts: false\n")
    with pytest.raises(ConfigError, match="local_acounts"):
        load_signin(tmp_path, {})
    assert csrf_of('name="csrf" value="t"') == "t"


def _settings(**kw: Any) -> Any:
    from monitor.web.oidc import OidcSettings, RoleModel

    roles = (RoleModel(role="counselor", group="c-hs", schools=["hs"]),
             RoleModel(role="counselor", group="c-ms", schools=["ms"]),
             RoleModel(role="auditor", claim="title", value="records", position="Records officer"))  # fmt: skip
    base: dict[str, Any] = dict(name="x", issuer="https://idp.example", client_id="c",
                                client_secret="s", roles=roles)  # fmt: skip
    base.update(kw)
    return OidcSettings(**base)


def test_who_signs_in_as_what(world: World) -> None:
    from monitor.web.oidc import PeopleIndex, map_user

    roster = world.review.district.roster
    teacher = roster.people[roster.classes[ART].teachers[0]]
    index = PeopleIndex()

    def m(claims: dict[str, Any], **kw: Any) -> Any:
        return map_user(_settings(**kw), claims, roster, index)

    ok = {"email": teacher.email.upper(), "email_verified": True}
    assert (m(ok).role, m(ok).person) == ("teacher", teacher)  # emails compare lowercased
    both = m({**ok, "groups": ["c-ms", "c-hs"]})  # a group role wins; schools of every group
    assert (both.role, both.schools) == ("counselor", ("hs", "ms"))  # in signin.yaml order
    audit = m({**ok, "groups": ["c-hs"], "title": ["records"]})
    assert (audit.role, audit.position, audit.schools) == ("auditor", "Records officer", ())
    assert m({"email": teacher.email}).refused.startswith("The identity provider has not verified")
    assert m({"email": teacher.email}, require_email_verified=False).role == "teacher"
    assert "cannot sign in here" in m(ok, allowed_domains=("other.example",)).refused
    by_id = m(
        {"employee_id": teacher.sourced_id}, match="sourced_id", sourced_id_claim="employee_id"
    )
    assert by_id.person == teacher and by_id.role == "teacher"
    assert (
        m({"employee_id": "nobody"}, match="sourced_id", sourced_id_claim="employee_id").refused
        == "unknown"
    )
    assert (
        m({"email_verified": True}).refused
        == "The identity provider did not send an email address."
    )
