"""Fixtures of the notification tests: the real servers of :mod:`mailhooks`, and an empty
store on SQLite or on the test PostgreSQL cluster (tests/pg.py; skipped without one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pg
import pytest
from mailhooks import hook_server, smtp_server, tls_files

pg_dsn = pg.pg_dsn

__all__ = ["hook_server", "pg_dsn", "smtp_server", "store_url", "tls_files"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from pg.empty_store_url(request, tmp_path, "notify")
