"""Schema of the incident store as SQLAlchemy MetaData (also the target of Alembic migrations).

Works on SQLite (>= 3.24, for upserts) and PostgreSQL. Times are stored as UTC: naive text on
SQLite (fixed width, so text comparison is time order), ``timestamptz`` on PostgreSQL; both come
back as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from monitor.incidents.events import STATUSES
from monitor.model import SEVERITIES

SCHEMA_VERSION = 1

# Deterministic constraint names, so Alembic autogenerate and migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (store needs aware UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # SQLite: write and read the text directly, in the format SQLAlchemy's DATETIME uses
    # ("YYYY-MM-DD HH:MM:SS.ffffff"), with C-level isoformat/fromisoformat. SQLAlchemy's own
    # processors (%-formatting, regex parsing) were a third of the batch write time.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value.isoformat()} (store needs aware UTC)")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData(naming_convention=NAMING_CONVENTION)

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
    CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
    CheckConstraint(_one_of("status", STATUSES), name="status"),
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


def create_schema(engine: Engine) -> None:
    """Create the tables and indexes that do not exist yet (idempotent)."""
    metadata.create_all(engine)


# The review app's tables (accounts, sessions, record of access) join this MetaData. Imported
# last because that module builds on the names above.
from monitor.incidents.store import accessschema as _accessschema  # noqa: E402, F401
