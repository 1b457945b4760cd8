"""What every writer of one store shares, on SQLite and a real PostgreSQL (tests/pg.py): teacher
overrides in the store (the same rules as the JSON file, atomic across processes, a change
counter to poll), the pseudonym key's fingerprint, migration 0003, SQLite's settings for several
writers, and the recorder while another writer holds SQLite's lock."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pg
import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from monitor.district import shared_overrides
from monitor.flow.metrics import Metrics
from monitor.flow.recording import DecisionLog
from monitor.incidents.events import IncidentEvent, key_fingerprint
from monitor.incidents.recorder import Recorder
from monitor.incidents.store import normalise_url, open_store
from monitor.incidents.store.keycheck import KeyMismatchError, stored_fingerprint
from monitor.incidents.store.migrations import config, current, head, upgrade
from monitor.incidents.store.overrides import SqlOverrideRecords, StoreUnavailableError
from monitor.rules.overrides import Override, SharedOverrides

pg_dsn = pg.pg_dsn

NOW = datetime.now(UTC).replace(microsecond=0)
H = timedelta(hours=1)
KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new database on the test cluster."""
    yield from pg.empty_store_url(request, tmp_path, "shared")


@pytest.fixture
def book(url: str) -> Iterator[SharedOverrides]:
    b = shared_overrides(url)
    yield b
    b.source.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- overrides in the store


def test_grants_round_trip_with_every_field(book: SharedOverrides) -> None:
    g = book.grant(platform="youtube", granted_by="t-0001", class_id="c-bio", ends=NOW + H,
                   reason="  fake lab  ", now=NOW, granted_by_role="aide")  # fmt: skip
    s = book.grant(platform="tiktok", granted_by="t-0002", students=["s-0001", "s-0002", "s-0001"],
                   starts=NOW + H, ends=NOW + 2 * H, now=NOW, override_id="ov-fixed")  # fmt: skip
    assert s.students == ("s-0001", "s-0002") and g.reason == "fake lab"
    assert book.load() == [g, s]  # grant order, every field as granted
    r = book.revoke("ov-fixed", "t-0003", now=NOW + timedelta(minutes=5))
    (back_g, back_s) = book.load()
    assert back_s == r and back_s.revoked_by == "t-0003" and back_g.granted_by_role == "aide"
    assert back_s.starts.utcoffset() == timedelta(0) and back_g.ends == NOW + H  # aware UTC


def test_the_rules_of_the_json_store_apply(book: SharedOverrides) -> None:
    first = book.grant(platform="tiktok", granted_by="t-0001", students=["s-0001", "s-0002"],
                       ends=NOW + 2 * H, now=NOW, override_id="ov-first")  # fmt: skip
    with pytest.raises(ValueError) as info:
        book.grant(platform="tiktok", granted_by="t-0009", students=["s-0002"], starts=NOW + H,
                   ends=NOW + 3 * H, now=NOW)  # fmt: skip
    assert str(info.value).startswith("overlaps override ov-first (students s-0001, s-0002, ")
    with pytest.raises(ValueError, match="at most 30m; this one lasts 1h"):
        book.grant(platform="youtube", granted_by="t-0001", class_id="c-bio", ends=NOW + H,
                   now=NOW, max_length=timedelta(minutes=30))  # fmt: skip
    with pytest.raises(ValueError, match="override id 'ov-first' is already used"):
        book.grant(platform="youtube", granted_by="t-0001", class_id="c-x", ends=NOW + H,
                   now=NOW, override_id="ov-first")  # fmt: skip
    with pytest.raises(ValueError, match="no override with id 'ov-nope'"):
        book.revoke("ov-nope", "t-0003", now=NOW)
    book.revoke(first.id, "t-0001", now=NOW + timedelta(minutes=30))
    with pytest.raises(ValueError, match="was already revoked by t-0001"):
        book.revoke(first.id, "t-0002", now=NOW + timedelta(minutes=31))
    # once revoked, the window is free again
    half = NOW + timedelta(minutes=30)
    book.grant(platform="tiktok", granted_by="t-0001", students=["s-0001"], starts=half,
               ends=NOW + H, now=half)  # fmt: skip
    assert len(book.load()) == 2
    # the proxy's view: only what can still apply
    later = NOW + timedelta(minutes=45)
    assert [o.students for o in book.override_set(now=later)] == [("s-0001",)]
    assert [o.students for o in book.list(active_only=True, now=later)] == [("s-0001",)]
    assert [o.id for o in book.list()][0] == first.id  # revoked, kept for the record


def test_version_counts_every_change_and_nothing_else(book: SharedOverrides) -> None:
    v0 = book.version()
    g = book.grant(platform="tiktok", granted_by="t-0001", class_id="c-1", ends=NOW + H, now=NOW)
    v1 = book.version()
    with pytest.raises(ValueError):  # refused: nothing written, nothing counted
        book.grant(platform="tiktok", granted_by="t-0001", class_id="c-1", ends=NOW + H, now=NOW)
    assert book.version() == v1 > v0
    book.revoke(g.id, "t-0001", now=NOW)
    v2 = book.version()
    assert v2 > v1
    extra = Override(id="ov-imported", platform="youtube", granted_by="t-0001", class_id="c-2",
                     starts=NOW, ends=NOW + H)  # fmt: skip
    assert book.add_all([extra, g]) == ["ov-imported"]  # g's id is there: skipped
    assert book.version() > v2
    v3 = book.version()
    assert book.add_all([extra]) == [] and book.version() == v3  # idempotent


def test_only_grants_that_can_still_apply_are_read(book: SharedOverrides) -> None:
    book.grant(platform="tiktok", granted_by="t-0001", class_id="c-1", ends=NOW + H, now=NOW)
    old = Override(id="ov-old", platform="tiktok", granted_by="t-0001", class_id="c-1",
                   starts=NOW - 3 * H, ends=NOW - 2 * H)  # fmt: skip
    book.add_all([old])
    assert len(book.current(NOW)) == 1 and book.current(NOW)[0].id != "ov-old"
    assert {o.id for o in book.load()} == {book.current(NOW)[0].id, "ov-old"}  # kept


GRANTER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime, timedelta
    from monitor.district import shared_overrides
    url, go, who = sys.argv[1], sys.argv[2], sys.argv[3]
    book = shared_overrides(url)
    book.version()  # connected, tables made
    print("ready", flush=True)
    while not __import__("os").path.exists(go):
        time.sleep(0.002)
    now = datetime.now(UTC)
    try:
        g = book.grant(platform="tiktok", granted_by=who, students=["s-0001"],
                       ends=now + timedelta(minutes=30), now=now)
        print("granted", g.id)
    except ValueError as e:
        print("refused", str(e)[:60])
    """
)


def test_concurrent_grants_from_several_processes_overlap_check_is_atomic(
    url: str, tmp_path: Path
) -> None:
    """Six processes grant the same student the same platform at the same instant: exactly one
    grant is recorded, the others are refused as overlapping it."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", GRANTER, url, str(go), f"t-{n:04d}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(6)
    ]  # fmt: skip
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(out.strip())
    assert sum(o.startswith("granted") for o in outs) == 1, outs
    assert sum(o.startswith("refused overlaps override") for o in outs) == 5, outs
    b = shared_overrides(url)
    try:
        assert len(b.load()) == 1
    finally:
        b.source.close()  # type: ignore[attr-defined]


def test_damaged_rows_are_named(book: SharedOverrides) -> None:
    book.grant(platform="tiktok", granted_by="t-0001", class_id="c-1", ends=NOW + H, now=NOW,
               override_id="ov-bad")  # fmt: skip
    with book.source.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("UPDATE overrides SET students = '[\"s-1\"]' WHERE id = 'ov-bad'"))
    with pytest.raises(ValueError) as info:
        book.load()
    assert str(info.value) == f"{book.name}: override 'ov-bad': name either class_id or students"


def test_an_unreachable_store_is_a_clear_error_without_the_password() -> None:
    src = SqlOverrideRecords("postgresql://monitor:s3cret-pw@127.0.0.1:9/nowhere", timeout=1)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            src.version()
    finally:
        src.close()
    msg = str(info.value)
    assert msg.startswith("incident store postgresql+psycopg://monitor:***@127.0.0.1:9/nowhere: ")
    assert "s3cret-pw" not in msg and "OperationalError" in msg


# ---------------------------------------------------------------- the pseudonym key's fingerprint


def test_the_first_writer_claims_the_key_and_another_key_is_refused(url: str) -> None:
    fp_a, fp_b = key_fingerprint(KEY_A), key_fingerprint(KEY_B)
    assert fp_a != fp_b and len(fp_a) == 64 and KEY_A.hex() not in fp_a
    open_store(url, key_fingerprint=fp_a, key_source="/etc/monitor/a.key").close()
    open_store(url, key_fingerprint=fp_a, key_source="/etc/monitor/a.key").close()  # same: fine
    with pytest.raises(KeyMismatchError) as info:
        open_store(url, key_fingerprint=fp_b, key_source="/etc/other/b.key")
    msg = str(info.value)
    assert "refused: the pseudonym key from /etc/other/b.key" in msg
    assert f"fingerprint {fp_b[:12]}" in msg and f"fingerprint {fp_a[:12]}" in msg
    assert "pseudonym_key_file in district.yaml" in msg and "MONITOR_PSEUDONYM_KEY" in msg
    s = open_store(url)  # readers (no fingerprint) are not checked
    try:
        assert stored_fingerprint(s.engine) == fp_a
        with s.engine.connect() as conn:  # the key itself is nowhere in the store
            dump = json.dumps([list(r) for r in conn.execute(text("SELECT * FROM store_settings"))])
        assert KEY_A.hex() not in dump and KEY_B.hex() not in dump
    finally:
        s.close()


def test_writers_starting_together_with_two_keys_one_wins(url: str) -> None:
    open_store(url).close()
    results: list[str] = []

    def claim(key: bytes) -> None:
        try:
            open_store(url, key_fingerprint=key_fingerprint(key)).close()
            results.append("ok")
        except KeyMismatchError:
            results.append("refused")

    threads = [threading.Thread(target=claim, args=(k,)) for k in (KEY_A, KEY_B) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 4 + ["refused"] * 4


def event(n: int) -> IncidentEvent:
    return IncidentEvent(
        time=datetime(2025, 3, 3, 10, 0, tzinfo=UTC) + timedelta(seconds=n),
        person=f"p-{n % 7:016x}", school="ES-TEST", grade="5", age_band="under13",
        role="student", platform="tiktok", activity="view", action="block",
        rule_id="age.under13", reason="Fake reason.", host="www.tiktok.com", source="proxy",
        severity="low",
    )  # fmt: skip


def test_a_writer_with_another_key_keeps_its_events_in_the_spool(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_store(url, key_fingerprint=key_fingerprint(KEY_A)).close()
    fp_b = key_fingerprint(KEY_B)
    spool = tmp_path / "spool.jsonl"
    rec = Recorder(lambda: open_store(url, key_fingerprint=fp_b, key_source="MONITOR_PSEUDONYM_KEY"),
                   spool, flush_interval=0.05, retry_initial=0.05, retry_max=0.2)  # fmt: skip
    metrics = Metrics()
    log = DecisionLog(metrics, rec, KEY_B)
    with caplog.at_level(logging.ERROR, logger="monitor.incidents.recorder"):
        for n in range(40):
            assert rec.submit(event(n))
        deadline = time.monotonic() + 20
        while rec.stats.spooled < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # several retries: still refused, said once
        log.update_recorder_metrics()
        st = rec.stats
        assert st.key_mismatch and not st.store_ok and st.spooled == 40 and st.written == 0
        gauge = metrics.registry.get_sample_value("monitor_incident_store_key_mismatch")
        assert gauge == 1.0
        assert metrics.registry.get_sample_value("monitor_incident_store_up") == 0.0
        rec.close(timeout=10)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "refused: the pseudonym key from MONITOR_PSEUDONYM_KEY" in errors[0]
    assert str(spool) in errors[0]
    assert len(spool.read_text().splitlines()) == 40  # nothing lost, nothing mixed
    s = open_store(url)
    try:
        assert s.count() == 0 and s.applied_count() == 0
    finally:
        s.close()


# ---------------------------------------------------------------- migration 0003


def test_upgrade_from_0002_adds_the_shared_tables(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        command.upgrade(config(conn), "0002")
    with engine.connect() as conn:
        assert "overrides" not in inspect(conn).get_table_names()
    assert upgrade(url) == head()
    with engine.connect() as conn:
        assert {"overrides", "store_settings"} <= set(inspect(conn).get_table_names())
    b = shared_overrides(url)
    try:
        b.grant(platform="tiktok", granted_by="t-1", class_id="c-1", ends=NOW + H, now=NOW)
    finally:
        b.source.close()  # type: ignore[attr-defined]
    with engine.begin() as conn:
        command.downgrade(config(conn), "0002")
    with engine.connect() as conn:
        assert current(conn) == "0002"
        assert "overrides" not in inspect(conn).get_table_names()
    engine.dispose()


def test_upgrade_adopts_tables_a_writer_made_first(url: str) -> None:
    """A store at 0002 that a new proxy opened (create_all made the shared tables) upgrades;
    and one create_all made before 0003 (no Alembic, no shared tables) is stamped 0002 and
    upgraded."""
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        command.upgrade(config(conn), "0002")
    open_store(url, key_fingerprint=key_fingerprint(KEY_A)).close()  # makes the new tables
    assert upgrade(url) == head()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DROP TABLE overrides"))
        conn.execute(text("DROP TABLE store_settings"))
    assert upgrade(url) == head()
    with engine.connect() as conn:
        assert {"overrides", "store_settings"} <= set(inspect(conn).get_table_names())
    engine.dispose()


# ---------------------------------------------------------------- SQLite, several writers


def test_sqlite_connections_use_wal_and_wait_for_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'i.db'}"
    s = open_store(url)
    src = SqlOverrideRecords(url)
    try:
        for engine in (s.engine, src.engine):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        s.close()
        src.close()


def hold_lock(path: Path, seconds: float) -> threading.Thread:
    """Another writer: takes SQLite's write lock and keeps it for ``seconds``."""
    ready = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=run)
    t.start()
    ready.wait(5)
    return t


def test_recorder_waits_out_a_short_lock_without_spooling(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    open_store(f"sqlite:///{db}").close()
    rec = Recorder(lambda: open_store(f"sqlite:///{db}", timeout=5), tmp_path / "spool.jsonl",
                   flush_interval=0.02, journal_path=tmp_path / "journal.jsonl")  # fmt: skip
    rec.submit(event(0))
    deadline = time.monotonic() + 10
    while rec.stats.written < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    locker = hold_lock(db, 0.8)
    t0 = time.monotonic()
    for n in range(1, 51):
        rec.submit(event(n))
    while rec.stats.written < 51 and time.monotonic() < deadline:
        time.sleep(0.01)
    waited = time.monotonic() - t0
    locker.join()
    assert rec.close(timeout=10)
    st = rec.stats
    assert st.written == 51 and st.spooled == 0 and st.write_failures == 0 and st.store_ok
    assert waited >= 0.6  # it did wait for the other writer's lock
    assert (tmp_path / "journal.jsonl").stat().st_size == 0  # all settled
    s = open_store(f"sqlite:///{db}")
    assert sum(i.count for i in s.list(limit=100)) == 51
    s.close()


def test_recorder_spools_while_another_writer_holds_the_lock_too_long(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    open_store(f"sqlite:///{db}").close()
    spool = tmp_path / "spool.jsonl"
    rec = Recorder(lambda: open_store(f"sqlite:///{db}", timeout=0.2), spool,
                   flush_interval=0.02, retry_initial=0.1, retry_max=0.3,
                   journal_path=tmp_path / "journal.jsonl")  # fmt: skip
    locker = hold_lock(db, 3.0)
    for n in range(60):
        rec.submit(event(n))
    deadline = time.monotonic() + 10
    while rec.stats.spooled < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    st = rec.stats
    assert st.spooled == 60 and not st.store_ok and st.written == 0 and st.write_failures >= 1
    assert len(spool.read_text().splitlines()) == 60
    locker.join()
    while rec.stats.written < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.close(timeout=10)
    st = rec.stats
    assert (st.written, st.replayed, st.duplicates, st.dropped) == (60, 60, 0, 0) and st.store_ok
    assert spool.read_text() == ""
    s = open_store(f"sqlite:///{db}")
    assert sum(i.count for i in s.list(limit=100)) == 60 and s.applied_count() == 60
    s.close()
