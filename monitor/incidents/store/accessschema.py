"""Tables of the counselors' review app, in the incident store's MetaData: accounts, sign-in
sessions and the record of access (FERPA 34 CFR 99.32; 603 CMR 23.07).

They live in the same database as the incidents, so one backup, one retention job and one
Alembic history cover the whole record. ``monitor.incidents.store.schema`` imports this module,
so its ``metadata`` always holds every table.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from monitor.incidents.store.columns import UtcDateTime, metadata

ROLES = ("counselor", "administrator", "auditor", "teacher")
SIGN_IN = ("password", "oidc")  # how an account signs in

_ID = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    # The person's position or title, which the record of access must name (603 CMR 23.07).
    Column("position", String(128), nullable=False, server_default=""),
    # School identifiers (es, ms, …) a counselor may see, comma-separated; "" for the others.
    Column("schools", String(512), nullable=False, server_default=""),
    Column("disabled", Boolean(), nullable=False, server_default=false()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    # The roster person (sourcedId) behind an account signed in through the identity provider.
    Column("sourced_id", String(128), nullable=True),
    # "password" (a local account) or "oidc" (the district's identity provider; no password).
    Column("sign_in", String(16), nullable=False, server_default="password"),
    CheckConstraint("role IN ('counselor', 'administrator', 'auditor', 'teacher')", name="role"),
)

# Server-side sessions: the cookie holds a random token, the table only its SHA-256, so a
# copy of the database opens no session; disabling an account ends its sessions at once.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", _ID, ForeignKey("accounts.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Index(None, "account_id"),
)

# One row per access: who (account, role, position at the time), when, what, why.
access_log = Table(
    "access_log",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("account", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("position", String(128), nullable=False, server_default=""),
    Column("action", String(32), nullable=False),
    # The student when the access concerned one (pseudonym), and the roster id once revealed.
    Column("person", String(32), nullable=True),
    Column("sourced_id", String(128), nullable=True),
    Column("incident_id", BigInteger(), nullable=True),
    Column("detail", Text(), nullable=False, server_default=""),
    Column("reason", Text(), nullable=False, server_default=""),
    Index(None, "at"),
    Index(None, "account", "at"),
    Index(None, "action", "at"),
)

# Every student whose records one access touched (a list page shows many): the per-student
# access report reads this table by person.
access_subjects = Table(
    "access_subjects",
    metadata,
    Column("person", String(32), primary_key=True),
    Column("access_id", _ID, ForeignKey("access_log.id"), primary_key=True),
    Index(None, "access_id"),
)
