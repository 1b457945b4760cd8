"""Migrations, accounts, the access log and retention, on SQLite and on a real PostgreSQL
(see tests/pg.py; skipped when none can be started)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from argon2 import PasswordHasher
from reviewharness import FAST_HASHER
from sqlalchemy import create_engine, inspect, text

from monitor.incidents.access import SYSTEM, AccessFilter, AccessLog, Actor
from monitor.incidents.events import IncidentEvent
from monitor.incidents.retention import Retention, load_retention, purge
from monitor.incidents.store import normalise_url, open_store
from monitor.incidents.store.migrations import current, head, upgrade
from monitor.incidents.store.schema import metadata
from monitor.web.accounts import Accounts
from monitor.yamlfile import ConfigError

pg_dsn = pg.pg_dsn
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
P1, P2 = "p-00000000000000a1", "p-00000000000000b2"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new database on the test cluster."""
    yield from pg.empty_store_url(request, tmp_path, "web")


def _shape(url: str) -> dict[str, Any]:
    """Tables, columns (type, nullable, default), keys, indexes and checks, as reflected."""
    engine = create_engine(normalise_url(url))
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for t in sorted(insp.get_table_names()):
            if t == "alembic_version":
                continue
            out[t] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                            for c in insp.get_columns(t)],
                "pk": insp.get_pk_constraint(t)["constrained_columns"],
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
                "fks": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(t)),
                "checks": sorted(c["name"] for c in insp.get_check_constraints(t)),
            }  # fmt: skip
        return out
    finally:
        engine.dispose()


def test_migrations_create_the_schema_of_the_metadata(
    url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert upgrade(url) == head()
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        assert current(conn) == head()
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    engine.dispose()
    assert diff == []
    # … and exactly what metadata.create_all makes on the same backend
    if url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'create_all.sqlite'}"
    else:
        dsn = normalise_url(url)
        other_name = dsn.database + "_b"  # type: ignore[operator]
        admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{other_name}"'))
        request.addfinalizer(lambda: _drop(admin, other_name))
        other = dsn.set(database=other_name).render_as_string(hide_password=False)
    open_store(other).close()  # create_all
    assert _shape(url) == _shape(other)
    assert set(_shape(url)) == set(metadata.tables)


def _drop(admin: Any, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_adopts_a_store_made_by_create_all_and_is_idempotent(url: str) -> None:
    store = open_store(url)  # the proxy made it, without Alembic
    store.write_batch([_event(T0)])
    store.close()
    assert upgrade(url) == head()
    assert upgrade(url) == head()
    store = open_store(url, create=False)
    assert store.count() == 1  # data kept
    store.close()


def test_upgrade_from_the_first_revision(url: str) -> None:
    from alembic import command

    from monitor.incidents.store.migrations import config

    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        command.upgrade(config(conn), "0001")
    with engine.connect() as conn:
        assert current(conn) == "0001"
        assert "accounts" not in inspect(conn).get_table_names()
    engine.dispose()
    assert upgrade(url) == head()
    s = open_store(url, create=False)
    assert Accounts(s.engine, hasher=FAST_HASHER).count() == 0
    s.close()


@pytest.fixture
def store(url: str) -> Iterator[Any]:
    upgrade(url)
    s = open_store(url, create=False)
    yield s
    s.close()


def test_accounts(store: Any) -> None:
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    a = accounts.add("ms.counselor", "a long enough password", "counselor", schools=["ms", "hs"],
                     position="Adjustment counselor")  # fmt: skip
    assert (a.role, a.schools, a.scope, a.position) == (
        "counselor",
        ("ms", "hs"),
        ("ms", "hs"),
        "Adjustment counselor",
    )
    assert a.sees_school("hs") and not a.sees_school("es")
    assert accounts.authenticate("ms.counselor", "a long enough password") == a
    assert accounts.authenticate("ms.counselor", "a long enough passworD") is None
    assert accounts.authenticate("nobody", "a long enough password") is None
    with pytest.raises(ValueError, match="exists already"):
        accounts.add("ms.counselor", "a long enough password", "auditor")
    accounts.set_disabled("ms.counselor", True)
    assert accounts.authenticate("ms.counselor", "a long enough password") is None
    accounts.set_disabled("ms.counselor", False)
    accounts.set_password("ms.counselor", "another long password")
    assert accounts.authenticate("ms.counselor", "another long password") is not None
    with pytest.raises(ValueError, match="no account"):
        accounts.set_password("ghost", "another long password")
    assert [x.username for x in accounts.list()] == ["ms.counselor"]


def test_password_hashes_are_argon2id_and_upgraded(store: Any) -> None:
    from monitor.incidents.store.accessschema import accounts as table

    weak = Accounts(store.engine, hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    weak.add("a", "a long enough password", "auditor")
    strong = Accounts(
        store.engine, hasher=PasswordHasher(time_cost=2, memory_cost=128, parallelism=1)
    )
    assert strong.authenticate("a", "a long enough password") is not None
    with store.engine.connect() as conn:
        stored = conn.execute(table.select()).first().password_hash
    assert stored.startswith("$argon2id$") and "m=128,t=2" in stored
    assert "a long enough password" not in stored


@pytest.mark.parametrize(
    ("username", "password", "role", "schools", "message"),
    [
        ("Bad Name", "a long enough password", "auditor", [], "username"),
        ("ok", "short", "auditor", [], "at least 12"),
        ("ok", "a long enough password", "counselor", [], "at least one school"),
        ("ok", "a long enough password", "auditor", ["hs"], "give no --school"),
        ("ok", "a long enough password", "principal", [], "role"),
        ("ok", "a long enough password", "counselor", ["h s"], "school"),
    ],
)
def test_account_values_are_checked(store: Any, username: str, password: str, role: str,
                                    schools: list[str], message: str) -> None:  # fmt: skip
    with pytest.raises(ValueError, match=message):
        Accounts(store.engine, hasher=FAST_HASHER).add(username, password, role, schools=schools)


def test_access_log(store: Any) -> None:
    now = [T0]
    log = AccessLog(store.engine, clock=lambda: now[0])
    who = Actor("hs-counselor", "counselor", "School counselor")
    a = log.record(who, "list", detail="filters: none", subjects=[P1, P2, "unknown", P1])
    now[0] += timedelta(minutes=5)
    b = log.record(who, "reveal", person=P1, sourced_id="stu-1", reason="parent meeting")
    now[0] += timedelta(minutes=5)
    log.record(Actor("auditor", "auditor"), "access_report", person=P2)
    assert [r.id for r in log.for_person(P1)] == [a, b]
    assert [r.action for r in log.for_person(P2)] == ["list", "access_report"]
    assert log.count(AccessFilter(account="hs-counselor")) == 2
    assert [r.action for r in log.list(AccessFilter(action="reveal"))] == ["reveal"]
    assert (
        log.list(AccessFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=6)))[
            0
        ].id
        == b
    )
    rev = log.list(AccessFilter(action="reveal"))[0]
    assert (rev.person, rev.sourced_id, rev.reason, rev.what) == (P1, "stu-1", "parent meeting",
                                                                   "revealed a student's name")  # fmt: skip
    with pytest.raises(ValueError, match="unknown action"):
        log.record(who, "peek")
    assert log.purge(T0 + timedelta(minutes=6)) == 2
    assert [r.action for r in log.list()] == ["access_report"]
    assert [r.action for r in log.for_person(P1)] == []


def _event(t: datetime, person: str = P1, **over: Any) -> IncidentEvent:
    base: dict[str, Any] = dict(
        time=t, person=person, school="hs", grade="10", age_band="teen", role="student",
        platform="tiktok", activity="view", action="block", rule_id="r", reason="r",
        host="www.tiktok.com", source="proxy", severity="low",
    )  # fmt: skip
    base.update(over)
    return IncidentEvent(**base)


def test_purge_deletes_what_is_due_and_records_it(store: Any) -> None:
    now = T0 + timedelta(days=400)
    old = [_event(T0 + timedelta(hours=i), P1 if i % 2 else P2) for i in range(30)]
    fresh = [_event(now - timedelta(days=10), P1)]
    store.write_batch(old + fresh)
    clock = [T0]
    log = AccessLog(store.engine, clock=lambda: clock[0])
    log.record(Actor("x", "counselor"), "view_student", person=P1)  # 400 days old: kept (6y)
    clock[0] = now
    retention = Retention(incidents=timedelta(days=365), access_log=timedelta(days=6 * 365))
    dry = purge(store.engine, log, retention, now=now, actor=SYSTEM, dry_run=True)
    assert (dry.incidents, dry.students, dry.access_records, dry.dry_run) == (30, 2, 0, True)
    assert store.count() == 31
    result = purge(store.engine, log, retention, now=now, actor=SYSTEM)
    assert (result.incidents, result.students, result.access_records) == (30, 2, 0)
    assert store.count() == 1
    rec = log.list(limit=1)[0]
    assert (rec.account, rec.action, rec.reason) == ("system", "purge", "retention policy")
    assert "deleted 30 incidents of 2 students" in rec.detail
    assert [r.action for r in log.for_person(P2)] == ["purge"]  # the student's report says so
    # nothing due: nothing deleted, nothing recorded
    again = purge(store.engine, log, retention, now=now, actor=SYSTEM)
    assert (again.incidents, again.access_records) == (0, 0)
    assert log.count() == 2
    # access records go when their own period ends
    later = purge(store.engine, log, retention, now=T0 + timedelta(days=6 * 365 + 1), actor=SYSTEM)
    assert later.access_records == 1 and later.incidents == 1


@pytest.mark.parametrize(
    ("district_extra", "file_text", "expected"),
    [
        ("", None, Retention()),
        (
            "",
            "retention: {incidents: 90d, access_log: 7y}\n",
            Retention(timedelta(days=90), timedelta(days=7 * 365)),
        ),
        (
            "retention:\n  incidents: 26w\n",
            None,
            Retention(timedelta(weeks=26), timedelta(days=6 * 365)),
        ),
        ("", "", Retention()),
    ],
)
def test_load_retention(
    tmp_path: Path, district_extra: str, file_text: str | None, expected: Retention
) -> None:
    (tmp_path / "district.yaml").write_text("roster: roster\n" + district_extra)
    if file_text is not None:
        (tmp_path / "retention.yaml").write_text(file_text)
    assert load_retention(tmp_path) == expected


@pytest.mark.parametrize(
    ("text_", "message"),
    [
        (
            "retention:\n  incidents: 365d\n  acces_log: 6y\n",
            "retention.yaml:3: field 'retention.acces_log': unknown key",
        ),
        (
            "retention:\n  incidents: forever\n",
            "retention.yaml:2: field 'retention.incidents': 'forever' is not a period",
        ),
        ("retention:\n  incidents: 0d\n", "is not a period"),
        (
            "retention:\n  incidents: 2y\n  access_log: 1y\n",
            "access_log must be kept at least as long as incidents",
        ),
        ("- 1\n", "expected a YAML mapping"),
    ],
)
def test_bad_retention_names_file_line_and_field(tmp_path: Path, text_: str, message: str) -> None:
    (tmp_path / "retention.yaml").write_text(textwrap.dedent(text_))
    with pytest.raises(ConfigError) as e:
        load_retention(tmp_path)
    assert message in str(e.value)


def test_the_app_on_each_backend(url: str, loader: Any) -> None:
    """Sign in, list, reveal and report through the app, on SQLite and PostgreSQL."""
    from reviewharness import Browser, World, make_review, students
    from starlette.testclient import TestClient

    from monitor.web import create_app

    review = make_review(loader, url)
    try:
        w = World(review, url)
        w.account("hs-counselor", "counselor", "hs", position="School counselor")
        w.account("auditor", "auditor")
        person = students(loader, "hs", 1)[0]
        p = w.pseudonym(person)
        iid = w.incident(person, host="<script>x")
        with TestClient(create_app(review), base_url="http://127.0.0.1") as client:
            b = Browser(client)
            assert b.sign_in("hs-counselor").status_code == 303
            page = b.get("/incidents?platform=tiktok&severity=medium")
            assert f'href="/incidents/{iid}"' in page.text and "&lt;script&gt;x" in page.text
            assert (
                b.get("/incidents", params={"platform": "' OR 1=1 --"}).text.count("/incidents/")
                == 1
            )
            assert (
                b.post(
                    f"/incidents/{iid}/review", {"action": "acknowledge", "note": "ok"}
                ).status_code
                == 303
            )
            assert (
                person.given_name
                in b.post(f"/students/{p}/reveal", {"reason": "a good reason"}).text
            )
            client.cookies.clear()
            a = Browser(client)
            a.sign_in("auditor")
            report = a.get(f"/access/student?student={person.sourced_id}").text
            assert "a good reason" in report and "changed an incident" in report
        inc = review.store.get(iid)
        assert (
            inc is not None
            and inc.status == "acknowledged"
            and inc.notes.endswith("hs-counselor: ok")
        )
    finally:
        review.close()
