"""The review app: accounts, sessions and the record of access.

Revision ID: 0002
Revises: 0001
Create Date: 2026-07-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.String(128), server_default="", nullable=False),
        sa.Column("schools", sa.String(512), server_default="", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("password_changed_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
        sa.CheckConstraint(
            "role IN ('counselor', 'administrator', 'auditor')", name=op.f("ck_accounts_role")
        ),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("last_seen", _time(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sessions_account_id_accounts")
        ),
    )
    op.create_index(op.f("ix_sessions_account_id"), "sessions", ["account_id"])
    op.create_table(
        "access_log",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.String(128), server_default="", nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("person", sa.String(32), nullable=True),
        sa.Column("sourced_id", sa.String(128), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index(op.f("ix_access_log_at"), "access_log", ["at"])
    op.create_index(op.f("ix_access_log_account_at"), "access_log", ["account", "at"])
    op.create_index(op.f("ix_access_log_action_at"), "access_log", ["action", "at"])
    op.create_table(
        "access_subjects",
        sa.Column("person", sa.String(32), nullable=False),
        sa.Column("access_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("person", "access_id", name=op.f("pk_access_subjects")),
        sa.ForeignKeyConstraint(
            ["access_id"], ["access_log.id"], name=op.f("fk_access_subjects_access_id_access_log")
        ),
    )
    op.create_index(op.f("ix_access_subjects_access_id"), "access_subjects", ["access_id"])


def downgrade() -> None:
    op.drop_table("access_subjects")
    op.drop_table("access_log")
    op.drop_table("sessions")
    op.drop_table("accounts")
