"""Shared pieces of the notification tests: events, a store with counselors, a config."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from monitor.incidents.events import IncidentEvent
from monitor.incidents.store import SqlIncidentStore, open_store
from monitor.incidents.store.outboxschema import OutboxFilter
from monitor.notify.config import NotifyModel
from monitor.web.accounts import Accounts

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
P1, P2, P3 = "p-00000000000000a1", "p-00000000000000b2", "p-00000000000000c3"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
# A synthetic name that exists nowhere in the store: it must never appear in a message.
NAME = "Avery Synthetic"


def event(t: datetime = T0, person: str = P1, **over: Any) -> IncidentEvent:
    base: dict[str, Any] = dict(
        time=t, person=person, school="hs", grade="10", age_band="teen", role="student",
        platform="nordvpn", activity="connect", action="block", rule_id="bypass-student",
        reason="VPN use by a student", host="nordvpn.com", source="proxy", severity="high",
    )  # fmt: skip
    base.update(over)
    return IncidentEvent(**base)


def make_store(
    tmp_path: Path, severities: tuple[str, ...] = ("high",), url: str = ""
) -> SqlIncidentStore:
    """A store (SQLite in ``tmp_path`` unless ``url``) with counselors of hs and ms."""
    url = url or f"sqlite:///{tmp_path / 'incidents.sqlite'}"
    store = open_store(url, outbox=OutboxFilter(frozenset(severities)))
    accounts = Accounts(store.engine, hasher=FAST_HASHER)
    accounts.add("couns.hs", "long-enough-password", "counselor", schools=["hs"])
    accounts.add("couns.both", "long-enough-password", "counselor", schools=["ms", "hs"])
    accounts.add("couns.ms", "long-enough-password", "counselor", schools=["ms"])
    accounts.add("gone.hs", "long-enough-password", "counselor", schools=["hs"])
    accounts.set_disabled("gone.hs", True)
    accounts.add("boss", "long-enough-password", "administrator")
    return store


def config(smtp_port: int | None, ca_file: Path | None, hook_url: str | None = None,
           **incidents: Any) -> NotifyModel:  # fmt: skip
    raw: dict[str, Any] = {
        "incidents": {
            "severities": ["high"],
            "address_domain": "district.example",
            "link": "https://review.district.example/incidents/{id}",
            "retry_initial": "30s",
            "retry_max": "10m",
            **incidents,
        }
    }
    if smtp_port is not None:
        raw["smtp"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "starttls",
            "username": "monitor",
            "password_env": "TEST_SMTP_PASSWORD",
            "from": "monitor@district.example",
            "timeout": 5,
            "ca_file": str(ca_file),
        }
    else:
        raw["incidents"]["email"] = False
    if hook_url is not None:
        raw["webhook"] = {"url": hook_url, "password_env": "TEST_HOOK_SECRET", "timeout": "1s"}
    return NotifyModel.model_validate(raw)


class Clock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, d: timedelta) -> None:
        self.t += d


def wait_for(cond: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Wait until ``cond()`` (a bound to fail a hung test, not a speed check)."""
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)
