"""The notification outbox, in the incident store's MetaData: one row per incident that asks
for a notification (written in the incident's own transaction), and its deliveries.

The store's writer adds the outbox row (:func:`enqueue`) in the same transaction as the
incident upsert, so an incident is never committed without it; delivery (``monitor.notify``)
reads it later on a thread or process of its own and never holds up the writer.
``monitor.incidents.store.schema`` imports this module, so its ``metadata`` holds these tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from monitor.incidents.events import Bucket
from monitor.incidents.store.columns import UtcDateTime, metadata

_ID = BigInteger().with_variant(Integer(), "sqlite")

# One row per incident (window + dedupe key, as in ``incidents``) that reached a notified
# severity: the unique key is the dedupe, so a later batch of the same incident adds nothing.
notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("dedupe_key", String(32), nullable=False),
    Column("school", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # new: waiting for its deliveries to be made; planned: deliveries made (or none needed)
    Column("state", String(16), nullable=False, server_default="new"),
    UniqueConstraint("window_start", "dedupe_key"),
    Index(None, "state", "id"),
)

# One row per message: an e-mail to one counselor, or the district's webhook (recipient "").
notify_deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("outbox_id", _ID, ForeignKey("notify_outbox.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(64), nullable=False),
    # pending | sent | failed (attempts used up) | rate_limited | no_address | gone
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    Column("next_attempt", UtcDateTime(), nullable=False),
    Column("last_error", Text(), nullable=False, server_default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    UniqueConstraint("outbox_id", "channel", "recipient"),
    Index(None, "status", "next_attempt"),
    Index(None, "recipient", "created_at"),
)


@dataclass(frozen=True, slots=True)
class OutboxFilter:
    """Which new incidents get an outbox row: these severities, and (when given) these rules."""

    severities: frozenset[str]
    rules: frozenset[str] | None = None

    def wants(self, b: Bucket) -> bool:
        if b.severity not in self.severities:
            return False
        return self.rules is None or b.first.rule_id in self.rules


def enqueue(
    conn: Connection, buckets: Sequence[Bucket], wanted: OutboxFilter, now: datetime
) -> int:
    """Add the outbox rows of ``buckets`` that ``wanted`` selects, in the caller's transaction;
    an incident that has its row already keeps it (deduped). Returns how many were offered."""
    rows = [
        {
            "window_start": b.window_start,
            "dedupe_key": b.dedupe_key,
            "school": b.first.school,
            "severity": b.severity,
            "created_at": now,
            "state": "new",
        }
        for b in buckets
        if wanted.wants(b)
    ]
    if not rows:
        return 0
    insert = sqlite_dialect.insert if conn.dialect.name == "sqlite" else pg_dialect.insert
    stmt = insert(notify_outbox).on_conflict_do_nothing(
        index_elements=[notify_outbox.c.window_start, notify_outbox.c.dedupe_key]
    )
    conn.execute(stmt, rows)
    return len(rows)
