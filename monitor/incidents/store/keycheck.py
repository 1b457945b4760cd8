"""The pseudonym key check: a store remembers the fingerprint of the first writer's key and
refuses writers whose key differs.

Pseudonyms are HMACs of roster ids with the district's key. Two gateways with two keys would
file one student's incidents under two pseudonyms that nothing can join (and a counselor's
reveal would find only half), so a store accepts one key: the first writer's fingerprint
(:func:`monitor.incidents.events.key_fingerprint`, never the key) is kept in
``store_settings``; a writer whose fingerprint differs gets :class:`KeyMismatchError` when it
opens the store, and keeps its events in its spool.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from monitor.incidents.store.sharedschema import store_settings

FINGERPRINT_SETTING = "pseudonym_key_fingerprint"
KEY_HELP = (
    "every proxy and sensor writing to one store needs the district's one key: "
    "pseudonym_key_file in district.yaml (a file distributed with the configuration "
    "directory) or MONITOR_PSEUDONYM_KEY"
)


class KeyMismatchError(ValueError):
    """This writer's pseudonym key is not the one the store was started with."""

    def __init__(self, store: str, source: str, mine: str, theirs: str) -> None:
        self.store, self.source, self.mine, self.theirs = store, source, mine, theirs
        super().__init__(
            f"incident store {store}: refused: the pseudonym key from {source or 'this process'} "
            f"(fingerprint {mine[:12]}) is not the key this store's incidents were recorded "
            f"with (fingerprint {theirs[:12]}); {KEY_HELP}"
        )


def claim_key(engine: Engine, fingerprint: str, source: str = "", store: str = "") -> None:
    """Remember ``fingerprint`` as the store's key if it has none yet; raise
    :class:`KeyMismatchError` when it has another. Atomic: of writers starting together with
    different keys, the first to commit wins and the others are refused."""
    ins = (sqlite_dialect.insert if engine.dialect.name == "sqlite" else pg_dialect.insert)(
        store_settings
    )
    stmt = ins.values(name=FINGERPRINT_SETTING, value=fingerprint).on_conflict_do_nothing(
        index_elements=[store_settings.c.name]
    )
    with engine.connect() as conn:
        conn.execution_options(monitor_write=True)  # SQLite: BEGIN IMMEDIATE
        with conn.begin():
            conn.execute(stmt)
            stored = conn.execute(
                select(store_settings.c.value).where(store_settings.c.name == FINGERPRINT_SETTING)
            ).scalar_one()
    if stored != fingerprint:
        raise KeyMismatchError(store or "(unnamed)", source, fingerprint, stored)


def stored_fingerprint(engine: Engine) -> str | None:
    """The fingerprint the store remembers (None: no writer has claimed it yet)."""
    col = store_settings.c
    with engine.connect() as conn:
        return conn.execute(
            select(col.value).where(col.name == FINGERPRINT_SETTING)
        ).scalar_one_or_none()
