"""The same tests against SQLite and PostgreSQL (PostgreSQL: see tests/pg.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg
import pytest
from sqlalchemy import create_engine, inspect

from monitor.incidents.events import IncidentEvent, aggregate, new_event_id
from monitor.incidents.store import (
    IncidentFilter,
    IncidentStore,
    SqlIncidentStore,
    normalise_url,
    open_store,
)
from monitor.incidents.store.schema import metadata

pg_dsn = pg.pg_dsn

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
P1 = "p-00000000000000a1"
P2 = "p-00000000000000b2"


def event(minute: float = 0, **over: Any) -> IncidentEvent:
    base: dict[str, Any] = dict(
        time=T0 + timedelta(minutes=minute), person=P1, school="ES-TEST", grade="5",
        age_band="under13", role="student", platform="tiktok", activity="view", action="block",
        rule_id="age.under13", reason="Students 12 and under may only use platforms for children.",
        host="www.tiktok.com", source="proxy", severity="low",
    )  # fmt: skip
    base.update(over)
    return IncidentEvent(**base)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'incidents.db'}"
    dsn: str = request.getfixturevalue("pg_dsn")
    engine = create_engine(normalise_url(dsn))
    metadata.drop_all(engine)  # a clean database for every test
    engine.dispose()
    return dsn


@pytest.fixture
def store(url: str) -> Iterator[SqlIncidentStore]:
    s = open_store(url)
    yield s
    s.close()


def total(store: SqlIncidentStore) -> int:
    return sum(i.count for i in store.list(limit=1_000_000))


def test_store_satisfies_protocol(store: SqlIncidentStore) -> None:
    s: IncidentStore = store  # checked by mypy; at run time the methods must exist
    for name in ("write_batch", "list", "get", "count", "update", "close"):
        assert callable(getattr(s, name))


def test_dedupe_within_window_counts_and_keeps_most_severe(store: SqlIncidentStore) -> None:
    assert store.write_batch([event(5, severity="low"), event(1, severity="high")]) == 2
    assert store.write_batch([event(30, severity="medium", activity="post")]) == 1
    (inc,) = store.list()
    assert inc.count == 3
    assert inc.first_seen == T0 + timedelta(minutes=1)
    assert inc.last_seen == T0 + timedelta(minutes=30)
    assert inc.severity == "high"  # medium later does not lower it
    assert inc.window_start == T0
    assert inc.first_seen.tzinfo is UTC
    assert (inc.activity, inc.status, inc.notes, inc.assignee) == ("view", "new", "", None)


def test_severity_rises_across_batches(store: SqlIncidentStore) -> None:
    for sev in ("low", "medium", "low", "high", "medium"):
        store.write_batch([event(1, severity=sev)])
    (inc,) = store.list()
    assert (inc.count, inc.severity) == (5, "high")


def test_earlier_event_arriving_later_moves_first_seen(store: SqlIncidentStore) -> None:
    store.write_batch([event(40)])
    store.write_batch([event(10)])  # e.g. replayed from a spool
    (inc,) = store.list()
    assert (inc.first_seen, inc.last_seen, inc.count) == (
        T0 + timedelta(minutes=10), T0 + timedelta(minutes=40), 2,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("minutes", "expected_counts"),
    [
        ([0, 59.99], [2]),
        ([59.99, 60], [1, 1]),  # the window boundary starts a new incident
        ([0, 61, 125, 126], [2, 1, 1]),
        ([-1, 0], [1, 1]),
    ],
)
def test_dedupe_across_windows(
    store: SqlIncidentStore, minutes: list[float], expected_counts: list[int]
) -> None:
    store.write_batch([event(m) for m in minutes])
    # newest first
    assert [i.count for i in store.list()] == expected_counts
    assert store.count() == len(expected_counts)


@pytest.mark.parametrize(
    "other",
    [{"person": P2}, {"platform": "instagram"}, {"rule_id": "other.rule"}],
)
def test_other_person_platform_or_rule_is_another_incident(
    store: SqlIncidentStore, other: dict[str, str]
) -> None:
    store.write_batch([event(1), event(2, **other), event(3)])
    assert sorted(i.count for i in store.list()) == [1, 2]


def test_custom_window(url: str) -> None:
    s = open_store(url, window=timedelta(minutes=10))
    try:
        s.write_batch([event(m) for m in (0, 9, 10, 25)])
        assert [i.count for i in s.list()] == [1, 1, 2]
    finally:
        s.close()


def test_same_events_twice_count_once(store: SqlIncidentStore) -> None:
    batch = [event(1), event(2), event(3, person=P2)]
    assert store.write_batch(batch) == 3
    assert store.write_batch(batch) == 0
    assert store.write_batch(batch[:1] + [event(4)]) == 1
    assert total(store) == 4
    assert store.applied_count() == 4


def test_duplicate_ids_inside_one_batch_count_once(store: SqlIncidentStore) -> None:
    e = event(1)
    assert store.write_batch([e, e, e]) == 1
    assert total(store) == 1
    assert store.write_batch([]) == 0


FAIL_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER fail_insert BEFORE INSERT ON incidents "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
        "CREATE TRIGGER fail_insert BEFORE INSERT ON incidents "
        "FOR EACH ROW EXECUTE FUNCTION fail_insert()",
    ],
}
DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER fail_insert"],
    "postgresql": ["DROP TRIGGER fail_insert ON incidents", "DROP FUNCTION fail_insert()"],
}


def test_batch_is_one_transaction(store: SqlIncidentStore) -> None:
    # The incident insert fails after the batch's event ids were claimed: the claim must be
    # rolled back with it, or the retried batch would be skipped as "already applied".
    with store.engine.begin() as conn:
        for sql in FAIL_TRIGGER[store.dialect]:
            conn.exec_driver_sql(sql)
    with pytest.raises(Exception, match="injected failure"):
        store.write_batch([event(1), event(2)])
    assert store.applied_count() == 0
    assert store.count() == 0
    with store.engine.begin() as conn:
        for sql in DROP_TRIGGER[store.dialect]:
            conn.exec_driver_sql(sql)
    assert store.write_batch([event(1), event(2)]) == 2
    assert total(store) == 2


def test_review_state_survives_new_events(store: SqlIncidentStore) -> None:
    store.write_batch([event(1)])
    (inc,) = store.list()
    updated = store.update(inc.id, status="acknowledged", assignee="counselor-fake", notes="spoke")
    assert updated is not None
    assert (updated.status, updated.assignee, updated.notes) == (
        "acknowledged", "counselor-fake", "spoke",
    )  # fmt: skip
    store.write_batch([event(2, severity="high")])
    after = store.get(inc.id)
    assert after is not None
    assert (after.count, after.severity, after.status, after.notes) == (
        2, "high", "acknowledged", "spoke",
    )  # fmt: skip
    # None leaves a field unchanged
    again = store.update(inc.id, status="resolved")
    assert again is not None and (again.status, again.notes) == ("resolved", "spoke")


def test_update_and_get_edge_cases(store: SqlIncidentStore) -> None:
    assert store.get(12345) is None
    assert store.update(12345, status="resolved") is None
    store.write_batch([event(1)])
    (inc,) = store.list()
    with pytest.raises(ValueError, match="incident status 'closed'"):
        store.update(inc.id, status="closed")


def _populate(store: SqlIncidentStore) -> None:
    store.write_batch(
        [
            event(1, school="ES-A", platform="tiktok", severity="low"),
            event(2, school="ES-A", platform="instagram", severity="high", person=P2),
            event(3, school="MS-B", platform="tiktok", severity="medium", rule_id="r2"),
            event(64, school="MS-B", platform="snapchat", severity="high"),
            event(125, school="ES-A", platform="tiktok", severity="low"),
        ]
    )


@pytest.mark.parametrize(
    ("filters", "expected_minutes"),
    [
        (IncidentFilter(), [125, 64, 3, 2, 1]),
        (IncidentFilter(school="ES-A"), [125, 2, 1]),
        (IncidentFilter(platform="tiktok"), [125, 3, 1]),
        (IncidentFilter(severity="high"), [64, 2]),
        (IncidentFilter(person=P2), [2]),
        (IncidentFilter(rule_id="r2"), [3]),
        (IncidentFilter(school="ES-A", platform="tiktok"), [125, 1]),
        (IncidentFilter(school="nowhere"), []),
        (IncidentFilter(since=T0 + timedelta(minutes=3)), [125, 64, 3]),
        (IncidentFilter(until=T0 + timedelta(minutes=3)), [2, 1]),
        (IncidentFilter(status="acknowledged"), []),
    ],
)
def test_list_and_count_filters(
    store: SqlIncidentStore, filters: IncidentFilter, expected_minutes: list[int]
) -> None:
    _populate(store)
    got = store.list(filters)
    assert [int((i.last_seen - T0).total_seconds() // 60) for i in got] == expected_minutes
    assert store.count(filters) == len(expected_minutes)


def test_list_paging_and_status_filter(store: SqlIncidentStore) -> None:
    _populate(store)
    everything = store.list()
    assert store.list(limit=2) == everything[:2]
    assert store.list(limit=2, offset=2) == everything[2:4]
    assert store.list(limit=2, offset=4) == everything[4:]
    assert store.list(limit=0) == []
    store.update(everything[1].id, status="resolved")
    assert [i.id for i in store.list(IncidentFilter(status="resolved"))] == [everything[1].id]
    assert store.count(IncidentFilter(status="new")) == 4
    with pytest.raises(ValueError, match="limit and offset"):
        store.list(limit=-1)


def test_list_breaks_last_seen_ties_by_newest_id(store: SqlIncidentStore) -> None:
    store.write_batch([event(5, person=P1)])
    store.write_batch([event(5, person=P2)])
    ids = [i.id for i in store.list()]
    assert ids == sorted(ids, reverse=True)


def test_prune_forgets_old_event_ids(url: str) -> None:
    store = open_store(url, clock=lambda: T0 + timedelta(days=1))  # no automatic pruning yet
    try:
        old = event(1, event_id=new_event_id(T0))
        store.write_batch([old, event(2, event_id=new_event_id(T0 + timedelta(days=1)))])
        assert store.applied_count() == 2
        assert store.prune_applied(T0 + timedelta(hours=12)) == 1
        assert store.applied_count() == 1
        # Beyond the retention an old event id is not recognised any more (documented limit).
        assert store.write_batch([old]) == 1
        assert total(store) == 3
    finally:
        store.close()


def test_store_prunes_on_its_own(url: str) -> None:
    now = [T0 + timedelta(days=2)]
    s = open_store(url, applied_retention=timedelta(days=1), prune_every=timedelta(hours=1),
                   clock=lambda: now[0])  # fmt: skip
    try:
        s.write_batch(
            [event(1, event_id=new_event_id(T0)), event(2, event_id=new_event_id(now[0]))]
        )
        assert s.applied_count() == 1  # pruned after the first batch: one id is two days old
        now[0] += timedelta(minutes=30)
        s.write_batch([event(3, event_id=new_event_id(T0))])
        assert s.applied_count() == 2  # not pruned again within the hour
        now[0] += timedelta(minutes=31)
        s.write_batch([event(4, event_id=new_event_id(now[0]))])
        assert s.applied_count() == 2  # the T0 id went, the new one came
    finally:
        s.close()


def test_open_without_create_refuses_empty_database(url: str) -> None:
    if url.startswith("sqlite"):
        engine = create_engine(url)
        engine.connect().close()  # an empty file
        engine.dispose()
    with pytest.raises(ValueError, match="no incident tables"):
        open_store(url, create=False)
    open_store(url).close()
    open_store(url, create=False).close()  # now it is there


def test_open_without_create_refuses_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(ValueError, match="no SQLite database at"):
        open_store(f"sqlite:///{path}", create=False)
    assert not path.exists()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_normalise_url(given: str, driver: str) -> None:
    assert normalise_url(given).drivername == driver


@pytest.mark.parametrize(
    ("given", "message"),
    [("mysql://u:secretpw@h/db", "only sqlite"), ("not a url", "not a database URL")],
)
def test_normalise_url_rejects(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        normalise_url(given)
    assert "secretpw" not in str(info.value)


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'i.db'}")
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        s.close()


def test_schema_has_list_indexes_and_unique_bucket(store: SqlIncidentStore) -> None:
    insp = inspect(store.engine)
    indexed = {tuple(ix["column_names"]) for ix in insp.get_indexes("incidents")}
    for first in ("school", "platform", "severity", "status"):
        assert (first, "last_seen", "id") in indexed
    assert ("last_seen", "id") in indexed
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("incidents")}
    assert ("window_start", "dedupe_key") in uniques


# -- concurrent writers ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, random, sys
    from monitor.incidents.events import IncidentEvent
    from monitor.incidents.store import open_store

    url, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    events = [IncidentEvent.from_dict(json.loads(line)) for line in open(path)]
    random.Random(seed).shuffle(events)
    store = open_store(url)
    for i in range(0, len(events), 40):
        store.write_batch(events[i : i + 40])
    store.close()
    """
)


def test_concurrent_writer_processes_agree(url: str, tmp_path: Path) -> None:
    open_store(url).close()  # schema first, so the writers do not race on CREATE TABLE
    rnd = random.Random(7)
    persons = [f"p-{i:016x}" for i in range(12)]

    def random_event() -> IncidentEvent:
        return event(
            rnd.uniform(0, 180),  # three windows
            person=rnd.choice(persons),
            platform=rnd.choice(["tiktok", "instagram"]),
            severity=rnd.choice(["low", "medium", "high"]),
        )

    shared = [random_event() for _ in range(1500)]  # both processes write these
    own = [[random_event() for _ in range(500)] for _ in range(2)]
    procs = []
    for n in range(2):
        path = tmp_path / f"events-{n}.jsonl"
        path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in shared + own[n]))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, str(path), str(n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err

    everything = shared + own[0] + own[1]
    expected = Counter({(b.dedupe_key, b.window_start): b.count for b in aggregate(everything)})
    expected_severity = {(b.dedupe_key, b.window_start): b.severity for b in aggregate(everything)}
    s = open_store(url)
    try:
        got = s.list(limit=10_000)
        assert Counter({(i.dedupe_key, i.window_start): i.count for i in got}) == expected
        assert {(i.dedupe_key, i.window_start): i.severity for i in got} == expected_severity
        assert sum(i.count for i in got) == len(everything) == 2500
        assert s.applied_count() == 2500
    finally:
        s.close()
