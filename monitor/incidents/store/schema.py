"""Schema of the incident store as SQLAlchemy MetaData (also the target of Alembic migrations).

Works on SQLite (>= 3.24, for upserts) and PostgreSQL. Times are stored as UTC: naive text on
SQLite (fixed width, so text comparison is time order), ``timestamptz`` on PostgreSQL; both come
back as aware UTC datetimes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from monitor.incidents.events import STATUSES

# The review app's tables (accounts, sessions, record of access), and those every writer of a
# district shares (teacher overrides, the pseudonym key's fingerprint), join the same MetaData:
# with this import, ``metadata`` holds every table of the store.
from monitor.incidents.store import (  # noqa: F401
    accessschema,
    aggregateschema,
    outboxschema,
    sharedschema,
)
from monitor.incidents.store.columns import UtcDateTime, metadata, one_of
from monitor.model import SEVERITIES

SCHEMA_VERSION = 1


incidents = Table(
    "incidents",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    # Dedupe bucket: hash of person + platform + rule, and the epoch-aligned window start.
    Column("dedupe_key", String(32), nullable=False),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("count", Integer(), nullable=False),
    Column("school", String(64), nullable=False),
    Column("grade", String(16), nullable=False),
    Column("age_band", String(16), nullable=False),
    Column("role", String(32), nullable=False),
    Column("person", String(32), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("activity", String(32), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("host", String(253), nullable=False),
    Column("source", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("assignee", String(128), nullable=True),
    Column("notes", Text(), nullable=False, server_default=""),
    # window_start first: new incidents land at the end of this index (the current window)
    # instead of at random places, which keeps each batch's write set small.
    UniqueConstraint("window_start", "dedupe_key"),
    CheckConstraint("count >= 1", name="count_positive"),
    CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
    CheckConstraint(one_of("status", STATUSES), name="status"),
    # The list view pages by last_seen (newest first), alone or after one equality filter.
    # Each of these has a low-cardinality prefix plus time, so a batch's inserts land in few
    # pages. Person (a counselor's per-student view) is the exception: pseudonyms are random,
    # so its index touches a page per new incident; it is kept narrow (person alone; one
    # person's incidents are few and sort quickly), which costs ~15% of batch throughput
    # where (person, last_seen, id) cost ~25% (bench/bench_store.py).
    Index(None, "last_seen", "id"),
    Index(None, "school", "last_seen", "id"),
    Index(None, "platform", "last_seen", "id"),
    Index(None, "severity", "last_seen", "id"),
    Index(None, "status", "last_seen", "id"),
    Index(None, "person"),
)

# Event ids already folded into incidents: a replayed spool (or a batch retried after an
# ambiguous commit) skips them, so no event is counted twice. Ids start with their creation
# time (see monitor.incidents.events.new_event_id), so old ones are pruned by a range on the key.
applied_events = Table(
    "applied_events",
    metadata,
    Column("event_id", String(32), primary_key=True),
    sqlite_with_rowid=False,
)


__all__ = ["applied_events", "create_schema", "incidents", "metadata"]


# An arbitrary constant: writers starting together on one PostgreSQL create tables in turn.
_PG_SCHEMA_LOCK = 0x6D6F6E69746F73


def create_schema(engine: Engine) -> None:
    """Create the tables and indexes that do not exist yet (idempotent).

    Safe when several writers start at once on a new database: the check and the CREATEs run
    in one transaction that holds the database's write lock (SQLite: BEGIN IMMEDIATE) or an
    advisory lock (PostgreSQL), so the second writer finds the first one's tables instead of
    failing on "table already exists"."""
    with engine.connect() as conn:
        conn.execution_options(monitor_write=True)  # SQLite: BEGIN IMMEDIATE (see sql.py)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK})
            metadata.create_all(conn)
