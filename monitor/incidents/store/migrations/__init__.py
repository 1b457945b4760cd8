"""Alembic migrations of the incident store (incidents, review app accounts, record of access).

:func:`upgrade` brings a database to the newest revision; ``monitor review`` and ``monitor
users`` call it at start. Databases made by ``open_store(create=True)`` (``metadata.create_all``,
no ``alembic_version`` table) are adopted: stamped with the revision their tables match, then
upgraded. ``monitor users list --db URL`` (or any ``monitor users`` command) migrates a store
by hand; :func:`config` gives an Alembic Config for other Alembic commands.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from monitor.incidents.store.schema import metadata
from monitor.incidents.store.sql import normalise_url
from monitor.progress import progress

HERE = Path(__file__).resolve().parent
# Tables each revision adds, to recognise databases that create_all made without Alembic
# (oldest first): such a database is stamped with the newest revision whose tables, and every
# earlier revision's, it has.
_TABLES_OF = (
    ("0001", {"incidents", "applied_events"}),
    ("0002", {"accounts", "sessions", "access_log", "access_subjects"}),
    ("0003", {"overrides", "store_settings"}),
    ("0004", {"daily_activity"}),
    ("0005", {"notify_outbox", "notify_deliveries"}),
)
# An arbitrary constant: concurrent starts on one PostgreSQL migrate one after another.
_PG_LOCK = 0x6D6F6E69746F72


def config(connection: Connection | None = None) -> Config:
    """An Alembic Config for this directory (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def current(conn: Connection) -> str | None:
    """The revision a database is at (None: not under Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def _made_by_create_all(tables: set[str]) -> str | None:
    """The revision a database without ``alembic_version`` matches (None: an empty one)."""
    if tables >= set(metadata.tables):
        return "head"
    found = None
    need: set[str] = set()
    for rev, added in _TABLES_OF:
        need |= added
        if not tables >= need:
            break
        found = rev
    return found


def upgrade(url: str) -> str:
    """Create or upgrade the store at ``url`` to the newest revision; returns it.

    For SQLite the database's directory is created when missing."""
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, hide_parameters=True)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            cfg = config(conn)
            if current(conn) is None:
                adopt = _made_by_create_all(set(inspect(conn).get_table_names()))
                if adopt is not None:
                    command.stamp(cfg, adopt)
            if current(conn) == head():
                command.upgrade(cfg, "head")
            else:  # a spinner on a terminal: a large store's migration takes a while
                with progress(f"migrating the incident store to revision {head()}"):
                    command.upgrade(cfg, "head")
            rev = current(conn)
    finally:
        engine.dispose()
    assert rev is not None
    return rev
