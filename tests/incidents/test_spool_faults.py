"""The spool when the disk fills up: a write that fails part-way must leave the file as it was,
and every event must be counted exactly once (written, duplicate or dropped).

Two kinds of fault: a real tmpfs of 64 KiB filled to the brim (the kernel's own short write
and ENOSPC), and a file object that writes half of what it is given and then raises ENOSPC.
The store is the real SQLite store behind a switch (FlakyStore)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_recorder import FlakyStore, make_events, recorder, total

from monitor.incidents.events import IncidentEvent
from monitor.incidents.recorder import Recorder
from monitor.incidents.spool import Spool
from monitor.incidents.store import SqlIncidentStore, open_store
from monitor.incidents.store.schema import applied_events

TMPFS_BYTES = 64 * 1024


class HalfThenNoSpace:
    """Wraps the spool's file object: the ``fail_on``-th write() puts half of its bytes in
    the file, then raises ENOSPC, as a filling disk does. Remembers what it refused."""

    def __init__(self, f: Any, fail_on: int = 1) -> None:
        self.f = f
        self.calls = 0
        self.fail_on = fail_on
        self.refused: list[bytes] = []

    def write(self, data: Any) -> int:
        self.calls += 1
        data = bytes(data)
        if self.calls == self.fail_on:
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            self.refused.append(data)
            raise OSError(errno.ENOSPC, "No space left on device (test)")
        return int(self.f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def ids_of(data: bytes) -> set[str]:
    """Event ids of the complete JSON lines in ``data``."""
    out = set()
    for line in data.split(b"\n"):
        try:
            out.add(json.loads(line)["event_id"])
        except ValueError:
            pass  # a fragment
    return out


def applied_ids(store: SqlIncidentStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(applied_events.c.event_id)).scalars())


def spy_on_drops(rec: Recorder) -> list[IncidentEvent]:
    """Record the events of every spool append that raised (the recorder drops those)."""
    dropped: list[IncidentEvent] = []
    spool = rec._spool
    original = spool.append

    def append(events: Sequence[IncidentEvent]) -> None:
        try:
            original(events)
        except OSError:
            dropped.extend(events)
            raise

    spool.append = append  # type: ignore[method-assign]
    return dropped


def check_exactly_once(
    rec: Recorder,
    db: SqlIncidentStore,
    submitted: list[IncidentEvent],
    dropped: list[IncidentEvent],
) -> None:
    st = rec.stats
    sub = {e.event_id for e in submitted}
    gone = {e.event_id for e in dropped}
    stored = applied_ids(db)
    assert st.submitted == len(submitted)
    assert st.written + st.duplicates + st.dropped == st.submitted
    assert st.duplicates == 0
    assert st.dropped == len(gone)  # counted once each
    assert len(stored) == len(set(stored)) == st.written  # nothing written twice
    assert total(db) == st.written
    assert set(stored) == sub - gone  # no dropped event written, every other one written
    assert st.spooled == st.replayed == st.written  # spooled means durably in the spool


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqlIncidentStore]:
    s = open_store(f"sqlite:///{tmp_path / 'incidents.db'}")
    yield s
    s.close()


def test_a_half_written_append_is_cut_back(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    a, b, c = make_events(5), make_events(6, start=5), make_events(5, start=11)
    s = Spool(path)
    s.append(a)
    good = path.stat().st_size
    s._f = HalfThenNoSpace(s._f)  # type: ignore[assignment]
    with pytest.raises(OSError) as e:
        s.append(b)
    assert e.value.errno == errno.ENOSPC
    assert path.stat().st_size == good  # the fragment is gone
    assert s.pending == 5
    s.append(c)
    assert [e for chunk in s.read(100) for e in chunk] == a + c
    s.close()
    lines = path.read_bytes().splitlines()
    assert [json.loads(x)["event_id"] for x in lines] == [e.event_id for e in a + c]
    again = Spool(path)
    assert again.pending == 10 and again.invalid == 0
    assert [e for chunk in again.read(100) for e in chunk] == a + c
    again.close()


def test_recorder_counts_a_failed_append_exactly_once(db: SqlIncidentStore, tmp_path: Path) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    spool = tmp_path / "spool" / "incidents.jsonl"
    # long backoff: nothing is retried until close() tries once more
    rec = recorder(lambda: flaky, spool, batch_size=10, retry_initial=30, retry_max=60,
                   flush_interval=60, start=False)  # fmt: skip
    wrapper = HalfThenNoSpace(rec._spool._f, fail_on=2)
    rec._spool._f = wrapper  # type: ignore[assignment]
    dropped = spy_on_drops(rec)
    events = make_events(30)
    assert all(rec.submit(e) for e in events)
    rec.start()
    flaky.down.clear()
    assert rec.close(timeout=10)
    assert wrapper.calls >= 3
    assert ids_of(wrapper.refused[0]) == {e.event_id for e in dropped}
    assert len(dropped) == 10
    check_exactly_once(rec, db, events, dropped)
    assert spool.stat().st_size == 0


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs of 64 KiB (root only), unmounted even when the test fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(fs: Path, leave: int) -> Path:
    """Fill ``fs`` to the brim, then give back ``leave`` bytes."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 4096
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def test_tmpfs_filled_to_the_brim(db: SqlIncidentStore, tiny_fs: Path) -> None:
    flaky = FlakyStore(db)
    flaky.down.set()
    spool = tiny_fs / "incident-spool.jsonl"
    rec = recorder(lambda: flaky, spool, batch_size=7, retry_initial=30, retry_max=60,
                   flush_interval=60, start=False)  # fmt: skip
    dropped = spy_on_drops(rec)
    fill(tiny_fs, leave=3 * 4096)  # three pages: the fourth or fifth batch meets the end
    events = make_events(120)
    assert all(rec.submit(e) for e in events)
    rec.start()
    # every batch is either spooled or dropped; the disk is full well before the end
    deadline_hit = rec.close(timeout=20)
    assert deadline_hit
    st = rec.stats
    assert st.spooled + st.dropped == 120
    assert st.dropped > 0 and st.spooled > 0
    assert len(spool.read_bytes().splitlines()) == st.spooled  # only whole batches remain
    # space is back and the store answers: a new recorder replays the spool
    subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_fs)], check=True)
    flaky.down.clear()
    rec2 = recorder(lambda: flaky, spool)
    assert rec2.close(timeout=10)
    assert rec2.stats.spool_invalid == 0
    stored = applied_ids(db)
    gone = {e.event_id for e in dropped}
    assert len(gone) == st.dropped
    assert len(stored) == len(set(stored)) == rec2.stats.written == st.spooled
    assert total(db) == st.spooled
    assert set(stored) == {e.event_id for e in events} - gone


def test_an_unreadable_line_read_back_counts_as_dropped(
    db: SqlIncidentStore, tmp_path: Path
) -> None:
    events = make_events(3)
    spool = tmp_path / "spool.jsonl"
    good = [json.dumps(e.to_dict()) for e in events]
    spool.write_text(good[0] + "\n" + '{"not": "an event"}\n' + good[1] + "\n" + good[2] + "\n")
    rec = recorder(lambda: db, spool)
    assert rec.close(timeout=10)
    st = rec.stats
    # an event that was spooled and cannot be read back is lost: counted, not forgotten
    assert (st.written, st.dropped, st.spool_invalid) == (3, 1, 1)
    assert total(db) == 3
