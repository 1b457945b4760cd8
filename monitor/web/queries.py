"""Incident queries within an account's school scope, and review updates.

A counselor of several schools gets one indexed query per school, merged by time: each is a
walk down ``(school, last_seen, id)``, where ``school IN (…) ORDER BY last_seen`` would sort
every matching row first.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from itertools import islice

from sqlalchemy import case, update

from monitor.incidents.events import Incident
from monitor.incidents.store import IncidentFilter, SqlIncidentStore
from monitor.incidents.store.schema import incidents
from monitor.incidents.store.sql import write_transaction

Scope = tuple[str, ...] | None  # school identifiers; None: every school


def scoped(filters: IncidentFilter, scope: Scope) -> list[IncidentFilter]:
    """The filters to run so that only incidents of ``scope`` come back (none: nothing)."""
    if scope is None:
        return [filters]
    if filters.school is not None:
        return [filters] if filters.school in scope else []
    return [replace(filters, school=s) for s in scope]


def list_scoped(
    store: SqlIncidentStore, filters: IncidentFilter, scope: Scope, limit: int, offset: int = 0
) -> list[Incident]:
    """Incidents matching ``filters`` within ``scope``, newest first."""
    parts = scoped(filters, scope)
    if not parts:
        return []
    if len(parts) == 1:
        return store.list(parts[0], limit, offset)
    lists = [store.list(p, offset + limit, 0) for p in parts]
    merged = heapq.merge(*lists, key=lambda i: (i.last_seen, i.id), reverse=True)
    return list(islice(merged, offset, offset + limit))


def count_scoped(store: SqlIncidentStore, filters: IncidentFilter, scope: Scope, cap: int) -> int:
    """How many match, counting no further than ``cap``."""
    total = 0
    for part in scoped(filters, scope):
        total += store.count(part, cap=cap - total)
        if total >= cap:
            return cap
    return total


MAX_ID = 2**63 - 1  # the largest id a store's integer key can hold


def get_scoped(store: SqlIncidentStore, id: int, scope: Scope) -> Incident | None:
    """The incident, or None when absent or outside ``scope`` (the two look the same); an id
    no store can hold is absent too."""
    if not 0 < id <= MAX_ID:
        return None
    inc = store.get(id)
    if inc is None or (scope is not None and inc.school not in scope):
        return None
    return inc


def apply_review(
    store: SqlIncidentStore,
    id: int,
    *,
    status: str | None = None,
    note: str | None = None,
    assignee: str | None = None,
    set_assignee: bool = False,
) -> None:
    """Set the status and assignee and append a note line, in one statement (two reviewers
    adding notes at once both keep theirs)."""
    values: dict[str, object] = {}
    if status is not None:
        values["status"] = status
    if note:
        c = incidents.c.notes
        values["notes"] = case((c == "", note), else_=c + "\n" + note)
    if set_assignee:
        values["assignee"] = assignee
    if not values:
        return
    with write_transaction(store.engine) as conn:
        conn.execute(update(incidents).where(incidents.c.id == id).values(**values))
