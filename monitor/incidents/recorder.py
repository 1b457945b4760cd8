"""Recorder: takes incident events from the event loop and writes them in batches on a thread.

``submit`` only puts the event on a bounded in-memory queue, so the proxy's event loop never
waits on disk or database. One writer thread takes batches (up to ``batch_size`` events or
``flush_interval`` seconds) and hands them to the store. When the store fails, the batch goes to a
local spool file (JSON lines, one :meth:`IncidentEvent.to_dict` object per line, fsync'd), and the
store is retried with exponential backoff; while the spool holds anything, new batches are
appended behind it, and once the store answers again the spool is replayed in order, then
truncated.

Why nothing is doubled: every event has a unique ``event_id`` and the store applies each id at
most once (its ``applied_events`` table, in the same transaction as the incident update). A crash
after the store committed a replayed chunk but before the spool was truncated, or a commit whose
acknowledgement was lost, only makes the next replay skip ids already applied.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.incidents.events import IncidentEvent
from monitor.incidents.spool import Spool
from monitor.incidents.store.base import IncidentStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """A snapshot of the recorder's counters (all counts are events, since start)."""

    submitted: int  # accepted by submit()
    written: int  # confirmed newly applied by the store, directly or from the spool
    duplicates: int  # handed to the store again but already applied (replay after a crash
    # or after a commit whose confirmation was lost: those count here, not in ``written``)
    dropped: int  # refused or lost: queue full, recorder closed, spool full or unwritable
    spooled: int  # appended to the spool file
    replayed: int  # newly applied from the spool (part of ``written``)
    write_failures: int  # failed store calls (batches, not events)
    spool_invalid: int  # unreadable spool lines skipped on replay
    queue_depth: int  # events waiting in memory
    spool_pending: int  # events waiting in the spool file
    last_write_latency: float  # seconds taken by the last successful store call
    store_ok: bool  # the last store call succeeded (or none failed yet)


class Recorder:
    """Queue incident events off the event loop and write them to a store on one thread.

    ``store_factory`` is called on the writer thread (again after it raised), so the store's
    connections belong to that thread and a store that is down at start-up is retried.
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
    ) -> None:
        if queue_size < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError(
                f"recorder: queue_size and batch_size must be >= 1 and flush_interval > 0, got "
                f"{queue_size}, {batch_size}, {flush_interval}"
            )
        self._factory = store_factory
        self._store: IncidentStore | None = None
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._backoff = retry_initial
        self._retry_at = 0.0  # monotonic time before which the store is not tried again
        # Bounded on purpose: when the writer cannot keep up even by spooling to disk, an
        # unbounded overflow would grow until the proxy itself runs out of memory and stops
        # (taking every user's traffic with it). Refusing the event, counting it in ``dropped``
        # and returning False lets the caller log and alert on it instead. The writer drains
        # the queue to the spool while the store is down, so a full queue means the disk
        # too is too slow or full, and floods are mostly repeats that dedupe would fold anyway.
        self._queue: queue.Queue[IncidentEvent] = queue.Queue(maxsize=queue_size)
        self._spool = Spool(Path(spool_path), spool_max_bytes)
        self._lock = threading.Lock()  # guards the counters submit() touches
        self._closed = False
        self._crashed = False
        self._stop = threading.Event()
        self._submitted = 0
        self._dropped = 0
        self._written = 0
        self._duplicates = 0
        self._spooled = 0
        self._replayed = 0
        self._failures = 0
        self._latency = 0.0
        self._store_ok = True
        self._thread = threading.Thread(target=self._run, name="incident-writer", daemon=True)
        if start:
            self._thread.start()

    def start(self) -> None:
        """Start the writer thread (only needed with ``start=False``)."""
        self._thread.start()

    # -- event loop side ---------------------------------------------------------------------

    def submit(self, event: IncidentEvent) -> bool:
        """Queue ``event`` without blocking. False (and counted as dropped) when the queue is
        full or the recorder is closed."""
        # Under the lock, so no event slips into the queue after close() let the writer finish.
        with self._lock:
            if not self._closed:
                try:
                    self._queue.put_nowait(event)
                except queue.Full:
                    pass
                else:
                    self._submitted += 1
                    return True
            self._dropped += 1
            return False

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            submitted=self._submitted,
            written=self._written,
            duplicates=self._duplicates,
            dropped=self._dropped,
            spooled=self._spooled,
            replayed=self._replayed,
            write_failures=self._failures,
            spool_invalid=self._spool.invalid,
            queue_depth=self._queue.qsize(),
            spool_pending=self._spool.pending,
            last_write_latency=self._latency,
            store_ok=self._store_ok,
        )

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

    def _take(self) -> list[IncidentEvent]:
        """Up to batch_size events: wait for the first, then up to flush_interval for more."""
        stopping = self._stop.is_set()
        wait = self.flush_interval
        if self._spool.pending:
            wait = min(wait, max(0.0, self._retry_at - time.monotonic()))
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

    def _drain(self) -> list[IncidentEvent]:
        out: list[IncidentEvent] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        stop_failures: int | None = None  # failure count when shutdown began
        try:
            while True:
                if stop_failures is None and self._stop.is_set():
                    stop_failures = self._failures
                    self._retry_at = 0.0  # shutting down: one more attempt now, no backoff
                # A failure during shutdown: spool the rest rather than wait for the store.
                gave_up = stop_failures is not None and self._failures > stop_failures
                batch = self._take()
                retry_due = not gave_up and time.monotonic() >= self._retry_at
                tried = False
                if batch:
                    if self._spool.pending or not retry_due:
                        self._to_spool(batch)  # keep order: behind what is already spooled
                    else:
                        tried = True
                        if not self._write(batch, replay=False):
                            self._to_spool(batch)
                if self._spool.pending and retry_due and not tried:
                    self._replay()
                if stop_failures is not None and self._queue.empty():
                    if not self._spool.pending or self._failures > stop_failures:
                        break
        except BaseException:  # a bug here must not lose the queue silently: say so loudly
            self._crashed = True
            log.exception(
                "incident writer thread crashed; %d events left in memory", self._queue.qsize()
            )
            raise
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                log.exception("closing the incident store failed")
        self._spool.close()

    def _write(self, batch: Sequence[IncidentEvent], *, replay: bool) -> bool:
        t0 = time.perf_counter()
        try:
            if self._store is None:
                self._store = self._factory()
            applied = self._store.write_batch(batch)
        except Exception as e:
            self._failures += 1
            self._retry_at = time.monotonic() + self._backoff
            if self._store_ok:
                log.warning(
                    "incident store failed (%s: %s); spooling to %s",
                    type(e).__name__,
                    e,
                    self._spool.path,
                )
            self._store_ok = False
            self._backoff = min(self._backoff * 2, self._retry_max)
            return False
        self._latency = time.perf_counter() - t0
        if not self._store_ok:
            log.warning("incident store is back")
        self._store_ok = True
        self._backoff = self._retry_initial
        self._retry_at = 0.0
        self._written += applied
        self._duplicates += len(batch) - applied
        if replay:
            self._replayed += applied
        return True

    def _to_spool(self, batch: Sequence[IncidentEvent]) -> None:
        try:
            self._spool.append(batch)
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
                    self._to_spool(arrived)
            self._spool.truncate()
        except OSError as e:
            # The spool file itself failed: keep it (replays are idempotent), try again later.
            # Counted as a failed write, which also ends a shutdown instead of retrying.
            log.error("incident spool %s: %s", self._spool.path, e)
            self._failures += 1
            self._retry_at = time.monotonic() + self._retry_max
            return
        log.info("incident spool %s replayed", self._spool.path)
