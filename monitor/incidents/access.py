"""The record of access to students' incident records (FERPA 34 CFR 99.32; Massachusetts
603 CMR 23.07): who (account, role, position), when, which student, what and why.

Every view of a student's incidents, every reveal, export and purge writes one row; the
students it touched are listed in ``access_subjects`` so that a per-student access report finds
a list page or an export that included the student as well as a direct view.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, func, select

from monitor.incidents.store.accessschema import access_log, access_subjects
from monitor.incidents.store.sql import write_transaction

# What an access record can say happened.
ACTIONS: dict[str, str] = {
    "sign_in": "signed in",
    "sign_in_failed": "failed sign-in",
    "sign_out": "signed out",
    "list": "viewed the incident list",
    "view_incident": "viewed an incident",
    "view_student": "viewed a student's incidents",
    "review": "changed an incident's review state",
    "reveal": "revealed a student's name",
    "export_csv": "exported incidents (CSV)",
    "export_record": "exported a student's whole record",
    "access_report": "printed a student's access report",
    "report": "viewed a report listing students",
    "purge": "deleted records under the retention policy",
    "view_class": "viewed a class (teacher)",
    "override_grant": "granted a teacher override",
    "override_revoke": "revoked a teacher override",
    "override_expired": "a teacher override ended (expired)",
    "override_refused": "was refused a teacher override",
    "report_email": "e-mailed a report naming students (pseudonyms)",
}
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an account with its role and position, or the system (retention)."""

    account: str
    role: str
    position: str = ""


SYSTEM = Actor("system", "system", "automatic retention purge")


@dataclass(frozen=True, slots=True)
class AccessRecord:
    id: int
    at: datetime
    account: str
    role: str
    position: str
    action: str
    person: str | None
    sourced_id: str | None
    incident_id: int | None
    detail: str
    reason: str

    @property
    def what(self) -> str:
        """The action in words."""
        return ACTIONS.get(self.action, self.action)


@dataclass(frozen=True, slots=True)
class AccessFilter:
    account: str | None = None
    action: str | None = None
    person: str | None = None  # the student the record names or touched
    since: datetime | None = None
    until: datetime | None = None


def _record(row: Any) -> AccessRecord:
    m = row._mapping
    return AccessRecord(
        id=int(m["id"]),
        at=m["at"],
        account=m["account"],
        role=m["role"],
        position=m["position"],
        action=m["action"],
        person=m["person"],
        sourced_id=m["sourced_id"],
        incident_id=None if m["incident_id"] is None else int(m["incident_id"]),
        detail=m["detail"],
        reason=m["reason"],
    )


def _where(f: AccessFilter | None) -> list[ColumnElement[bool]]:
    if f is None:
        return []
    c = access_log.c
    out: list[ColumnElement[bool]] = []
    if f.account is not None:
        out.append(c.account == f.account)
    if f.action is not None:
        out.append(c.action == f.action)
    if f.person is not None:
        touched = select(access_subjects.c.access_id).where(access_subjects.c.person == f.person)
        out.append(c.id.in_(touched))
    if f.since is not None:
        out.append(c.at >= f.since)
    if f.until is not None:
        out.append(c.at < f.until)
    return out


def is_student(person: str | None) -> bool:
    """Whether ``person`` is a pseudonym (not empty, not the unknown person)."""
    return bool(person) and str(person).startswith("p-")


class AccessLog:
    """Append-only record of access on a store engine (rows leave only by retention)."""

    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.engine = engine
        self.clock = clock

    def record(
        self,
        actor: Actor,
        action: str,
        *,
        person: str | None = None,
        sourced_id: str | None = None,
        incident_id: int | None = None,
        detail: str = "",
        reason: str = "",
        subjects: Iterable[str] = (),
    ) -> int:
        """Write one access record; ``subjects`` are the other students it touched. Returns
        the record's id."""
        if action not in ACTIONS:
            raise ValueError(f"access record: unknown action {action!r}")
        people = {p for p in subjects if is_student(p)}
        if person is not None and is_student(person):
            people.add(person)
        with write_transaction(self.engine) as conn:
            res = conn.execute(
                access_log.insert().values(
                    at=self.clock(),
                    account=actor.account,
                    role=actor.role,
                    position=actor.position,
                    action=action,
                    person=person,
                    sourced_id=sourced_id,
                    incident_id=incident_id,
                    detail=detail,
                    reason=reason,
                )
            )
            (access_id,) = res.inserted_primary_key or (None,)
            assert access_id is not None
            if people:
                conn.execute(
                    access_subjects.insert(),
                    [{"person": p, "access_id": access_id} for p in sorted(people)],
                )
        return int(access_id)

    def list(
        self, filters: AccessFilter | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[AccessRecord]:
        """Records matching ``filters``, newest first."""
        q = (
            select(access_log)
            .where(*_where(filters))
            .order_by(access_log.c.at.desc(), access_log.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def count(self, filters: AccessFilter | None = None) -> int:
        q = select(func.count()).select_from(access_log).where(*_where(filters))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def for_person(self, person: str) -> builtins.list[AccessRecord]:
        """Every record that named or touched ``person``, oldest first (the access report)."""
        q = (
            select(access_log)
            .where(*_where(AccessFilter(person=person)))
            .order_by(access_log.c.at, access_log.c.id)
        )
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def purge(self, before: datetime) -> int:
        """Delete records older than ``before`` (and their subject rows); returns how many."""
        removed = 0
        while True:
            with write_transaction(self.engine) as conn:
                ids = list(
                    conn.execute(
                        select(access_log.c.id).where(access_log.c.at < before).limit(_CHUNK)
                    ).scalars()
                )
                if not ids:
                    return removed
                conn.execute(delete(access_subjects).where(access_subjects.c.access_id.in_(ids)))
                conn.execute(delete(access_log).where(access_log.c.id.in_(ids)))
                removed += len(ids)
