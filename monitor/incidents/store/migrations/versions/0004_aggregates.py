"""Daily activity aggregates: counts of requests and refused connections per day, school, age
band, grade, platform, activity, decision, rule and source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A proxy or sensor of this version opens the store with ``metadata.create_all``, which may have
made the table before this revision runs: it is created only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "daily_activity" in sa.inspect(op.get_bind()).get_table_names():
        return
    key = (
        "day", "school", "age_band", "grade", "platform", "activity", "decision", "rule_id",
        "source",
    )  # fmt: skip
    op.create_table(
        "daily_activity",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("school", sa.String(64), nullable=False),
        sa.Column("age_band", sa.String(16), nullable=False),
        sa.Column("grade", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("activity", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("requests >= 0 AND refused >= 0", name=op.f("ck_daily_activity_counts")),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_daily_activity")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("daily_activity")
