"""Fixtures of the report tests: an empty store on SQLite or on tests/pg.py's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pg
import pytest
from reportworld import new_database

pg_dsn = pg.pg_dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a new SQLite file, or a new database on the test cluster."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'incidents.sqlite'}"
        return
    with new_database(request.getfixturevalue("pg_dsn")) as url:
        yield url
