"""Incident store on SQLAlchemy 2 Core, for SQLite (embedded default) and PostgreSQL.

Deduplication is one atomic statement per batch: every bucket (epoch-aligned window start +
dedupe key) is an ``INSERT … ON CONFLICT (window_start, dedupe_key) DO UPDATE`` that adds the
count, widens first/last seen and keeps the higher severity, so several writer processes on one
PostgreSQL agree without locks of their own. Each batch is one transaction that first claims its
event ids in ``applied_events`` and folds only the events it claimed: a batch replayed from the
recorder's spool after a crash, or retried after an ambiguous commit, counts once.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    case,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from monitor.incidents.events import (
    DEFAULT_WINDOW,
    STATUSES,
    Bucket,
    Incident,
    IncidentEvent,
    aggregate,
    event_id_floor,
)
from monitor.incidents.store.base import IncidentFilter
from monitor.incidents.store.keycheck import claim_key
from monitor.incidents.store.outboxschema import OutboxFilter, enqueue
from monitor.incidents.store.schema import applied_events, create_schema, incidents

log = logging.getLogger(__name__)

# SQLite upsert (INSERT … ON CONFLICT DO UPDATE) arrived in 3.24.
MIN_SQLITE = (3, 24, 0)
# PostgreSQL: deadlock_detected, serialization_failure. SQLite: "database is locked".
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_WRITE_RETRIES = 3
_SEVERITY_ORDER = {"low": 1, "medium": 2, "high": 3}


def normalise_url(url: str) -> URL:
    """Parse a store URL; plain ``postgresql://`` means psycopg 3 (psycopg2 is not used)."""
    try:
        u = make_url(url)
    except Exception as e:  # ArgumentError: not a URL at all
        raise ValueError(f"incident store URL {url!r} is not a database URL") from e
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"incident store URL {u.render_as_string(hide_password=True)!r}: "
            "only sqlite:///path and postgresql+psycopg://… are supported"
        )
    return u


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: the store needs >= 3.24")
    # hide_parameters: errors and logs show the SQL but not the incident values in it.
    engine = create_engine(url, connect_args={"timeout": busy_timeout}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below): sqlite3's legacy mode defers it and would
        # take the write lock mid-transaction, where "database is locked" cannot be waited out.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers (web app, CLI) never block the writer
        cur.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # Checkpoint every ~40 MB of WAL rather than 4 MB: pages that several batches touch
        # are copied back once (about +10% batch throughput), and a 32 MB page cache keeps
        # the upper index levels of a million-incident store in memory.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute("PRAGMA cache_size=-32768")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writes take the write lock up front (BEGIN IMMEDIATE), so the one writer waits for
        # the lock at BEGIN (busy_timeout) instead of failing on a lock upgrade.
        immediate = conn.get_execution_options().get("monitor_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL, connect_timeout: float) -> Engine:
    # pre_ping: after the server went away and came back, pooled connections are replaced
    # instead of failing the first batch again.
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"connect_timeout": max(1, int(connect_timeout))},
    )


def make_engine(url: str | URL, timeout: float = 10.0) -> Engine:
    """An engine on a store URL as every writer opens it: SQLite in WAL mode with a busy
    timeout of ``timeout`` seconds (writers take the write lock at BEGIN and wait for it
    there); PostgreSQL with that connect timeout and connections checked before use."""
    u = normalise_url(url) if isinstance(url, str) else url
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, timeout)
    return _postgres_engine(u, timeout)


def _rank(col: ColumnElement[Any]) -> ColumnElement[int]:
    return case(_SEVERITY_ORDER, value=col, else_=0)


def _upsert(dialect: str) -> Insert:
    """INSERT one bucket, or merge it into the incident of the same dedupe key and window."""
    ins = (sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert)(incidents)
    ex = ins.excluded
    c = incidents.c
    return ins.on_conflict_do_update(
        index_elements=[c.window_start, c.dedupe_key],
        set_={
            "count": c["count"] + ex["count"],
            "first_seen": case((ex.first_seen < c.first_seen, ex.first_seen), else_=c.first_seen),
            "last_seen": case((ex.last_seen > c.last_seen, ex.last_seen), else_=c.last_seen),
            "severity": case(
                (_rank(ex.severity) > _rank(c.severity), ex.severity), else_=c.severity
            ),
        },
    )


def _claim_returning() -> Insert:
    """PostgreSQL: INSERT event ids, returning only those not applied before. Atomic under
    concurrency: a second writer inserting the same id waits for the first one's commit."""
    ins = pg_dialect.insert(applied_events)
    return ins.on_conflict_do_nothing(index_elements=[applied_events.c.event_id]).returning(
        applied_events.c.event_id
    )


_SQLITE_IN_CHUNK = 500  # stays far below SQLite's bound-variable limit


def _claim_sqlite(conn: Connection, ids: Sequence[str]) -> set[str]:
    """SQLite: the same as _claim_returning, as a lookup then a plain insert, which is safe
    because the transaction holds the database's one write lock (BEGIN IMMEDIATE); and
    several times faster than per-row RETURNING."""
    seen: set[str] = set()
    col = applied_events.c.event_id
    for i in range(0, len(ids), _SQLITE_IN_CHUNK):
        chunk = ids[i : i + _SQLITE_IN_CHUNK]
        seen.update(conn.execute(select(col).where(col.in_(chunk))).scalars())
    new = [i for i in ids if i not in seen]
    if new:
        conn.exec_driver_sql(
            "INSERT INTO applied_events (event_id) VALUES (?)", [(i,) for i in new]
        )
    return set(new)


_BUCKET_COLUMNS = (
    "dedupe_key", "window_start", "first_seen", "last_seen", "count", "school", "grade",
    "age_band", "role", "person", "platform", "activity", "decision", "rule_id", "reason", "host",
    "source", "severity", "status", "notes",
)  # fmt: skip


def _bucket_row(b: Bucket) -> dict[str, Any]:
    ev = b.first
    return {
        "dedupe_key": b.dedupe_key,
        "window_start": b.window_start,
        "first_seen": b.first_seen,
        "last_seen": b.last_seen,
        "count": b.count,
        "school": ev.school,
        "grade": ev.grade,
        "age_band": ev.age_band,
        "role": ev.role,
        "person": ev.person,
        "platform": ev.platform,
        "activity": ev.activity,
        "decision": ev.action,
        "rule_id": ev.rule_id,
        "reason": ev.reason,
        "host": ev.host,
        "source": ev.source,
        "severity": b.severity,
        "status": "new",
        "notes": "",
    }


class _SqliteFastUpsert:
    """The bucket upsert compiled once for SQLite and run with plain tuples through the
    driver's executemany. SQLAlchemy's per-row parameter processing was over a third of the
    batch write time; the SQL is still the one SQLAlchemy compiles from the Core statement."""

    def __init__(self, stmt: Insert, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(_BUCKET_COLUMNS))
        order = tuple(compiled.positiontup or ())
        n = len(_BUCKET_COLUMNS)
        if not compiled.positional or order[:n] != _BUCKET_COLUMNS:
            raise RuntimeError(f"unexpected SQLite parameter order {order}")
        self.sql = str(compiled)
        # The statement's own constants (severity ranks in the CASE) follow the VALUES.
        values = compiled.construct_params({c: None for c in _BUCKET_COLUMNS})
        self.constants = tuple(values[name] for name in order[n:])

    def run(self, conn: Connection, buckets: Sequence[Bucket]) -> None:
        k = self.constants
        starts: dict[datetime, str] = {}
        conn.exec_driver_sql(self.sql, [_bucket_values(b, starts) + k for b in buckets])


def _sqlite_time(t: datetime) -> str:
    # UtcDateTime's SQLite text form; every time here is already UTC (IncidentEvent, aggregate).
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


def _bucket_values(b: Bucket, starts: dict[datetime, str]) -> tuple[Any, ...]:
    """A bucket as SQLite parameters, in _BUCKET_COLUMNS order."""
    ev = b.first
    start = starts.get(b.window_start)
    if start is None:
        start = starts[b.window_start] = _sqlite_time(b.window_start)
    first = _sqlite_time(b.first_seen)
    last = first if b.last_seen == b.first_seen else _sqlite_time(b.last_seen)
    return (
        b.dedupe_key, start, first, last, b.count, ev.school, ev.grade, ev.age_band, ev.role,
        ev.person, ev.platform, ev.activity, ev.action, ev.rule_id, ev.reason, ev.host,
        ev.source, b.severity, "new", "",
    )  # fmt: skip


def _incident(row: Any) -> Incident:
    m = row._mapping
    return Incident(
        id=m["id"],
        first_seen=m["first_seen"],
        last_seen=m["last_seen"],
        count=m["count"],
        school=m["school"],
        grade=m["grade"],
        age_band=m["age_band"],
        role=m["role"],
        person=m["person"],
        platform=m["platform"],
        activity=m["activity"],
        decision=m["decision"],
        rule_id=m["rule_id"],
        reason=m["reason"],
        host=m["host"],
        source=m["source"],
        severity=m["severity"],
        status=m["status"],
        assignee=m["assignee"],
        notes=m["notes"],
        window_start=m["window_start"],
        dedupe_key=m["dedupe_key"],
    )


def _where(filters: IncidentFilter | None) -> list[ColumnElement[bool]]:
    if filters is None:
        return []
    c = incidents.c
    out: list[ColumnElement[bool]] = []
    for name in ("school", "platform", "status", "severity", "person", "rule_id"):
        value = getattr(filters, name)
        if value is not None:
            out.append(c[name] == value)
    if filters.schools is not None:
        out.append(c.school.in_(filters.schools))
    if filters.since is not None:
        out.append(c.last_seen >= filters.since)
    if filters.until is not None:
        out.append(c.last_seen < filters.until)
    return out


def filter_conditions(filters: IncidentFilter | None) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters`` on the incidents table (bound parameters only)."""
    return _where(filters)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction on a store engine (SQLite: BEGIN IMMEDIATE, so a writer waits for
    the lock up front instead of failing on a lock upgrade)."""
    with engine.connect() as conn:
        conn.execution_options(monitor_write=True)
        with conn.begin():
            yield conn


def _retryable(e: DBAPIError) -> bool:
    if getattr(e.orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    return isinstance(e.orig, sqlite3.OperationalError) and "locked" in str(e.orig)


class SqlIncidentStore:
    """An :class:`~monitor.incidents.store.base.IncidentStore` on SQLite or PostgreSQL.

    ``window``: dedupe window; every writer on one database must use the same value (it
    defines the buckets). ``applied_retention``: applied event ids are remembered until the
    events are this old (by creation time), i.e. how late a spool replay may come and still be
    sure not to double. ``clock`` is only used to schedule that pruning. ``key_fingerprint``:
    this writer's pseudonym key fingerprint, claimed at open (see
    :mod:`monitor.incidents.store.keycheck`: KeyMismatchError when the store remembers
    another; ``key_source`` names the key's file or variable in its message). ``outbox``: new
    incidents it selects get a notification outbox row in their own transaction (see
    :mod:`monitor.incidents.store.outboxschema`). ``event_sink``: called after each commit
    with the events newly applied (the incident event log); its errors are logged, not raised.
    """

    def __init__(
        self,
        url: str,
        *,
        window: timedelta = DEFAULT_WINDOW,
        create: bool = True,
        applied_retention: timedelta = timedelta(days=7),
        prune_every: timedelta = timedelta(hours=1),
        timeout: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        key_fingerprint: str | None = None,
        key_source: str = "",
        outbox: OutboxFilter | None = None,
        event_sink: Callable[[Sequence[IncidentEvent]], None] | None = None,
    ) -> None:
        if window <= timedelta(0):
            raise ValueError(f"dedupe window must be positive, got {window}")
        self.url = normalise_url(url)
        self.window = window
        self.applied_retention = applied_retention
        self._prune_every = prune_every
        self._clock = clock
        self._outbox = outbox if outbox is not None and outbox.severities else None
        self._event_sink = event_sink
        self._next_prune: datetime | None = None
        self.dialect = self.url.get_backend_name()
        self.engine = make_engine(self.url, timeout)
        self._upsert = _upsert(self.dialect)
        self._fast_upsert = (
            _SqliteFastUpsert(self._upsert, self.engine) if self.dialect == "sqlite" else None
        )
        self._claim_pg = _claim_returning()
        # One writer per store (SQLite allows one at a time anyway; on PostgreSQL this keeps a
        # store's batches in order). Other processes are handled by the database.
        self._write_lock = threading.Lock()
        if not create and self.dialect == "sqlite":
            db = self.url.database or ""
            if db and db != ":memory:" and not db.startswith("file:") and not Path(db).exists():
                self.engine.dispose()
                raise ValueError(f"incident store: no SQLite database at {db}")
        try:
            if create:
                create_schema(self.engine)
            elif not inspect(self.engine).has_table(incidents.name):
                raise ValueError(
                    f"{self.url.render_as_string(hide_password=True)}: no incident tables "
                    "(create them with `monitor incidents init`)"
                )
            if key_fingerprint is not None:
                name = self.url.render_as_string(hide_password=True)
                claim_key(self.engine, key_fingerprint, key_source, name)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlIncidentStore({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(monitor_write=True)
            with conn.begin():
                yield conn

    def write_batch(self, events: Sequence[IncidentEvent]) -> int:
        """Fold ``events`` into incidents in one transaction; returns how many were new."""
        by_id: dict[str, IncidentEvent] = {}
        for ev in events:
            by_id.setdefault(ev.event_id, ev)
        if not by_id:
            return 0
        # Sorted ids and sorted buckets: concurrent writers lock rows in one order.
        ids = sorted(by_id)
        fresh: builtins.list[IncidentEvent] = []
        with self._write_lock:
            for attempt in range(_WRITE_RETRIES):
                try:
                    with self._write() as conn:
                        fresh = [by_id[i] for i in self._claim(conn, ids)]
                        buckets = aggregate(fresh, self.window)
                        if buckets:
                            if self._fast_upsert is not None:
                                self._fast_upsert.run(conn, buckets)
                            else:
                                conn.execute(self._upsert, [_bucket_row(b) for b in buckets])
                            if self._outbox is not None:
                                enqueue(conn, buckets, self._outbox, self._clock())
                    break
                except DBAPIError as e:
                    if attempt + 1 == _WRITE_RETRIES or not _retryable(e):
                        raise
                    time.sleep(0.05 * (attempt + 1))
            self._maybe_prune()
        if fresh and self._event_sink is not None:
            try:
                self._event_sink(fresh)
            except Exception:  # the incidents are committed; the log is a copy of them
                log.exception("incident event log: %d events not logged", len(fresh))
        return len(fresh)

    def _claim(self, conn: Connection, ids: Sequence[str]) -> Iterable[str]:
        if self.dialect == "sqlite":
            return sorted(_claim_sqlite(conn, ids))
        rows = [{"event_id": i} for i in ids]
        return sorted(conn.execute(self._claim_pg, rows).scalars())

    def _maybe_prune(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self._prune_every
        try:
            self.prune_applied(now - self.applied_retention)
        except DBAPIError as e:
            # The batch is committed; failing it now would only make the recorder spool and
            # replay it. Pruning is retried at the next interval.
            log.warning("pruning applied event ids failed: %s", e)

    def prune_applied(self, before: datetime) -> int:
        """Forget the ids of events created before ``before``; returns how many were removed.

        A spool replayed after that (the store down for longer than ``applied_retention``)
        is still applied, but could double events if the process also crashed between a
        commit and the spool's truncation."""
        col = applied_events.c.event_id
        with self._write() as conn:
            res = conn.execute(delete(applied_events).where(col < event_id_floor(before)))
            return int(res.rowcount)

    def list(
        self, filters: IncidentFilter | None = None, limit: int = 50, offset: int = 0
    ) -> builtins.list[Incident]:
        """Incidents matching ``filters``, newest ``last_seen`` first (ties: newest id)."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {limit}, {offset}")
        q = (
            select(incidents)
            .where(*_where(filters))
            .order_by(incidents.c.last_seen.desc(), incidents.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [_incident(r) for r in conn.execute(q)]

    def get(self, id: int) -> Incident | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == id)).first()
        return None if row is None else _incident(row)

    def count(self, filters: IncidentFilter | None = None, cap: int | None = None) -> int:
        """How many incidents match ``filters``; with ``cap``, counting stops at ``cap``
        (a list page can say "10,000+" without walking a million rows)."""
        if cap is None:
            q = select(func.count()).select_from(incidents).where(*_where(filters))
        else:
            inner = select(incidents.c.id).where(*_where(filters)).limit(cap).subquery()
            q = select(func.count()).select_from(inner)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def applied_count(self) -> int:
        """How many event ids are remembered as applied."""
        with self.engine.connect() as conn:
            q = select(func.count()).select_from(applied_events)
            return int(conn.execute(q).scalar_one())

    def update(
        self,
        id: int,
        *,
        status: str | None = None,
        assignee: str | None = None,
        notes: str | None = None,
    ) -> Incident | None:
        """Set review fields (None: leave as is); returns the updated incident, None if absent."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"incident status {status!r}: expected one of {', '.join(STATUSES)}")
        values = {
            k: v
            for k, v in (("status", status), ("assignee", assignee), ("notes", notes))
            if v is not None
        }
        if values:
            with self._write() as conn:
                conn.execute(update(incidents).where(incidents.c.id == id).values(**values))
        return self.get(id)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, **options: Any) -> SqlIncidentStore:
    """Open (and by default create) the incident store at ``url``; see SqlIncidentStore."""
    return SqlIncidentStore(url, **options)
