"""Incident stores: the :class:`IncidentStore` Protocol and its SQL implementation (SQLite
or PostgreSQL), the schema of every table, and the Alembic migrations."""

from __future__ import annotations

from monitor.incidents.store.base import IncidentFilter, IncidentStore
from monitor.incidents.store.schema import create_schema, metadata
from monitor.incidents.store.sql import SqlIncidentStore, normalise_url, open_store

__all__ = [
    "IncidentFilter",
    "IncidentStore",
    "SqlIncidentStore",
    "create_schema",
    "metadata",
    "normalise_url",
    "open_store",
]
