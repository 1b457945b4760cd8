"""Incident stores: the :class:`IncidentStore` Protocol and its SQL implementation."""

from __future__ import annotations

from .base import IncidentFilter, IncidentStore
from .schema import create_schema, metadata
from .sql import SqlIncidentStore, normalise_url, open_store

__all__ = [
    "IncidentFilter",
    "IncidentStore",
    "SqlIncidentStore",
    "create_schema",
    "metadata",
    "normalise_url",
    "open_store",
]
