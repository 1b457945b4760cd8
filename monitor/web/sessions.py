"""Server-side sign-in sessions: the cookie holds a random token, the database its SHA-256.

A session ends after ``idle`` without a request, after ``max_age`` in any case, when its
account is disabled or its password changed (``monitor.web.accounts`` deletes the rows), and on
sign-out. Each session carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update

from monitor.incidents.store.accessschema import sessions
from monitor.incidents.store.sql import write_transaction
from monitor.web.accounts import Account, Accounts

# Touch last_seen at most this often: a page view should not always be a write.
_TOUCH_EVERY = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in account and its session's CSRF token."""

    account: Account
    token_hash: str
    csrf: str


class Sessions:
    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        *,
        idle: timedelta = timedelta(minutes=30),
        max_age: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.idle = idle
        self.max_age = max_age
        self.clock = clock

    def create(self, account: Account) -> str:
        """Start a session for ``account``; returns the cookie token."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(
                sessions.insert().values(
                    token_hash=_hash(token),
                    account_id=account.id,
                    csrf=secrets.token_urlsafe(32),
                    created_at=now,
                    last_seen=now,
                )
            )
        return token

    def lookup(self, token: str | None) -> Principal | None:
        """The session's principal, or None when unknown, expired or the account disabled."""
        if not token or len(token) > 128:
            return None
        h = _hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == h)).first()
        if row is None:
            return None
        now = self.clock()
        if now - row.last_seen > self.idle or now - row.created_at > self.max_age:
            self.end(token)
            return None
        account = self.accounts.by_id(int(row.account_id))
        if account is None or account.disabled:
            self.end(token)
            return None
        if now - row.last_seen > _TOUCH_EVERY:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(sessions).where(sessions.c.token_hash == h).values(last_seen=now)
                )
        return Principal(account, h, row.csrf)

    def end(self, token: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _hash(token)))

    def purge_expired(self) -> int:
        now = self.clock()
        with write_transaction(self.engine) as conn:
            res = conn.execute(
                delete(sessions).where(
                    or_(
                        sessions.c.last_seen < now - self.idle,
                        sessions.c.created_at < now - self.max_age,
                    )
                )
            )
            return int(res.rowcount)
