"""Local accounts of the review app: argon2id password hashes, roles and school scopes.

Roles: a *counselor* sees the incidents of their schools (school identifiers such as ``hs``)
and may reveal those students' names; an *administrator* sees every school; an *auditor* sees
the record of access and no incidents; a *teacher* sees their own classes (from the roster)
and may open a platform for them within policy (``monitor.web.teacher_views``), never incidents.
Accounts live in the incident store's database (``monitor.incidents.store.accessschema``).

Teachers, and everyone who signs in through the district's identity provider
(``monitor.web.oidc``), have accounts without a password (``sign_in`` "oidc") that name their
roster person; their role, position and schools are set again at every sign-in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from monitor.incidents.store.accessschema import ROLES, accounts, sessions
from monitor.incidents.store.sql import write_transaction

Role = Literal["counselor", "administrator", "auditor", "teacher"]
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SCHOOL = re.compile(r"[A-Za-z0-9._-]{1,64}")
FIRST_ADMIN = "admin"
ADMIN_PASSWORD_ENV = "MONITOR_ADMIN_PASSWORD"


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the app sees it (never the password hash)."""

    id: int
    username: str
    role: Role
    position: str
    schools: tuple[str, ...]
    disabled: bool
    created_at: datetime
    sourced_id: str | None = None  # the roster person (identity-provider accounts)
    sign_in: str = "password"  # "password" (local) or "oidc" (the identity provider)

    @property
    def scope(self) -> tuple[str, ...] | None:
        """School identifiers whose incidents this account may see; None: every school."""
        if self.role == "administrator":
            return None
        if self.role == "counselor":
            return self.schools
        return ()

    def sees_school(self, school: str) -> bool:
        scope = self.scope
        return scope is None or school in scope

    @property
    def reviews_incidents(self) -> bool:
        return self.role in ("counselor", "administrator")


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise ValueError(
            f"username {username!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password: at most {MAX_PASSWORD} characters")
    return password


def check_scope(role: str, schools: Iterable[str], *, teacher: bool = False) -> tuple[str, ...]:
    """Validate a role and its schools: counselors need at least one, the others none.
    Teachers come from the roster through the identity provider (``teacher`` True), never as
    local accounts."""
    if role not in ROLES or (role == "teacher" and not teacher):
        local = [r for r in ROLES if r != "teacher"]
        raise ValueError(
            f"role {role!r}: expected one of {', '.join(local)} (teachers sign in through "
            "the district's identity provider)"
            if role == "teacher"
            else f"role {role!r}: expected one of {', '.join(local)}"
        )
    out = tuple(dict.fromkeys(s.strip() for s in schools if s.strip()))
    for s in out:
        if not _SCHOOL.fullmatch(s):
            raise ValueError(f"school {s!r}: expected a school identifier such as 'hs'")
    if role == "counselor" and not out:
        raise ValueError("a counselor needs at least one school (--school)")
    if role != "counselor" and out:
        raise ValueError(f"an {role} sees every school or none: give no --school")
    if len(",".join(out)) > 512:
        raise ValueError("too many schools for one account")
    return out


def _account(row: Any) -> Account:
    m = row._mapping
    return Account(
        id=int(m["id"]),
        username=m["username"],
        role=cast(Role, m["role"]),
        position=m["position"],
        schools=tuple(s for s in m["schools"].split(",") if s),
        disabled=bool(m["disabled"]),
        created_at=m["created_at"],
        sourced_id=m["sourced_id"],
        sign_in=m["sign_in"],
    )


_COLUMNS = [c for c in accounts.c if c.name != "password_hash"]


class Accounts:
    """Account storage and password checks on a store engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        # Verified against for unknown usernames, so a wrong name costs as long as a wrong
        # password and sign-in timing does not tell which accounts exist.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        position: str = "",
        schools: Iterable[str] = (),
    ) -> Account:
        """Create an account; ValueError on a bad value or a taken username."""
        check_username(username)
        check_password(password)
        scope = check_scope(role, schools)
        if len(position) > 128:
            raise ValueError("position: at most 128 characters")
        now = self.clock()
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    accounts.insert().values(
                        username=username,
                        password_hash=self.hasher.hash(password),
                        role=role,
                        position=position.strip(),
                        schools=",".join(scope),
                        disabled=False,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except IntegrityError as e:
            raise ValueError(f"account {username!r} exists already") from e
        account = self.get(username)
        assert account is not None
        return account

    def get(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(accounts.c.username == username)).first()
        return None if row is None else _account(row)

    def by_id(self, id: int) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(accounts.c.id == id)).first()
        return None if row is None else _account(row)

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_COLUMNS).order_by(accounts.c.username))
            return [_account(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(accounts)).scalar_one())

    def set_password(self, username: str, password: str) -> None:
        """Change a password; the account's sessions end."""
        check_password(password)
        self._change(
            username, password_hash=self.hasher.hash(password), password_changed_at=self.clock()
        )

    def set_disabled(self, username: str, disabled: bool) -> Account:
        """Disable (ending its sessions at once) or enable an account."""
        self._change(username, disabled=disabled)
        account = self.get(username)
        assert account is not None
        return account

    def _change(self, username: str, **values: Any) -> None:
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(accounts.c.id).where(accounts.c.username == username)).first()
            if row is None:
                raise ValueError(f"no account {username!r}")
            conn.execute(update(accounts).where(accounts.c.id == row.id).values(**values))
            conn.execute(delete(sessions).where(sessions.c.account_id == row.id))

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled, else None."""
        if len(password) > MAX_PASSWORD:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(accounts.c.password_hash, *_COLUMNS).where(accounts.c.username == username)
            ).first()
        stored = row.password_hash if row is not None else self._dummy
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        account = _account(row)
        if account.disabled or account.sign_in != "password":
            return None
        if self.hasher.check_needs_rehash(stored):
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(accounts)
                    .where(accounts.c.id == account.id)
                    .values(password_hash=self.hasher.hash(password))
                )
        return account


def idp_username(sourced_id: str) -> str:
    """The account name of a roster person signed in through the identity provider:
    ``sso-`` and their sourcedId, lowercased (with a short hash when it had to be changed)."""
    clean = re.sub(r"[^a-z0-9._-]", "-", sourced_id.lower())[:48]
    if clean != sourced_id:
        clean = f"{clean}-{hashlib.sha256(sourced_id.encode()).hexdigest()[:8]}"
    return f"sso-{clean}"


def upsert_idp_account(
    accounts_: Accounts,
    sourced_id: str,
    role: str,
    *,
    position: str,
    schools: Iterable[str] = (),
) -> Account:
    """The account of a roster person signed in through the identity provider, created or
    brought up to date (role, position, schools). ValueError when the name belongs to a
    local account; a disabled account stays disabled (the caller refuses it)."""
    scope = check_scope(role, schools, teacher=True)
    username = idp_username(sourced_id)
    now = accounts_.clock()
    values = {
        "role": role,
        "position": position.strip()[:128],
        "schools": ",".join(scope),
        "sourced_id": sourced_id,
    }
    with write_transaction(accounts_.engine) as conn:
        row = conn.execute(
            select(accounts.c.id, accounts.c.sign_in).where(accounts.c.username == username)
        ).first()
        if row is None:
            conn.execute(
                accounts.insert().values(
                    username=username,
                    # no password verifies against this: the account signs in only through
                    # the identity provider
                    password_hash="!oidc",
                    sign_in="oidc",
                    disabled=False,
                    created_at=now,
                    password_changed_at=now,
                    **values,
                )
            )
        elif row.sign_in != "oidc":
            raise ValueError(f"account {username!r} is a local account")
        else:
            conn.execute(update(accounts).where(accounts.c.id == row.id).values(**values))
    account = accounts_.get(username)
    assert account is not None
    return account


def ensure_first_admin(accounts_: Accounts, password: str | None) -> str | None:
    """When there is no account at all, create ``admin`` (administrator) with ``password``,
    or a random one. Returns the password when it was generated here (to print once)."""
    if accounts_.count():
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(15)
    accounts_.add(FIRST_ADMIN, password, "administrator", position="Administrator")
    return generated
