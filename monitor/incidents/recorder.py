"""Recorder: takes incident events from the event loop and writes them in batches on a thread.

``submit`` only puts the event on a bounded in-memory queue, so the proxy's event loop never
waits on disk or database. One writer thread takes batches (up to ``batch_size`` events or
``flush_interval`` seconds) and hands them to the store. When the store fails, the batch goes to a
local spool file (JSON lines, one :meth:`IncidentEvent.to_dict` object per line, fsync'd), and the
store is retried with exponential backoff; while the spool holds anything, new batches are
appended behind it, and once the store answers again the spool is replayed in order, then
truncated.

With a ``journal_path``, ``submit`` first appends the event to the journal (one ``os.write``,
see :mod:`monitor.incidents.journal`), so a process killed with events still in memory loses
none of them: the next start reads them back and writes them again. The journal is the
write-ahead log; the spool is the backlog of events that were due but the store could not take.

Why nothing is doubled: every event has a unique ``event_id`` and the store applies each id at
most once (its ``applied_events`` table, in the same transaction as the incident update). A crash
after the store committed a replayed chunk but before the spool was truncated, a commit whose
acknowledgement was lost, or a journal read back after a kill, only makes the store skip ids
already applied.

Counting: every event taken (``submitted``, plus ``recovered`` from an earlier run's journal)
ends up exactly once in ``written``, ``duplicates`` or ``dropped``; ``spooled`` counts events
durably in the spool (fsync'd), ``replayed`` those of them written later.

The store is opened as soon as the writer starts, and tried again with backoff while it cannot
be opened, events or not: a store that is broken at start-up is logged as an error and shows in
``write_failures`` and ``store_ok`` at once, not at the first incident. A store that refuses this
process's pseudonym key (the factory raises ``KeyMismatchError``, see
:mod:`monitor.incidents.store.keycheck`) is handled the same way, said once in full and shown in
``key_mismatch``: events wait in the spool, nothing is mixed into the store.

Several recorders (proxy workers, sensors, on one host or several) may write to one store at
once, each with its own journal and spool: the store's upserts and event-id claims make their
batches commute, so every incident's count is exact whatever the interleaving.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.incidents.events import IncidentEvent
from monitor.incidents.journal import Journal
from monitor.incidents.spool import Spool, event_line
from monitor.incidents.store.base import IncidentStore
from monitor.incidents.store.keycheck import KeyMismatchError

log = logging.getLogger(__name__)

# user:password@ in any URL-like text (a driver's error may quote its connection string)
_CREDENTIALS = re.compile(r"(\b[a-z][\w+.-]*://[^:/@\s]*:)[^@\s]*@", re.I)

# (event, logical position after it in the journal; 0 without a journal)
_Item = tuple[IncidentEvent, int]


def redact(text: str, limit: int = 300) -> str:
    """An error message fit for the log: first line, passwords in URLs masked, bounded."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _CREDENTIALS.sub(r"\1***@", first)[:limit]


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """A snapshot of the recorder's counters (all counts are events, since start)."""

    submitted: int  # accepted by submit()
    recovered: int  # read back from the journal an earlier run of this instance left
    written: int  # confirmed newly applied by the store, directly or from the spool
    duplicates: int  # handed to the store again but already applied (replay after a crash
    # or after a commit whose confirmation was lost: those count here, not in ``written``)
    dropped: int  # refused or lost: queue full, recorder closed, spool full or unwritable,
    # or a spool or journal line found unreadable when read back
    spooled: int  # appended to the spool file and fsync'd
    replayed: int  # newly applied from the spool (part of ``written``)
    write_failures: int  # failed store attempts: opening it, or a batch write (not events)
    spool_invalid: int  # unreadable spool lines skipped on replay
    queue_depth: int  # events waiting in memory
    spool_pending: int  # events waiting in the spool file
    journal_failures: int  # events that could not be journaled (kept in memory only)
    last_write_latency: float  # seconds taken by the last successful store call
    store_ok: bool  # the last store call (open or write) succeeded (or none failed yet)
    key_mismatch: bool = False  # the store refuses this process's pseudonym key (events wait
    # in the spool; see monitor.incidents.store.keycheck)


ZERO_STATS = RecorderStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, True)


class _StoreLink:
    """The store as the writer thread sees it: opened by the factory when first needed (and
    again after that failed), exponential backoff between failed attempts, and its health."""

    def __init__(
        self,
        factory: Callable[[], IncidentStore],
        name: str,
        spool: Path,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self.factory = factory
        self.name = name  # for log lines: no credentials (the caller masks them)
        self.spool = spool
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.store: IncidentStore | None = None
        self.backoff = retry_initial
        self.retry_at = 0.0  # monotonic time before which the store is not tried again
        self.failures = 0  # failed attempts (open or write)
        self.ok = True  # the last attempt succeeded (or none failed yet)
        self.latency = 0.0  # seconds taken by the last successful write
        self.key_mismatch = False  # the last attempt was refused for another pseudonym key

    def due(self) -> bool:
        return time.monotonic() >= self.retry_at

    def connect(self) -> bool:
        """Open the store unless it is open; on failure count, say and back off."""
        if self.store is not None:
            return True
        try:
            self.store = self.factory()
        except Exception as e:
            self.failed(e)
            return False
        self.succeeded()
        return True

    def write(self, batch: Sequence[IncidentEvent]) -> int | None:
        """How many events of ``batch`` the store newly applied; None when it failed."""
        t0 = time.perf_counter()
        if not self.connect():
            return None
        assert self.store is not None
        try:
            applied = self.store.write_batch(batch)
        except Exception as e:
            self.failed(e)
            return None
        self.latency = time.perf_counter() - t0
        self.succeeded()
        return applied

    def failed(self, e: Exception) -> None:
        self.failures += 1
        self.retry_at = time.monotonic() + self.backoff
        if isinstance(e, KeyMismatchError):
            # Not an outage: nothing is written until the keys agree. Said once, in full.
            if not self.key_mismatch:
                log.error("%s; incidents are kept in the spool %s", e, self.spool)
            self.key_mismatch = True
        elif self.ok or self.key_mismatch:
            self.key_mismatch = False
            log.error(
                "incident store unavailable: %s (%s: %s); incidents are kept in the spool %s "
                "and written when it answers",
                self.name,
                type(e).__name__,
                redact(str(e)),
                self.spool,
            )
        self.ok = False
        self.backoff = min(self.backoff * 2, self.retry_max)

    def succeeded(self) -> None:
        if not self.ok:
            log.warning("incident store is back: %s", self.name)
        self.ok = True
        self.key_mismatch = False
        self.backoff = self.retry_initial
        self.retry_at = 0.0

    def close(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except Exception:
                log.exception("closing the incident store failed")


class Recorder:
    """Queue incident events off the event loop and write them to a store on one thread.

    ``store_factory`` is called on the writer thread (again after it raised), so the store's
    connections belong to that thread and a store that is down at start-up is retried.
    ``store_name`` names the store in log lines (no credentials: the caller masks them).
    ``journal_path``: the write-ahead journal of this process (None: events wait in memory
    only, and a killed process loses them).
    """

    def __init__(
        self,
        store_factory: Callable[[], IncidentStore],
        spool_path: str | os.PathLike[str],
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        spool_max_bytes: int | None = 1 << 30,
        start: bool = True,
        journal_path: str | os.PathLike[str] | None = None,
        store_name: str = "(unnamed)",
        sync_interval: float = 0.1,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError(
                f"recorder: queue_size and batch_size must be >= 1 and flush_interval > 0, got "
                f"{queue_size}, {batch_size}, {flush_interval}"
            )
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        # Bounded on purpose: when the writer cannot keep up even by spooling to disk, an
        # unbounded overflow would grow until the proxy itself runs out of memory and stops
        # (taking every user's traffic with it). Refusing the event, counting it in ``dropped``
        # and returning False lets the caller log and alert on it instead. The writer drains
        # the queue to the spool while the store is down, so a full queue means the disk
        # too is too slow or full, and floods are mostly repeats that dedupe would fold anyway.
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()  # guards the counters submit() touches, and the journal
        self._journal: Journal | None = None
        if journal_path is not None:
            self._journal = Journal(Path(journal_path), self._lock)
        try:
            self._spool = Spool(Path(spool_path), spool_max_bytes)
        except BaseException:
            if self._journal is not None:
                self._journal.close()
            raise
        self._link = _StoreLink(store_factory, store_name, Path(spool_path), retry_initial,
                               retry_max)  # fmt: skip
        self._sync_interval = sync_interval
        self._sync_stop = threading.Event()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="incident-journal-sync", daemon=True
        )
        self._closed = False
        self._crashed = False
        self._stop = threading.Event()
        self._submitted = 0
        self._recovered = 0
        self._journal_failures = 0
        self._journal_logged = 0.0  # monotonic time of the last journal error logged
        self._dropped = 0
        self._written = 0
        self._duplicates = 0
        self._spooled = 0
        self._replayed = 0
        self._thread = threading.Thread(target=self._run, name="incident-writer", daemon=True)
        if start:
            self._thread.start()

    def start(self) -> None:
        """Start the writer thread (only needed with ``start=False``)."""
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    # -- event loop side ---------------------------------------------------------------------

    def submit(self, event: IncidentEvent) -> bool:
        """Journal and queue ``event`` without waiting for disk or store. False (and counted as
        dropped) when the queue is full or the recorder is closed."""
        line = event_line(event) if self._journal is not None else b""
        # Under the lock, so no event slips into the queue after close() let the writer finish,
        # and the journal's order is the queue's.
        with self._lock:
            if not self._closed and not self._queue.full():
                pos = self._journal_append(line) if self._journal is not None else 0
                self._queue.put_nowait((event, pos))  # only submit() puts: there is room
                self._submitted += 1
                return True
            self._dropped += 1
            return False

    def _journal_append(self, line: bytes) -> int:
        journal = self._journal
        assert journal is not None
        try:
            return journal.append(line)
        except OSError as e:
            # Still queued: written if the store answers before the process ends. Logged at
            # most once a minute: this runs on the event loop.
            self._journal_failures += 1
            now = time.monotonic()
            if now - self._journal_logged > 60 or self._journal_failures == 1:
                self._journal_logged = now
                log.error("incident journal %s: %s; events are held in memory only (%d so far)",
                          journal.path, e, self._journal_failures)  # fmt: skip
            return journal.end

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            submitted=self._submitted,
            recovered=self._recovered,
            written=self._written,
            duplicates=self._duplicates,
            dropped=self._dropped + self._spool.invalid + self._journal_invalid(),
            spooled=self._spooled,
            replayed=self._replayed,
            write_failures=self._link.failures,
            spool_invalid=self._spool.invalid,
            queue_depth=self._queue.qsize(),
            spool_pending=self._spool.pending,
            journal_failures=self._journal_failures,
            last_write_latency=self._link.latency,
            store_ok=self._link.ok,
            key_mismatch=self._link.key_mismatch,
        )

    def _journal_invalid(self) -> int:
        return self._journal.invalid if self._journal is not None else 0

    def close(self, timeout: float | None = 30.0) -> bool:
        """Stop taking events, write (or spool) everything queued, close the store.

        True when the writer finished within ``timeout``; False leaves it running in the
        background (a store that hangs), and events still in memory at process exit are lost.
        """
        with self._lock:
            self._closed = True
        self._stop.set()
        if not self._thread.is_alive():
            if self._thread.ident is None:  # never started: nothing was taken off the queue
                self._thread.start()
            else:
                return not self._crashed
        self._thread.join(timeout)
        return not self._thread.is_alive() and not self._crashed

    # -- writer thread -----------------------------------------------------------------------

    def _take(self) -> list[_Item]:
        """Up to batch_size events: wait for the first, then up to flush_interval for more."""
        stopping = self._stop.is_set()
        wait = self.flush_interval
        if self._spool.pending or self._link.store is None:  # a retry may come due meanwhile
            wait = min(wait, max(0.0, self._link.retry_at - time.monotonic()))
        try:
            first = self._queue.get_nowait() if stopping else self._queue.get(timeout=wait)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if self._stop.is_set() or left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _drain(self) -> list[_Item]:
        out: list[_Item] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        stop_failures: int | None = None  # failure count when shutdown began
        try:
            if self._journal is not None:
                self._sync_thread.start()
            self._link.connect()  # now, so that a broken store is said at start-up
            self._recover()
            while True:
                link = self._link
                if stop_failures is None and self._stop.is_set():
                    stop_failures = link.failures
                    link.retry_at = 0.0  # shutting down: one more attempt now, no backoff
                # A failure during shutdown: spool the rest rather than wait for the store.
                gave_up = stop_failures is not None and link.failures > stop_failures
                batch = self._take()
                retry_due = not gave_up and link.due()
                tried = False
                if batch:
                    tried = self._deliver([ev for ev, _ in batch], retry_due)
                    self._settled(batch[-1][1])
                if retry_due and not tried:
                    if self._spool.pending:
                        self._replay()
                    elif link.store is None and stop_failures is None:
                        link.connect()
                if stop_failures is not None and self._queue.empty():
                    if not self._spool.pending or link.failures > stop_failures:
                        break
        except BaseException:  # a bug here must not lose the queue silently: say so loudly
            self._crashed = True
            log.exception(
                "incident writer thread crashed; %d events left in memory (and in the journal)",
                self._queue.qsize(),
            )
            raise
        finally:
            self._finish()

    def _deliver(self, events: Sequence[IncidentEvent], retry_due: bool) -> bool:
        """Write events to the store, or to the spool when it is due or fails (dropped when
        the spool fails too). True when the store was tried."""
        if self._spool.pending or not retry_due:
            self._to_spool(events)  # keep order: behind what is already spooled
            return False
        if not self._write(events, replay=False):
            self._to_spool(events)
        return True

    def _settled(self, pos: int) -> None:
        """Everything taken up to journal position ``pos`` is in the store or spool, or was
        dropped: the journal may forget it."""
        if self._journal is not None:
            self._journal.mark_done(pos)
            try:
                self._journal.compact()
            except OSError as e:
                log.error("incident journal %s: %s", self._journal.path, e)

    def _recover(self) -> None:
        """Write again what an earlier run of this instance journaled but may not have written
        (killed, or a store that hung at shutdown); the store skips what it already has."""
        if self._journal is None or not self._journal.recover_end:
            return
        before = self._recovered
        for chunk, pos in self._journal.leftovers(self.batch_size):
            if chunk:
                self._recovered += len(chunk)
                self._deliver(chunk, self._link.due())
            self._settled(pos)
        log.warning(
            "incident journal %s: %d events of an earlier run read back (%d unreadable)",
            self._journal.path,
            self._recovered - before,
            self._journal.invalid,
        )

    def _sync_loop(self) -> None:
        journal = self._journal
        assert journal is not None
        while not self._sync_stop.wait(self._sync_interval):
            journal.sync()

    def _finish(self) -> None:
        self._link.close()
        self._spool.close()
        if self._journal is not None:
            self._sync_stop.set()
            if self._sync_thread.ident is not None:
                self._sync_thread.join()
            try:
                self._journal.close()
            except OSError as e:
                log.error("incident journal %s: %s", self._journal.path, e)

    def _write(self, batch: Sequence[IncidentEvent], *, replay: bool) -> bool:
        applied = self._link.write(batch)
        if applied is None:
            return False
        self._written += applied
        self._duplicates += len(batch) - applied
        if replay:
            self._replayed += applied
        return True

    def _to_spool(self, batch: Sequence[IncidentEvent]) -> None:
        try:
            self._spool.append(batch)  # all or nothing
        except OSError as e:
            # Nowhere left to keep them: count the loss so it shows on the dashboard.
            with self._lock:
                self._dropped += len(batch)
            log.error("incident spool %s: %s; %d events lost", self._spool.path, e, len(batch))
            return
        self._spooled += len(batch)

    def _replay(self) -> None:
        """Write the whole spool to the store, then truncate it; on failure keep it all."""
        try:
            for chunk in self._spool.read(self.batch_size):
                if not self._write(chunk, replay=True):
                    return
                # A long replay must not leave the queue to fill up and drop: move what
                # arrived meanwhile behind the spool (the reader reaches it before the end).
                arrived = self._drain()
                if arrived:
                    self._to_spool([ev for ev, _ in arrived])
                    self._settled(arrived[-1][1])
            self._spool.truncate()
        except OSError as e:
            # The spool file itself failed: keep it (replays are idempotent), try again later.
            # Counted as a failed write, which also ends a shutdown instead of retrying.
            log.error("incident spool %s: %s", self._spool.path, e)
            self._link.failures += 1
            self._link.retry_at = time.monotonic() + self._link.retry_max
            return
        log.info("incident spool %s replayed", self._spool.path)
