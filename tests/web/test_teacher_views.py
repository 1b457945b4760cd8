"""Teachers' pages over a real store: own classes only, grants within policy, who a grant will
not apply to, revocation, expiry, and every step in the record of access; 403s recorded; CSRF
and IDOR on the new routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from reviewharness import Browser, World, csrf_of
from starlette.testclient import TestClient

from monitor.incidents.access import AccessFilter
from monitor.incidents.events import pseudonym
from monitor.model import ClassSection, age_on
from monitor.web import create_app
from monitor.web.accounts import upsert_idp_account
from monitor.web.security import SESSION_COOKIE
from monitor.web.teacher_views import record_expiries

ART = "cls-ms-art-07-2"


def class_(world: World, class_id: str = ART) -> ClassSection:
    return world.review.district.roster.classes[class_id]


@pytest.fixture
def teacher(world: World) -> Iterator[Callable[[str], Browser]]:
    """Browsers signed in as the teacher of a class (a session of their identity-provider
    account, as the sign-in callback makes)."""
    clients: list[TestClient] = []

    def make(class_id: str = ART) -> Browser:
        sid = class_(world, class_id).teachers[0]
        account = upsert_idp_account(world.review.accounts, sid, "teacher", position="Teacher")
        client = TestClient(create_app(world.review), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        client.cookies.set(SESSION_COOKIE, world.review.sessions.create(account), "127.0.0.1", "/")
        b = Browser(client)
        b.csrf = csrf_of(client.get("/teacher").text)
        return b

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_a_teacher_sees_only_their_classes_and_no_incidents(
    world: World, teacher: Callable[[str], Browser]
) -> None:
    b = teacher(ART)
    page = b.get("/teacher")
    assert page.status_code == 200
    mine = [c for c in world.review.district.roster.classes.values()
            if class_(world).teachers[0] in c.teachers]  # fmt: skip
    assert len(mine) >= 2
    for c in mine:
        assert f'href="/teacher/classes/{c.sourced_id}"' in page.text
    other = next(c for c in world.review.district.roster.classes.values() if c not in mine)
    assert other.sourced_id not in page.text
    assert b.get(f"/teacher/classes/{other.sourced_id}").status_code == 403
    refused = world.review.access.list(AccessFilter(action="override_refused"))
    assert refused and other.sourced_id in refused[0].detail and refused[0].role == "teacher"
    assert b.get("/incidents").status_code == 403
    assert b.get("/access").status_code == 403
    assert b.get("/students/p-0123456789abcdef").status_code == 403


def test_the_class_page_lists_who_an_override_will_not_apply_to(
    world: World, teacher: Callable[[str], Browser]
) -> None:
    b = teacher(ART)
    people = world.review.district.roster.people
    today = world.review.clock().astimezone(world.review.tz).date()
    young = [people[s] for s in class_(world).students
             if people[s].birth_date is None or (age_on(people[s].birth_date, today) < 13)]  # type: ignore[arg-type]  # fmt: skip
    older = [people[s] for s in class_(world).students if people[s] not in young]
    assert young and older
    page = b.get(f"/teacher/classes/{ART}?platform=youtube").text
    assert 'id="excluded"' in page and "COPPA" in page
    excluded = page.split('id="excluded"')[1].split("</div>")[0]
    for p in young:
        assert f"{p.given_name} {p.family_name[0]}." in excluded
    for p in older:
        assert f"{p.given_name} {p.family_name[0]}." not in excluded
    for p in young + older:  # never a birthdate
        assert p.birth_date is None or p.birth_date.isoformat() not in page
    assert "applies to every student" in b.get(f"/teacher/classes/{ART}?platform=youtube-kids").text
    # the view is in the record of access of every student the page showed
    seen = world.review.access.for_person(pseudonym(world.key, young[0].sourced_id))
    assert [r.action for r in seen] == ["view_class", "view_class"]


def test_grant_then_revoke_is_recorded(world: World, teacher: Callable[[str], Browser]) -> None:
    b = teacher(ART)
    r = b.post(f"/teacher/classes/{ART}/grant",
               {"platform": "youtube", "target": "class", "minutes": "45", "reason": "art history video"})  # fmt: skip
    assert r.status_code == 303, r.text
    (ov,) = world.review.overrides.list(active_only=True, now=world.review.clock())
    assert (ov.platform, ov.class_id, ov.granted_by_role) == ("youtube", ART, "teacher")
    assert ov.granted_by == class_(world).teachers[0]
    assert timedelta(minutes=44) < ov.ends - ov.starts <= timedelta(minutes=45)
    (g,) = world.review.access.list(AccessFilter(action="override_grant"))
    assert g.role == "teacher" and g.position == "Teacher" and g.reason == "art history video"
    assert (
        ov.id in g.detail
        and ART in g.detail
        and "youtube" in g.detail
        and "America/New_York" in g.detail
    )
    member = class_(world).students[0]
    assert world.review.access.for_person(pseudonym(world.key, member))  # per-student report
    page = b.get(f"/teacher/classes/{ART}").text
    assert ov.id in page and "Revoke" in page
    assert b.post(f"/teacher/overrides/{ov.id}/revoke").status_code == 303
    assert world.review.overrides.list(active_only=True, now=world.review.clock()) == []
    (rv,) = world.review.access.list(AccessFilter(action="override_revoke"))
    assert ov.id in rv.detail and rv.account == g.account


def test_grant_for_some_students(world: World, teacher: Callable[[str], Browser]) -> None:
    b = teacher(ART)
    two = class_(world).students[:2]
    r = b.post(f"/teacher/classes/{ART}/grant", {"platform": "pinterest", "target": "students",
               "minutes": "20", **{f"s:{s}": "on" for s in two}})  # fmt: skip
    assert r.status_code == 303, r.text
    (ov,) = world.review.overrides.list(active_only=True, now=world.review.clock())
    assert ov.class_id is None and set(ov.students) == set(two)


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"platform": "youtube", "target": "class", "minutes": "1500"}, 400, "at most 1d"),
        ({"platform": "youtube", "target": "class", "minutes": "0"}, 400, "minutes"),
        ({"platform": "youtube", "target": "class"}, 400, "how long"),
        ({"platform": "nope", "target": "class", "minutes": "5"}, 400, "Choose a platform"),
        ({"platform": "youtube", "target": "students", "minutes": "5", "s:stu-00001": "on"}, 403,
         "not in this class"),
        ({"platform": "youtube", "target": "students", "minutes": "5"}, 400, "Tick at least"),
    ],
)  # fmt: skip
def test_bad_grants_are_refused(
    world: World, teacher: Callable[[str], Browser], form: dict[str, str], status: int,
    message: str,
) -> None:  # fmt: skip
    b = teacher(ART)
    r = b.post(f"/teacher/classes/{ART}/grant", form)
    assert r.status_code == status and message in r.text, r.text
    assert world.review.overrides.list() == []


def test_bypass_services_and_other_classes_are_refused_and_recorded(
    world: World, teacher: Callable[[str], Browser]
) -> None:
    b = teacher(ART)
    bypass = next(p for p in (world.review.district.catalogue.get(i)
                              for i in world.review.district.catalogue.ids) if p and p.is_bypass)  # fmt: skip
    r = b.post(
        f"/teacher/classes/{ART}/grant", {"platform": bypass.id, "target": "class", "minutes": "5"}
    )
    assert r.status_code == 400 and "bypass" in r.text
    other = next(c for c in world.review.district.roster.classes.values()
                 if class_(world).teachers[0] not in c.teachers)  # fmt: skip
    r = b.post(f"/teacher/classes/{other.sourced_id}/grant",
               {"platform": "youtube", "target": "class", "minutes": "5"})  # fmt: skip
    assert r.status_code == 403
    assert world.review.overrides.list() == []
    details = [x.detail for x in world.review.access.list(AccessFilter(action="override_refused"))]
    assert any(other.sourced_id in d for d in details) and any(bypass.id in d for d in details)


def test_a_teacher_cannot_revoke_another_class_override(
    world: World, teacher: Callable[[str], Browser]
) -> None:
    now = world.review.clock()
    other = next(c for c in world.review.district.roster.classes.values()
                 if class_(world).teachers[0] not in c.teachers)  # fmt: skip
    ov = world.review.overrides.grant(platform="youtube", granted_by=other.teachers[0],
                                      class_id=other.sourced_id, ends=now + timedelta(minutes=30), now=now)  # fmt: skip
    b = teacher(ART)
    assert b.post(f"/teacher/overrides/{ov.id}/revoke").status_code == 403
    assert world.review.overrides.list(active_only=True, now=now)[0].revoked_at is None
    assert world.review.access.list(AccessFilter(action="override_refused"))


def test_csrf_is_checked_on_the_new_forms(world: World, teacher: Callable[[str], Browser]) -> None:
    b = teacher(ART)
    form = {"platform": "youtube", "target": "class", "minutes": "5"}
    for token in ("", "wrong"):
        r = b.client.post(f"/teacher/classes/{ART}/grant", data={**form, "csrf": token},
                          follow_redirects=False)  # fmt: skip
        assert r.status_code == 403 and "security token" in r.text
    assert world.review.overrides.list() == []
    ov = world.review.overrides.grant(platform="youtube", granted_by="x", class_id=ART,
                                      ends=world.review.clock() + timedelta(minutes=5))  # fmt: skip
    r = b.client.post(f"/teacher/overrides/{ov.id}/revoke", data={"csrf": "wrong"},
                      follow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    assert world.review.overrides.list(active_only=True)[0].revoked_at is None


def test_counselors_and_local_accounts_cannot_be_teachers(world: World) -> None:
    with pytest.raises(ValueError, match="identity provider"):
        world.review.accounts.add("t1", "correct horse battery staple", "teacher")
    b = Browser(TestClient(create_app(world.review), base_url="http://127.0.0.1"))
    assert b.sign_in("hs-counselor").status_code == 303
    assert b.get("/teacher").status_code == 403


def test_expiries_are_recorded_once(world: World) -> None:
    clock_at = [world.review.clock()]
    review = world.review
    ov = review.overrides.grant(platform="youtube", granted_by=class_(world).teachers[0],
                                class_id=ART, ends=clock_at[0] + timedelta(minutes=1), now=clock_at[0])  # fmt: skip
    assert record_expiries(review) == 0
    review.clock = lambda: clock_at[0] + timedelta(minutes=2)
    assert record_expiries(review) == 1
    assert record_expiries(review) == 0
    (e,) = review.access.list(AccessFilter(action="override_expired"))
    assert e.detail.startswith(ov.id) and e.account == "system" and ART in e.detail


def test_the_auditor_sees_the_grants_in_the_record_of_access(
    world: World, teacher: Callable[[str], Browser], browser_for: Callable[..., Browser]
) -> None:
    b = teacher(ART)
    form = {"platform": "youtube", "target": "class", "minutes": "10", "reason": "a film"}
    assert b.post(f"/teacher/classes/{ART}/grant", form).status_code == 303
    page = browser_for("auditor").get("/access?action=override_grant")
    assert page.status_code == 200
    assert "granted a teacher override" in page.text and ART in page.text and "a film" in page.text


def test_migration_0006_goes_down_and_up(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from monitor.incidents.store.migrations import config, current, upgrade

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert upgrade(url) >= "0006"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(config(conn), "0005")
    with engine.connect() as conn:
        assert current(conn) == "0005"
        cols = {c["name"] for c in inspect(conn).get_columns("accounts")}
        assert not {"sourced_id", "sign_in"} & cols
        assert "teacher" not in inspect(conn).get_check_constraints("accounts")[0]["sqltext"]
    upgrade(url)
    with engine.connect() as conn:
        assert "'teacher'" in inspect(conn).get_check_constraints("accounts")[0]["sqltext"]
    engine.dispose()


def test_a_bad_signin_file_stops_monitor_review_with_its_line(
    tmp_path: Path, district_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from monitor.cli import main

    bad = tmp_path / "signin.yaml"
    bad.write_text("version: 1\noidc:\n  issuer: ftp://idp.example\n  client_id: x\n")
    monkeypatch.setenv("MONITOR_SIGNIN", str(bad))
    monkeypatch.setenv("MONITOR_OIDC_CLIENT_SECRET", "s")
    r = CliRunner().invoke(main, ["review", "--config", str(district_dir), "--db",
                                  f"sqlite:///{tmp_path / 's.sqlite'}"])  # fmt: skip
    assert r.exit_code != 0
    assert f"{bad}:3" in r.output and "issuer" in r.output
