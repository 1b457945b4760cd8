"""Incidents and applied event ids (the store as first released).

Revision ID: 0001
Revises:
Create Date: 2026-07-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(32), nullable=False),
        sa.Column("window_start", _time(), nullable=False),
        sa.Column("first_seen", _time(), nullable=False),
        sa.Column("last_seen", _time(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("school", sa.String(64), nullable=False),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("age_band", sa.String(16), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("person", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("activity", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), server_default="new", nullable=False),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint(
            "window_start", "dedupe_key", name=op.f("uq_incidents_window_start_dedupe_key")
        ),
        sa.CheckConstraint("count >= 1", name=op.f("ck_incidents_count_positive")),
        sa.CheckConstraint(
            "severity IN ('low', 'medium', 'high')", name=op.f("ck_incidents_severity")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'acknowledged', 'resolved')", name=op.f("ck_incidents_status")
        ),
    )
    for name, cols in (
        ("ix_incidents_last_seen_id", ["last_seen", "id"]),
        ("ix_incidents_school_last_seen_id", ["school", "last_seen", "id"]),
        ("ix_incidents_platform_last_seen_id", ["platform", "last_seen", "id"]),
        ("ix_incidents_severity_last_seen_id", ["severity", "last_seen", "id"]),
        ("ix_incidents_status_last_seen_id", ["status", "last_seen", "id"]),
        ("ix_incidents_person", ["person"]),
    ):
        op.create_index(op.f(name), "incidents", cols)
    op.create_table(
        "applied_events",
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_applied_events")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("applied_events")
    op.drop_table("incidents")
