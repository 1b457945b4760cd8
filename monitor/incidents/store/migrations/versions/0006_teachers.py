"""Teachers and identity-provider sign-in: accounts may be teachers, name their roster person
and say how they sign in (a password, or the district's OpenID provider).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A store whose tables ``metadata.create_all`` made (a proxy or sensor of this version) may have
the new columns and check already, before this revision runs: only what is missing is changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NEW = "role IN ('counselor', 'administrator', 'auditor', 'teacher')"
_OLD = "role IN ('counselor', 'administrator', 'auditor')"


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    have = {c["name"] for c in insp.get_columns("accounts")}
    checks = {c["name"]: str(c["sqltext"]) for c in insp.get_check_constraints("accounts")}
    old_check = "'teacher'" not in checks.get("ck_accounts_role", "")
    if {"sourced_id", "sign_in"} <= have and not old_check:
        return
    with op.batch_alter_table("accounts", recreate="auto") as b:
        if "sourced_id" not in have:
            b.add_column(sa.Column("sourced_id", sa.String(128), nullable=True))
        if "sign_in" not in have:
            b.add_column(
                sa.Column("sign_in", sa.String(16), server_default="password", nullable=False)
            )
        if old_check:
            if "ck_accounts_role" in checks:
                b.drop_constraint(op.f("ck_accounts_role"), type_="check")
            b.create_check_constraint(op.f("ck_accounts_role"), _NEW)


def downgrade() -> None:
    with op.batch_alter_table("accounts", recreate="auto") as b:
        b.drop_constraint(op.f("ck_accounts_role"), type_="check")
        b.create_check_constraint(op.f("ck_accounts_role"), _OLD)
        b.drop_column("sign_in")
        b.drop_column("sourced_id")
