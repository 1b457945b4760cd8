"""The incident store interface: one Protocol that the SQLite and PostgreSQL stores satisfy."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.incidents.events import Incident, IncidentEvent


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Equality filters (None: any) and a half-open ``last_seen`` range [since, until).

    ``schools``: the incident's school is one of these (a counselor's scope; empty: none).
    """

    school: str | None = None
    platform: str | None = None
    status: str | None = None
    severity: str | None = None
    person: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    schools: tuple[str, ...] | None = None


class IncidentStore(Protocol):
    """Where incidents live. Implementations must be safe to call from one writer thread plus
    any number of reader threads."""

    def write_batch(self, events: Sequence[IncidentEvent]) -> int:
        """Fold events into incidents in one transaction; events whose ``event_id`` was already
        applied are skipped. Returns how many events were newly applied. Raises on failure
        (nothing of the batch is then applied)."""
        ...

    def list(
        self, filters: IncidentFilter | None = None, limit: int = 50, offset: int = 0
    ) -> builtins.list[Incident]:
        """Incidents matching ``filters``, newest ``last_seen`` first."""
        ...

    def get(self, id: int) -> Incident | None: ...

    def count(self, filters: IncidentFilter | None = None, cap: int | None = None) -> int:
        """How many incidents match; with ``cap``, counting stops there (min(count, cap))."""
        ...

    def update(
        self,
        id: int,
        *,
        status: str | None = None,
        assignee: str | None = None,
        notes: str | None = None,
    ) -> Incident | None:
        """Set review fields (None: leave as is); returns the updated incident, None if absent."""
        ...

    def close(self) -> None: ...
