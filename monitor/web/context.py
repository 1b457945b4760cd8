"""Everything the review app works with, opened once per process: the district, the store,
accounts, sessions, the record of access, the pseudonym directory and the settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from monitor.district import District, DistrictLoader, pseudonym_key
from monitor.incidents.access import SYSTEM, AccessLog, Actor
from monitor.incidents.retention import PurgeResult, Retention, load_retention, purge
from monitor.incidents.store import SqlIncidentStore, open_store
from monitor.incidents.store.migrations import upgrade
from monitor.incidents.store.overrides import SqlOverrideRecords
from monitor.rules.overrides import SharedOverrides
from monitor.web.accounts import Accounts
from monitor.web.oidc import OidcClient, PeopleIndex, SignInSettings, load_signin
from monitor.web.people import Directory
from monitor.web.security import SignInLimiter
from monitor.web.sessions import Sessions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewSettings:
    """How the app behaves; the defaults are the production values."""

    secure_cookies: bool = False  # always mark cookies Secure (else: only on https requests)
    session_idle: timedelta = timedelta(minutes=30)
    session_max: timedelta = timedelta(hours=12)
    signin_limit: int = 5  # failed sign-ins per username and per address …
    signin_window: float = 15 * 60  # … within this many seconds
    page_size: int = 50
    count_cap: int = 1_000  # list pages count matches up to here ("1,000+"): a bounded walk
    export_limit: int = 100_000  # most incidents in one CSV export
    allowed_hosts: tuple[str, ...] = ()  # Host header values accepted; empty: any
    # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed;
    # empty: none, the connection's peer is the client (monitor.web.forwarded)
    forwarded_allow_ips: tuple[str, ...] = ()
    purge_every: timedelta | None = timedelta(days=1)  # None: no automatic purge
    reload_every: float | None = 30.0  # seconds between roster change checks; None: never
    retention: Retention = field(default_factory=Retention)
    # How people sign in; None: CONFIG_DIR/signin.yaml (missing: local accounts only)
    signin: SignInSettings | None = None
    overrides_every: float | None = 30.0  # seconds between checks for expired overrides


class Review:
    """The app's state. Methods are blocking (database, files): call them off the event loop."""

    def __init__(
        self,
        loader: DistrictLoader,
        store: SqlIncidentStore,
        settings: ReviewSettings,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        district = loader.current
        if district is None:
            district = loader.load()
        self.loader = loader
        self.district: District = district
        self.store = store
        self.settings = settings
        self.clock = clock
        self.key = pseudonym_key(district)
        self.accounts = Accounts(store.engine, hasher=hasher, clock=clock)
        self.access = AccessLog(store.engine, clock=clock)
        self.sessions = Sessions(
            store.engine,
            self.accounts,
            idle=settings.session_idle,
            max_age=settings.session_max,
            clock=clock,
        )
        self.limiter = SignInLimiter(settings.signin_limit, settings.signin_window)
        self.directory = Directory(district.roster, self.key)
        self._lock = threading.Lock()
        self.signin = settings.signin or load_signin(district.config_dir)
        self.oidc = OidcClient(self.signin.oidc) if self.signin.oidc else None
        self.people_index = PeopleIndex()
        # teacher overrides, in the same store every proxy and sensor polls
        self.overrides = SharedOverrides(
            SqlOverrideRecords(store.engine.url.render_as_string(hide_password=False), create=False)
        )

    @classmethod
    def open(
        cls,
        config_dir: str | Path,
        settings: ReviewSettings | None = None,
        *,
        store_url: str | None = None,
        hasher: PasswordHasher | None = None,
    ) -> Review:
        """Load the district, migrate its store to the newest schema and open it."""
        loader = DistrictLoader(config_dir)
        district = loader.load()
        if settings is None:
            settings = ReviewSettings(retention=load_retention(district.config_dir))
        url = store_url or district.store_url
        upgrade(url)
        store = open_store(url, create=False, window=district.policy.dedupe_window)
        return cls(loader, store, settings, hasher=hasher)

    # -- district facts the pages show ------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return self.district.policy.tz

    @property
    def district_name(self) -> str:
        return self.district.policy.district

    def school_names(self) -> dict[str, str]:
        return self.directory.school_names()

    def platforms(self) -> list[str]:
        return sorted(self.district.catalogue.ids)

    # -- background work --------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read changed district files; rebuild the pseudonym directory when the roster
        changed. Returns whether it did."""
        with self._lock:
            district, results = self.loader.reload()
            for r in results:
                if not r.ok:
                    log.warning("review: %s not reloaded: %s", r.component, r.message)
            self.district = district
            if district.roster.version != self.directory.version:
                self.directory = Directory(district.roster, self.key)
                return True
        return False

    def purge(self, actor: Actor = SYSTEM, *, dry_run: bool = False) -> PurgeResult:
        """Delete what retention says is due, and expired sessions."""
        result = purge(
            self.store.engine,
            self.access,
            self.settings.retention,
            now=self.clock(),
            actor=actor,
            dry_run=dry_run,
        )
        if not dry_run:
            self.sessions.purge_expired()
        return result

    def close(self) -> None:
        self.overrides.source.close()  # type: ignore[attr-defined]
        self.store.close()
