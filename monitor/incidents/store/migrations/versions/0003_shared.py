"""Shared by every writer: teacher overrides, and the store's settings (the pseudonym key's
fingerprint).

Revision ID: 0003
Revises: 0002
Create Date: 2026-08-03

A proxy or sensor of this version opens the store with ``metadata.create_all``, which may have
made these tables before this revision runs on a store already under Alembic (at 0002): each
table is created only when it is missing, so the upgrade adopts them instead of failing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _missing(table: str) -> bool:
    return table not in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if _missing("overrides"):
        op.create_table(
            "overrides",
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("platform", sa.String(64), nullable=False),
            sa.Column("granted_by", sa.String(128), nullable=False),
            sa.Column("granted_by_role", sa.String(64), server_default="teacher", nullable=False),
            sa.Column("class_id", sa.String(128), nullable=True),
            sa.Column("students", sa.Text(), server_default="[]", nullable=False),
            sa.Column("starts", _time(), nullable=False),
            sa.Column("ends", _time(), nullable=False),
            sa.Column("reason", sa.Text(), server_default="", nullable=False),
            sa.Column("created", _time(), nullable=True),
            sa.Column("revoked_at", _time(), nullable=True),
            sa.Column("revoked_by", sa.String(128), nullable=True),
            sa.Column("position", _SEQ, nullable=False),
            sa.Column("version", _SEQ, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_overrides")),
        )
        op.create_index(op.f("ix_overrides_version"), "overrides", ["version"])
        op.create_index(op.f("ix_overrides_ends"), "overrides", ["ends"])
    if _missing("store_settings"):
        op.create_table(
            "store_settings",
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_store_settings")),
        )


def downgrade() -> None:
    op.drop_table("store_settings")
    op.drop_table("overrides")
