"""The notification outbox: incidents that asked for a notification, and their deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A proxy or sensor of this version opens the store with ``metadata.create_all``, which may have
made these tables before this revision runs: each is created only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _missing(table: str) -> bool:
    return table not in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if _missing("notify_outbox"):
        op.create_table(
            "notify_outbox",
            sa.Column("id", _ID, autoincrement=True, nullable=False),
            sa.Column("window_start", _time(), nullable=False),
            sa.Column("dedupe_key", sa.String(32), nullable=False),
            sa.Column("school", sa.String(64), nullable=False),
            sa.Column("severity", sa.String(8), nullable=False),
            sa.Column("created_at", _time(), nullable=False),
            sa.Column("state", sa.String(16), server_default="new", nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
            sa.UniqueConstraint(
                "window_start", "dedupe_key", name=op.f("uq_notify_outbox_window_start_dedupe_key")
            ),
        )
        op.create_index(op.f("ix_notify_outbox_state_id"), "notify_outbox", ["state", "id"])
    if _missing("notify_deliveries"):
        op.create_table(
            "notify_deliveries",
            sa.Column("id", _ID, autoincrement=True, nullable=False),
            sa.Column("outbox_id", _ID, nullable=False),
            sa.Column("channel", sa.String(16), nullable=False),
            sa.Column("recipient", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
            sa.Column("next_attempt", _time(), nullable=False),
            sa.Column("last_error", sa.Text(), server_default="", nullable=False),
            sa.Column("created_at", _time(), nullable=False),
            sa.Column("sent_at", _time(), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
            sa.UniqueConstraint(
                "outbox_id",
                "channel",
                "recipient",
                name=op.f("uq_notify_deliveries_outbox_id_channel_recipient"),
            ),
            sa.ForeignKeyConstraint(
                ["outbox_id"],
                ["notify_outbox.id"],
                name=op.f("fk_notify_deliveries_outbox_id_notify_outbox"),
            ),
        )
        op.create_index(
            op.f("ix_notify_deliveries_status_next_attempt"),
            "notify_deliveries",
            ["status", "next_attempt"],
        )
        op.create_index(
            op.f("ix_notify_deliveries_recipient_created_at"),
            "notify_deliveries",
            ["recipient", "created_at"],
        )


def downgrade() -> None:
    op.drop_table("notify_deliveries")
    op.drop_table("notify_outbox")
