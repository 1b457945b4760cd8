"""Daily activity aggregates: counts held in memory by each proxy worker and sensor, flushed
to the store's ``daily_activity`` table now and then with an additive upsert.

A flush is one transaction of ``INSERT … ON CONFLICT DO UPDATE SET requests = requests +
excluded.requests`` (SQLite and PostgreSQL), so any number of writers merge exactly. Counts
that could not be written stay in memory for the next flush; at close, what is still unwritten
goes to a small pending file in the state directory, read back at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, delete
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from monitor.incidents.store.aggregateschema import DIMENSIONS, daily_activity
from monitor.incidents.store.sql import make_engine, write_transaction

log = logging.getLogger(__name__)

# (day, school, age_band, grade, platform, activity, decision, rule_id, source)
Key = tuple[date, str, str, str, str, str, str, str, str]
FLUSH_EVERY = 60.0  # seconds between flushes
_RETRIES = 3
_LIMITS = (None, 64, 16, 16, 64, 32, 16, 128, 16)  # column widths, so no row is refused


def upsert(dialect: str) -> Insert:
    """Add a row's counts to the row of the same key (insert it when there is none)."""
    ins = (sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert)(daily_activity)
    c = daily_activity.c
    return ins.on_conflict_do_update(
        index_elements=[c[d] for d in DIMENSIONS],
        set_={
            "requests": c.requests + ins.excluded.requests,
            "refused": c.refused + ins.excluded.refused,
        },
    )


def merge_counts(engine: Engine, counts: Mapping[Key, tuple[int, int]]) -> int:
    """Add ``counts`` (key → (requests, refused)) to the table in one transaction; returns the
    number of rows written. Keys are written in sorted order, so concurrent writers on
    PostgreSQL lock rows in one order (no deadlock between two flushes)."""
    if not counts:
        return 0
    rows = [
        {**dict(zip(DIMENSIONS, k, strict=True)), "requests": n, "refused": r}
        for k, (n, r) in sorted(counts.items())
    ]
    stmt = upsert(engine.dialect.name)
    for attempt in range(_RETRIES):
        try:
            with write_transaction(engine) as conn:
                conn.execute(stmt, rows)
            return len(rows)
        except DBAPIError as e:
            locked = "locked" in str(e.orig) or getattr(e.orig, "sqlstate", "") in (
                "40P01",
                "40001",
            )
            if attempt + 1 == _RETRIES or not locked:
                raise
            time.sleep(0.05 * (attempt + 1))
    return 0  # pragma: no cover - the loop returns or raises


def purge_aggregates(engine: Engine, before: date) -> int:
    """Delete the rows of days before ``before``; returns how many."""
    with write_transaction(engine) as conn:
        res = conn.execute(delete(daily_activity).where(daily_activity.c.day < before))
        return int(res.rowcount)


def _clip(key: tuple[Any, ...]) -> Key:
    return tuple(  # type: ignore[return-value]
        v if n is None else str(v)[:n] for v, n in zip(key, _LIMITS, strict=True)
    )


class ActivityCounts:
    """The counts of one process, flushed to the store every ``flush_every`` seconds by a
    thread of its own (``start``) and at ``close``. :meth:`add` is cheap and never blocks on
    the store: safe on the proxy's event loop.

    ``tz``: the district's time zone, which decides a request's day. ``pending``: the file
    where counts the store did not take at close wait for the next start (None: kept in
    memory only)."""

    def __init__(
        self,
        url: str,
        tz: tzinfo,
        *,
        pending: Path | None = None,
        flush_every: float = FLUSH_EVERY,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.tz = tz
        self.pending = pending
        self.flush_every = flush_every
        self._timeout = timeout
        self._engine: Engine | None = None
        self._counts: dict[Key, list[int]] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The day of the last second seen: most requests fall in the same second as the one
        # before, and converting a timestamp to a local date is the costly part of add().
        self._day_cache: tuple[int, date] = (-1, date.min)
        self.flushed_rows = 0
        self.failures = 0
        if pending is not None:
            self._read_pending(pending)

    # -- counting ---------------------------------------------------------------------------

    def day_of(self, when: float) -> date:
        second = int(when)
        cached = self._day_cache
        if cached[0] == second:
            return cached[1]
        day = datetime.fromtimestamp(when, self.tz).date()
        self._day_cache = (second, day)
        return day

    def add(
        self,
        when: float,
        school: str,
        age_band: str,
        grade: str,
        platform: str,
        activity: str,
        decision: str,
        rule_id: str,
        source: str,
        *,
        refused: bool = False,
    ) -> None:
        """Count one request (and one refused connection when ``refused``)."""
        key: Key = (
            self.day_of(when), school, age_band, grade, platform, activity, decision, rule_id,
            source,
        )  # fmt: skip
        with self._lock:
            c = self._counts.get(key)
            if c is None:
                self._counts[key] = [1, 1 if refused else 0]
            else:
                c[0] += 1
                if refused:
                    c[1] += 1

    def snapshot(self) -> dict[Key, tuple[int, int]]:
        """The counts not yet flushed (a copy)."""
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self._counts.items()}

    def _take(self) -> dict[Key, tuple[int, int]]:
        with self._lock:
            taken, self._counts = self._counts, {}
        return {_clip(k): (v[0], v[1]) for k, v in taken.items()}

    def _put_back(self, counts: Mapping[Key, tuple[int, int]]) -> None:
        with self._lock:
            for k, (n, r) in counts.items():
                c = self._counts.setdefault(k, [0, 0])
                c[0] += n
                c[1] += r

    # -- flushing -----------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write what was counted since the last flush; False (counts kept) when the store
        did not take it."""
        with self._flush_lock:
            counts = self._take()
            if not counts:
                return True
            try:
                if self._engine is None:
                    self._engine = make_engine(self.url, self._timeout)
                self.flushed_rows += merge_counts(self._engine, counts)
            except (SQLAlchemyError, OSError, ValueError) as e:
                self.failures += 1
                self._put_back(counts)
                log.warning("monitor: activity counts not written (kept for later): %s", e)
                return False
            return True

    def start(self) -> None:
        """Flush every ``flush_every`` seconds on a daemon thread until :meth:`close`."""
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(self.flush_every):
                self.flush()

        self._thread = threading.Thread(target=run, name="activity-counts", daemon=True)
        self._thread.start()

    def close(self) -> bool:
        """Stop the thread and flush; what the store did not take goes to the pending file.
        Returns whether everything reached the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 5)
            self._thread = None
        ok = self.flush()
        if not ok and self.pending is not None:
            self._write_pending(self.pending, self._take())
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        return ok

    # -- the pending file ---------------------------------------------------------------------

    def _write_pending(self, path: Path, counts: Mapping[Key, tuple[int, int]]) -> None:
        rows = [[k[0].isoformat(), *k[1:], n, r] for k, (n, r) in counts.items()]
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(rows), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as e:
            log.error("monitor: activity counts lost, %s not writable: %s", path, e)

    def _read_pending(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning("monitor: pending activity counts in %s unreadable: %s", path, e)
            return
        self._put_back(dict(_pending_rows(rows)))
        path.unlink(missing_ok=True)


def _pending_rows(rows: Iterable[Any]) -> Iterable[tuple[Key, tuple[int, int]]]:
    for row in rows:
        try:
            day = date.fromisoformat(row[0])
            key = (day, *(str(v) for v in row[1:9]))
            yield _clip(key), (int(row[9]), int(row[10]))
        except (TypeError, ValueError, IndexError):
            log.warning("monitor: a pending activity count row was malformed and skipped")
