"""Helpers of the review app's tests: the example district copied to a temporary directory,
a real SQLite store (migrated like ``monitor review`` does), incidents written through the real
store, accounts, and a TestClient that signs in. Fixtures are in conftest.py."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

from monitor.district import DistrictLoader
from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.incidents.store import IncidentFilter, open_store
from monitor.incidents.store.migrations import upgrade
from monitor.model import Person
from monitor.web import Review, ReviewSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "district"
PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters: the tests sign in often; production uses the library defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
NOW = datetime.now(UTC).replace(microsecond=0)


def copy_district(dest: Path) -> Path:
    """The example district with its state (pseudonym key, store) under ``dest``."""
    shutil.copytree(EXAMPLE, dest)
    yaml = dest / "district.yaml"
    text = re.sub(r"(?m)^state_dir:.*$", "state_dir: var", yaml.read_text())
    yaml.write_text(text)
    return dest


def students(loader: DistrictLoader, school: str, n: int = 3) -> list[Person]:
    """The first ``n`` students of a school identifier (es, ms, hs) in the example roster."""
    d = loader.current
    assert d is not None
    out = [
        p
        for p in sorted(d.roster.people.values(), key=lambda p: p.sourced_id)
        if p.is_student and d.school_label(p.school) == school
    ]
    return out[:n]


@dataclass
class World:
    """A review app's state over a fresh store, and ways to fill it."""

    review: Review
    url: str

    @property
    def key(self) -> bytes:
        return self.review.key

    def pseudonym(self, person: Person) -> str:
        return pseudonym(self.key, person.sourced_id)

    def incident(self, person: Person, *, hours_ago: float = 1, **over: Any) -> int:
        """Write one event through the real store; returns the incident's id."""
        d = self.review.district
        base: dict[str, Any] = dict(
            time=NOW - timedelta(hours=hours_ago), person=self.pseudonym(person),
            school=d.school_label(person.school), grade=",".join(person.grades),
            age_band="teen", role=person.role, platform="tiktok", activity="view",
            action="block", rule_id="students.social", reason="Social media is blocked.",
            host="www.tiktok.com", source="proxy", severity="medium",
        )  # fmt: skip
        base.update(over)
        ev = IncidentEvent(**base)
        assert self.review.store.write_batch([ev]) == 1
        f = IncidentFilter(person=ev.person, platform=ev.platform, rule_id=ev.rule_id)
        return self.review.store.list(f, limit=1)[0].id

    def account(self, username: str, role: str, *schools: str, position: str = "") -> None:
        self.review.accounts.add(
            username, PASSWORD, role, schools=schools, position=position or role.title()
        )


def make_review(loader: DistrictLoader, url: str, **settings: Any) -> Review:
    """A Review over a new store at ``url``, migrated; background tasks off unless asked."""
    upgrade(url)
    d = loader.current
    assert d is not None
    store = open_store(url, create=False, window=d.policy.dedupe_window)
    base: dict[str, Any] = dict(purge_every=None, reload_every=None)
    base.update(settings)
    return Review(loader, store, ReviewSettings(**base), hasher=FAST_HASHER)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Browser:
    """A TestClient that signs in and remembers the session's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def sign_in(self, username: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/signin")
        resp = self.client.post(
            "/signin",
            data={"csrf": csrf_of(page.text), "username": username, "password": password},
            follow_redirects=False,
        )
        if resp.status_code == 303:
            self.csrf = csrf_of(self.client.get("/").text)
        return resp

    def get(self, url: str, **kw: Any) -> Any:
        kw.setdefault("follow_redirects", False)
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
        kw.setdefault("follow_redirects", False)
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})}, **kw)
