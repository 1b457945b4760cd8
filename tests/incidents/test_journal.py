"""The recorder's journal: every event is in a file before submit() returns, a process killed
with events in memory loses none of them, and the journal stays short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_recorder import FlakyStore, make_events, recorder, total, wait_for
from test_spool_faults import applied_ids, fill, tiny_fs  # noqa: F401 - a fixture

from monitor.incidents import journal as journal_mod
from monitor.incidents.events import IncidentEvent
from monitor.incidents.journal import Journal
from monitor.incidents.spool import event_line
from monitor.incidents.store import SqlIncidentStore, open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqlIncidentStore]:
    s = open_store(f"sqlite:///{tmp_path / 'incidents.db'}")
    yield s
    s.close()


def journal_ids(path: Path) -> list[str]:
    return [json.loads(x)["event_id"] for x in path.read_bytes().splitlines()]


def test_an_event_is_in_the_journal_when_submit_returns(
    db: SqlIncidentStore, tmp_path: Path
) -> None:
    j = tmp_path / "state" / "incident-journal.jsonl"
    rec = recorder(lambda: db, tmp_path / "spool.jsonl", journal_path=j, queue_size=5, start=False)
    events = make_events(7)
    accepted = [rec.submit(e) for e in events]
    assert accepted == [True] * 5 + [False] * 2
    # the writer has not even started: the kernel holds the lines all the same
    assert journal_ids(j) == [e.event_id for e in events[:5]]
    assert IncidentEvent.from_dict(json.loads(j.read_bytes().splitlines()[0])) == events[0]
    rec.start()
    assert rec.close(timeout=10)
    assert total(db) == 5
    assert j.stat().st_size == 0  # all of it in the store: nothing left to read back


CHILD = """
import json, sys, time
from monitor.incidents.events import IncidentEvent
from monitor.incidents.recorder import Recorder
from monitor.incidents.store import open_store

url, spool, journal, events_file = sys.argv[1:5]
events = [IncidentEvent.from_dict(d) for d in json.load(open(events_file))]
rec = Recorder(lambda: open_store(url), spool, batch_size=10, flush_interval=600,
               journal_path=journal)
for e in events:
    assert rec.submit(e)
while rec.stats.written < 20:  # two full batches written; the last five wait in memory
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(600)
"""


def test_sigkill_with_events_in_memory_loses_none(db: SqlIncidentStore, tmp_path: Path) -> None:
    events = make_events(25)
    (tmp_path / "events.json").write_text(json.dumps([e.to_dict() for e in events]))
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    spool, j = tmp_path / "spool.jsonl", tmp_path / "incident-journal.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(spool), str(j), str(tmp_path / "events.json")],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert total(db) == 20  # five events were in memory only
    rec = recorder(lambda: db, spool, journal_path=j)
    wait_for(lambda: rec.stats.written == 5)
    assert rec.close(timeout=10)
    st = rec.stats
    # the journal still held all 25 (it is cut back only when everything in it is written);
    # the store applied the 20 it had once, and the 5 it lacked
    assert (st.recovered, st.written, st.duplicates, st.dropped) == (25, 5, 20, 0)
    assert total(db) == 25
    assert sorted(applied_ids(db)) == sorted(e.event_id for e in events)
    assert j.stat().st_size == 0


def test_the_journal_survives_a_store_that_hangs_at_shutdown(
    db: SqlIncidentStore, tmp_path: Path
) -> None:
    release = threading.Event()

    class Hung(FlakyStore):
        def write_batch(self, events: Any) -> int:
            release.wait(20)
            return self.inner.write_batch(events)

    j, spool = tmp_path / "incident-journal.jsonl", tmp_path / "spool.jsonl"
    rec = recorder(lambda: Hung(db), spool, journal_path=j, batch_size=10)
    events = make_events(30)
    for e in events:
        rec.submit(e)
    assert rec.close(timeout=0.5) is False  # the writer is stuck: the process would exit now
    assert set(journal_ids(j)) == {e.event_id for e in events}
    release.set()
    wait_for(lambda: not rec._thread.is_alive())
    rec2 = recorder(lambda: db, spool, journal_path=j)
    assert rec2.close(timeout=10)
    assert total(db) == 30 and sorted(applied_ids(db)) == sorted(e.event_id for e in events)


def test_one_process_per_journal(db: SqlIncidentStore, tmp_path: Path) -> None:
    j = tmp_path / "incident-journal-w1.jsonl"
    rec = recorder(lambda: db, tmp_path / "s1.jsonl", journal_path=j)
    try:
        with pytest.raises(ValueError, match="in use by another process"):
            recorder(lambda: db, tmp_path / "s2.jsonl", journal_path=j)
        # the failed recorder released its spool: a third one may take it
        recorder(lambda: db, tmp_path / "s2.jsonl").close(timeout=10)
    finally:
        assert rec.close(timeout=10)
    recorder(lambda: db, tmp_path / "s1.jsonl", journal_path=j).close(timeout=10)


def test_fsync_on_the_sync_thread_at_most_every_interval(
    db: SqlIncidentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, float]] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        calls.append((threading.current_thread().name, time.monotonic()))
        real(fd)

    monkeypatch.setattr(journal_mod.os, "fdatasync", spy)
    j = tmp_path / "incident-journal.jsonl"
    rec = recorder(lambda: db, tmp_path / "spool.jsonl", journal_path=j, sync_interval=0.1,
                   flush_interval=5, batch_size=10_000)  # fmt: skip
    t0 = time.monotonic()
    for e in make_events(150):
        rec.submit(e)  # on this thread: no fsync here
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    assert rec.close(timeout=10)
    assert calls, "the journal was never synced"
    assert {name for name, _ in calls} == {"incident-journal-sync"}
    while_running = [t for _, t in calls if t <= t0 + seconds]
    assert len(while_running) <= seconds / 0.1 + 2


def test_rotation_and_reading_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "incident-journal.jsonl"
    lock = threading.Lock()
    events = make_events(20)
    a, b = [event_line(e) for e in events[:10]], [event_line(e) for e in events[10:]]
    j = Journal(path, lock, rotate_bytes=len(b"".join(a)))
    with lock:
        ends = [j.append(x) for x in a]
    j.mark_done(ends[3])  # some of it written, not all: the segment is sealed, not cut
    j.compact()
    assert j.sealed_path.exists() and path.stat().st_size == 0
    with lock:
        for x in b:
            j.append(x)
    j.close()  # what is not done stays for the next start
    again = Journal(path, threading.Lock(), rotate_bytes=1 << 20)
    got = [(ev.event_id, pos) for chunk, pos in again.leftovers(4) for ev in chunk]
    want = [e.event_id for e in events]
    assert [i for i, _ in got] == want  # sealed first, then active; order kept
    last = 0
    for _chunk, pos in again.leftovers(4):
        assert pos >= last
        last = pos
        again.mark_done(pos)
    again.compact()
    assert not again.sealed_path.exists() and path.stat().st_size == 0
    again.close()


def test_a_torn_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "incident-journal.jsonl"
    good = [event_line(e) for e in make_events(3)]
    path.write_bytes(b"".join(good) + good[0][:50])
    j = Journal(path, threading.Lock())
    assert path.read_bytes() == b"".join(good)
    assert [e.event_id for chunk, _ in j.leftovers(10) for e in chunk] == [
        json.loads(x)["event_id"] for x in good
    ]
    j.close()


def test_full_disk_keeps_the_event_in_memory_and_the_journal_whole(
    db: SqlIncidentStore,
    tiny_fs: Path,  # noqa: F811
) -> None:
    j = tiny_fs / "incident-journal.jsonl"
    rec = recorder(lambda: db, tiny_fs / "spool.jsonl", journal_path=j, start=False)
    fill(tiny_fs, leave=4096)
    events = make_events(40)  # about 14 KB of lines: the disk is full after a dozen
    assert all(rec.submit(e) for e in events)  # the proxy never waits or fails on it
    st = rec.stats
    assert 0 < st.journal_failures < 40
    journaled = journal_ids(j)  # every line whole: no fragment of a failed write
    assert len(journaled) == 40 - st.journal_failures
    assert journaled == [e.event_id for e in events[: len(journaled)]]
    rec.start()
    assert rec.close(timeout=10)
    assert total(db) == 40  # the store answered: nothing lost
    assert rec.stats.written == 40


def test_the_line_format_is_to_dict_as_compact_json() -> None:
    events = make_events(3)
    odd = IncidentEvent.from_dict(dict(events[0].to_dict(), reason='Zoë "quoted" \\ ✓', grade="K"))
    for e in [*events, odd]:
        want = json.dumps(e.to_dict(), separators=(",", ":")).encode() + b"\n"
        assert event_line(e) == want
        assert IncidentEvent.from_dict(json.loads(event_line(e))) == e
