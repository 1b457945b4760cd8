"""Teacher overrides in the incident store: the rows of the ``overrides`` table, for the rules
in :mod:`monitor.rules.overrides` (which check grants; this module only stores them).

Rows are plain dicts with the fields of the former ``overrides.json`` records (``students`` a
list, times aware datetimes), in grant order. Every change runs in one transaction that holds
the table's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: LOCK TABLE … EXCLUSIVE, which
readers pass), so a grant's overlap check and its insert are atomic across processes and
hosts, and stamps the rows it touches with ``max(version) + 1``: :meth:`version` is how the
proxies and sensors see, with one cheap query per reload interval, that something changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from monitor.incidents.store.schema import create_schema
from monitor.incidents.store.sharedschema import overrides
from monitor.incidents.store.sql import make_engine, normalise_url

_FIELDS = (
    "id", "platform", "granted_by", "granted_by_role", "class_id", "students", "starts", "ends",
    "reason", "created", "revoked_at", "revoked_by",
)  # fmt: skip


class StoreUnavailableError(ConnectionError):
    """The store could not be reached or read (the message names it, password masked)."""


def _reason(e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    text_ = str(orig if orig is not None else e).strip()
    return f"{type(orig or e).__name__}: {text_.splitlines()[0] if text_ else ''}"[:300]


def _row(m: Any) -> dict[str, Any]:
    out = {name: m[name] for name in _FIELDS}
    try:
        out["students"] = json.loads(m["students"] or "[]")
    except ValueError:
        out["students"] = m["students"]  # the rules report it, with the override's id
    return out


def _values(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in _FIELDS}
    out["students"] = json.dumps(list(row.get("students") or ()))
    out["granted_by_role"] = out["granted_by_role"] or "teacher"
    out["reason"] = out["reason"] or ""
    return out


def _select(ending_after: datetime | None) -> Any:
    q = select(overrides).order_by(overrides.c.position)
    return q if ending_after is None else q.where(overrides.c.ends > ending_after)


class RowTransaction:
    """One locked transaction on the overrides table (see the module docstring)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._version: int | None = None

    def rows(self, ending_after: datetime | None = None) -> list[dict[str, Any]]:
        return [_row(r._mapping) for r in self._conn.execute(_select(ending_after))]

    def get(self, override_id: str) -> dict[str, Any] | None:
        r = self._conn.execute(select(overrides).where(overrides.c.id == override_id)).first()
        return None if r is None else _row(r._mapping)

    def _next_version(self) -> int:
        if self._version is None:
            top = self._conn.execute(select(func.max(overrides.c.version))).scalar()
            self._version = int(top or 0) + 1
        return self._version

    def insert(self, row: dict[str, Any]) -> bool:
        """Add a grant; False (nothing written) when its id is taken."""
        if self.get(str(row["id"])) is not None:
            return False
        position = self._conn.execute(select(func.max(overrides.c.position))).scalar()
        values = _values(row) | {"position": int(position or 0) + 1}
        self._conn.execute(insert(overrides).values(**values, version=self._next_version()))
        return True

    def update(self, row: dict[str, Any]) -> None:
        """Write a changed grant (its revocation) back."""
        values = _values(row)
        oid = values.pop("id")
        self._conn.execute(
            update(overrides)
            .where(overrides.c.id == oid)
            .values(**values, version=self._next_version())
        )


class SqlOverrideRecords:
    """The overrides of one store. ``create``: make missing tables (as writers do)."""

    def __init__(self, url: str, *, timeout: float = 10.0, create: bool = True) -> None:
        u = normalise_url(url)
        self.name = u.render_as_string(hide_password=True)  # for messages: no password
        self.engine: Engine = make_engine(u, timeout)
        self._created = not create
        db = u.database or ""
        self._sqlite_dir = (
            Path(db).parent
            if create and u.get_backend_name() == "sqlite" and db and db != ":memory:"
            and not db.startswith("file:")
            else None
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"SqlOverrideRecords({self.name!r})"

    def _ready(self) -> None:
        if not self._created:
            if self._sqlite_dir is not None:
                try:
                    self._sqlite_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StoreUnavailableError(f"incident store {self.name}: {e}") from e
            create_schema(self.engine)
            self._created = True

    def _unavailable(self, e: SQLAlchemyError) -> StoreUnavailableError:
        return StoreUnavailableError(f"incident store {self.name}: {_reason(e)}")

    def version(self) -> int:
        """The change counter: grows with every grant, revocation and import."""
        try:
            self._ready()
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.max(overrides.c.version))).scalar() or 0)
        except SQLAlchemyError as e:
            raise self._unavailable(e) from e

    def rows(self, ending_after: datetime | None = None) -> list[dict[str, Any]]:
        """Every grant in grant order, or only those ending after ``ending_after``."""
        try:
            self._ready()
            with self.engine.connect() as conn:
                return [_row(r._mapping) for r in conn.execute(_select(ending_after))]
        except SQLAlchemyError as e:
            raise self._unavailable(e) from e

    @contextmanager
    def transaction(self) -> Iterator[RowTransaction]:
        """The table locked for writing (other writers wait; readers do not), committed when
        the block ends without an exception."""
        try:
            self._ready()
            with self.engine.connect() as conn:
                conn.execution_options(monitor_write=True)  # SQLite: BEGIN IMMEDIATE
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("LOCK TABLE overrides IN EXCLUSIVE MODE"))
                    yield RowTransaction(conn)
        except SQLAlchemyError as e:
            raise self._unavailable(e) from e

    def close(self) -> None:
        self.engine.dispose()
