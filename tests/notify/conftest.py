"""Fixtures of the notification tests: the real servers of :mod:`mailhooks`, and an empty
store on SQLite or on the test PostgreSQL cluster (tests/pg.py; skipped without one)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pg
import pytest
from mailhooks import hook_server, smtp_server, tls_files
from sqlalchemy import create_engine, text

from monitor.incidents.store import normalise_url

pg_dsn = pg.pg_dsn

__all__ = ["hook_server", "pg_dsn", "smtp_server", "store_url", "tls_files"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    dsn = normalise_url(request.getfixturevalue("pg_dsn"))
    name = "notify_" + secrets.token_hex(6)
    admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield dsn.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
