"""Recorder against real SQLite stores; outages come from a wrapper around the real store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg
import pytest

from monitor.incidents.events import IncidentEvent
from monitor.incidents.recorder import Recorder
from monitor.incidents.spool import Spool
from monitor.incidents.store import SqlIncidentStore, open_store

pg_cluster = pg.pg_cluster

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def make_events(n: int, start: int = 0) -> list[IncidentEvent]:
    # Distinct people, so every event is its own incident and counts are easy to check;
    # a few repeats per person exercise dedupe as well.
    return [
        IncidentEvent(
            time=T0 + timedelta(seconds=i),
            person=f"p-{(start + i) // 3:016x}",
            school="ES-TEST",
            grade="5",
            age_band="under13",
            role="student",
            platform="tiktok",
            activity="view",
            action="block",
            rule_id="age.under13",
            reason="Under 13: children's platforms only.",
            host="www.tiktok.com",
            source="proxy",
            severity="low",
        )  # fmt: skip
        for i in range(start, start + n)
    ]


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class FlakyStore:
    """The real store, except that write_batch fails while ``down`` is set; with
    ``commit_then_fail`` it commits and then raises (a lost acknowledgement)."""

    def __init__(self, inner: SqlIncidentStore) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.commit_then_fail = 0
        self.calls = 0

    def write_batch(self, events: Sequence[IncidentEvent]) -> int:
        self.calls += 1
        if self.down.is_set():
            raise ConnectionError("store unreachable (test)")
        n = self.inner.write_batch(events)
        if self.commit_then_fail:
            self.commit_then_fail -= 1
            raise ConnectionError("connection lost after COMMIT (test)")
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self) -> None:
        pass  # the test owns the inner store


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqlIncidentStore]:
    s = open_store(f"sqlite:///{tmp_path / 'incidents.db'}")
    yield s
    s.close()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "incidents.jsonl"


def total(store: SqlIncidentStore) -> int:
    return sum(i.count for i in store.list(limit=1_000_000))


def spool_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def recorder(factory: Callable[[], Any], spool: Path, **kw: Any) -> Recorder:
    opts: dict[str, Any] = dict(queue_size=10_000, batch_size=100, flush_interval=0.05,
                                retry_initial=0.05, retry_max=0.2)  # fmt: skip
    opts.update(kw)
    return Recorder(factory, spool, **opts)


def test_writes_everything_in_batches(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool, batch_size=64)
    events = make_events(1000)
    assert all(rec.submit(e) for e in events)
    assert rec.close(timeout=10)
    st = rec.stats
    assert (st.submitted, st.written, st.dropped, st.spooled, st.duplicates) == (
        1000,
        1000,
        0,
        0,
        0,
    )
    assert st.queue_depth == 0 and st.store_ok
    assert st.last_write_latency > 0
    assert total(db) == 1000
    assert db.count() == 334  # three events per person, same window


def test_close_flushes_without_waiting_for_the_interval(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool, batch_size=10_000, flush_interval=60)
    for e in make_events(25):
        rec.submit(e)
    t = time.monotonic()
    assert rec.close(timeout=10)
    assert time.monotonic() - t < 5
    assert total(db) == 25
    assert rec.close() is True  # twice is fine


def test_store_outage_spools_then_replays(db: SqlIncidentStore, spool: Path) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    rec = recorder(lambda: flaky, spool)
    first, second = make_events(300), make_events(200, start=300)
    for e in first:
        assert rec.submit(e)
    wait_for(lambda: rec.stats.spooled == 300)
    assert spool_lines(spool) == 300
    assert total(db) == 0
    assert not rec.stats.store_ok
    assert rec.stats.write_failures >= 1
    # Spooled lines are the events themselves, one JSON object per line.
    line = json.loads(spool.read_text().splitlines()[0])
    assert IncidentEvent.from_dict(line) == first[0]

    flaky.down.clear()
    for e in second:
        rec.submit(e)
    wait_for(lambda: rec.stats.written == 500)
    assert rec.close(timeout=10)
    st = rec.stats
    assert total(db) == 500  # zero lost, zero doubled
    assert st.replayed >= 300 and st.duplicates == 0
    assert st.spool_pending == 0 and spool_lines(spool) == 0
    assert st.store_ok


def test_real_postgresql_goes_away_and_comes_back(pg_cluster: pg.Cluster, spool: Path) -> None:
    url = pg_cluster.url
    open_store(url).close()
    rec = recorder(lambda: open_store(url, timeout=2), spool, batch_size=50)
    for e in make_events(200):
        rec.submit(e)
    wait_for(lambda: rec.stats.written == 200)

    pg_cluster.stop()
    for e in make_events(300, start=200):
        rec.submit(e)
    wait_for(lambda: rec.stats.spooled == 300, timeout=30)
    assert not rec.stats.store_ok
    assert spool_lines(spool) == 300

    pg_cluster.start()
    for e in make_events(100, start=500):
        rec.submit(e)
    wait_for(lambda: rec.stats.written + rec.stats.duplicates == 600, timeout=30)
    assert rec.close(timeout=10)
    assert rec.stats.store_ok and spool_lines(spool) == 0
    check = open_store(url)
    try:
        assert total(check) == 600  # zero lost, zero doubled
        assert check.applied_count() == 600
    finally:
        check.close()


def test_lost_acknowledgement_does_not_double(db: SqlIncidentStore, spool: Path) -> None:
    flaky = FlakyStore(db)
    flaky.commit_then_fail = 1  # the first batch is committed, but the recorder sees an error
    rec = recorder(lambda: flaky, spool, batch_size=50)
    for e in make_events(50):
        rec.submit(e)
    wait_for(lambda: rec.stats.spooled == 50 and rec.stats.spool_pending == 0)
    assert rec.close(timeout=10)
    st = rec.stats
    assert total(db) == 50
    # The recorder never saw the first commit confirmed; the replay found every id applied.
    assert (st.written, st.duplicates, st.replayed) == (0, 50, 0)


def test_crash_between_commit_and_truncate_does_not_double(
    db: SqlIncidentStore, spool: Path
) -> None:
    # State left by a crash: the spool still holds 40 events, 30 of which the store had
    # already committed during a replay when the process died.
    events = make_events(40)
    s = Spool(spool)
    s.append(events)
    s.close()
    db.write_batch(events[:30])
    assert total(db) == 30

    rec = recorder(lambda: db, spool, batch_size=16)
    wait_for(lambda: rec.stats.spool_pending == 0)
    assert rec.close(timeout=10)
    st = rec.stats
    assert total(db) == 40
    assert (st.replayed, st.duplicates) == (10, 30)
    assert spool_lines(spool) == 0


@pytest.mark.parametrize("spooled", [100, 1000])
def test_events_arriving_during_a_replay_are_replayed_not_dropped(
    db: SqlIncidentStore, spool: Path, spooled: int
) -> None:
    # Events submitted while the spool is being replayed (here: from inside every store
    # call, including the one for the last chunk) go behind the spool and are replayed too,
    # not dropped from a full queue and not cut off by the truncation.
    s = Spool(spool)
    s.append(make_events(spooled))
    s.close()
    late = iter(make_events(10_000, start=spooled))
    rec_box: list[Recorder] = []
    extra = []

    class Hook(FlakyStore):
        def write_batch(self, events: Sequence[IncidentEvent]) -> int:
            n = self.inner.write_batch(events)
            if rec_box and len(extra) < 100:
                for _ in range(5):
                    e = next(late)
                    extra.append(e)
                    assert rec_box[0].submit(e)
            return n

    rec = recorder(lambda: Hook(db), spool, batch_size=100, queue_size=10, start=False)
    rec_box.append(rec)
    rec.start()
    wait_for(lambda: rec.stats.spool_pending == 0 and rec.stats.queue_depth == 0)
    assert rec.close(timeout=10)
    st = rec.stats
    assert st.dropped == 0
    assert total(db) == spooled + len(extra)
    assert st.replayed == spooled + len(extra)
    assert spool_lines(spool) == 0


def test_store_down_at_start_is_retried(db: SqlIncidentStore, spool: Path) -> None:
    attempts = []

    def factory() -> SqlIncidentStore:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("database not up yet (test)")
        return db

    rec = recorder(factory, spool)
    for e in make_events(30):
        rec.submit(e)
    wait_for(lambda: rec.stats.written == 30)
    assert rec.close(timeout=10)
    assert len(attempts) == 3
    assert total(db) == 30


def test_shutdown_while_store_is_down_spools_and_next_start_replays(
    db: SqlIncidentStore, spool: Path
) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    rec = recorder(lambda: flaky, spool, retry_initial=30, retry_max=60, flush_interval=60)
    for e in make_events(120):
        rec.submit(e)
    t = time.monotonic()
    assert rec.close(timeout=10)
    assert time.monotonic() - t < 5  # no waiting out the 30 s backoff
    assert rec.stats.spool_pending == 120 and spool_lines(spool) == 120
    assert total(db) == 0

    rec2 = recorder(lambda: db, spool)
    assert rec2.stats.spool_pending == 120
    wait_for(lambda: rec2.stats.written == 120)
    assert rec2.close(timeout=10)
    assert total(db) == 120
    assert spool_lines(spool) == 0


def test_shutdown_tries_the_store_once_more(db: SqlIncidentStore, spool: Path) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    rec = recorder(lambda: flaky, spool, retry_initial=30, retry_max=60)
    for e in make_events(10):
        rec.submit(e)
    wait_for(lambda: rec.stats.spooled == 10)
    flaky.down.clear()  # back, but the next retry is 30 s away
    assert rec.close(timeout=10)
    assert total(db) == 10
    assert spool_lines(spool) == 0


def test_queue_full_drops_and_counts(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool, queue_size=5, start=False)
    results = [rec.submit(e) for e in make_events(8)]
    assert results == [True] * 5 + [False] * 3
    st = rec.stats
    assert (st.submitted, st.dropped, st.queue_depth) == (5, 3, 5)
    rec.start()
    assert rec.close(timeout=10)
    assert total(db) == 5
    assert rec.stats.written == 5


def test_submit_after_close_is_refused(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool)
    assert rec.close(timeout=10)
    assert rec.submit(make_events(1)[0]) is False
    assert rec.stats.dropped == 1


def test_close_without_start_still_flushes(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool, start=False)
    for e in make_events(7):
        rec.submit(e)
    assert rec.close(timeout=10)
    assert total(db) == 7


def test_submit_from_many_threads(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool, queue_size=20_000, batch_size=500)
    chunks = [make_events(2500, start=k * 2500) for k in range(4)]
    threads = [threading.Thread(target=lambda c=c: [rec.submit(e) for e in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.close(timeout=30)
    st = rec.stats
    assert (st.submitted, st.written, st.dropped) == (10_000, 10_000, 0)
    assert total(db) == 10_000


def test_submit_does_not_wait_for_a_stuck_store(db: SqlIncidentStore, spool: Path) -> None:
    release = threading.Event()

    class StuckStore(FlakyStore):
        def write_batch(self, events: Sequence[IncidentEvent]) -> int:
            self.calls += 1
            release.wait(10)
            return self.inner.write_batch(events)

    stuck = StuckStore(db)
    rec = recorder(lambda: stuck, spool, batch_size=10)
    events = make_events(201)
    rec.submit(events[0])
    wait_for(lambda: stuck.calls == 1)  # the writer is now inside write_batch, blocked
    t = time.perf_counter()
    assert all(rec.submit(e) for e in events[1:])
    assert time.perf_counter() - t < 0.2
    assert rec.stats.queue_depth >= 190
    release.set()
    assert rec.close(timeout=30)
    assert total(db) == 201


def test_spool_full_counts_the_loss(db: SqlIncidentStore, spool: Path) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    rec = recorder(lambda: flaky, spool, spool_max_bytes=2000, batch_size=5)
    for e in make_events(20):
        rec.submit(e)
    assert rec.close(timeout=10)
    st = rec.stats
    assert st.spooled + st.dropped == 20
    assert st.dropped > 0 and st.spooled > 0
    assert spool.stat().st_size <= 2000
    assert spool_lines(spool) == st.spooled


def test_spool_repairs_a_torn_last_line_and_skips_bad_lines(spool: Path) -> None:
    events = make_events(3)
    spool.parent.mkdir(parents=True)
    good = [json.dumps(e.to_dict()) for e in events]
    spool.write_text(good[0] + "\n" + '{"not": "an event"}\n' + good[1] + "\n" + good[2][:40])
    s = Spool(spool)
    assert s.pending == 2 + 1  # the torn fragment is gone, the bad line still counts
    assert spool.read_text().endswith("\n")
    s.append(events[2:])
    read = [e for chunk in s.read(chunk=2) for e in chunk]
    assert read == events  # in order; the bad line skipped
    assert s.invalid == 1
    s.truncate()
    assert s.pending == 0 and spool.stat().st_size == 0
    s.close()


def test_spool_is_one_recorder_only(db: SqlIncidentStore, spool: Path) -> None:
    rec = recorder(lambda: db, spool)
    try:
        with pytest.raises(ValueError, match="in use by another recorder"):
            recorder(lambda: db, spool)
    finally:
        assert rec.close(timeout=10)
    recorder(lambda: db, spool).close(timeout=10)  # free again after close


@pytest.mark.parametrize(
    "kw",
    [{"queue_size": 0}, {"batch_size": 0}, {"flush_interval": 0}],
)
def test_rejects_bad_settings(db: SqlIncidentStore, spool: Path, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="recorder:"):
        recorder(lambda: db, spool, **kw)
