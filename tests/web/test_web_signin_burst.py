"""Sign-in rate limiting under a concurrent burst, against a real uvicorn server on 127.0.0.1:
each attempt takes its slot before the password is hashed, so no more than the limit are ever
verified, however many arrive at once; the rest get 429 with Retry-After."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from reviewharness import PASSWORD, Answer, World, burst, live_server
from sqlalchemy import select

from monitor.district import DistrictLoader
from monitor.incidents.store import open_store
from monitor.incidents.store.accessschema import sessions
from monitor.incidents.store.migrations import upgrade
from monitor.web import Review, ReviewSettings, create_app

BURST = 30


class CountingHasher(PasswordHasher):
    """A real argon2id hasher (costly enough that verifications overlap) that counts its
    verifications: each one is a password guess the limit must have allowed."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=8 * 1024, parallelism=1)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Any:
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def counted(loader: DistrictLoader, tmp_path: Path) -> Iterator[tuple[World, CountingHasher]]:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    upgrade(url)
    d = loader.current
    assert d is not None
    hasher = CountingHasher()
    review = Review(
        loader,
        open_store(url, create=False, window=d.policy.dedupe_window),
        ReviewSettings(purge_every=None, reload_every=None),
        hasher=hasher,
    )
    w = World(review, url)
    w.account("hs-counselor", "counselor", "hs")
    w.account("admin", "administrator")
    assert hasher.verified == 0  # making accounts hashes, it verifies nothing
    yield w, hasher
    review.close()


def check_burst(w: World, hasher: CountingHasher, answers: list[Answer]) -> None:
    limit = w.review.settings.signin_limit
    statuses = sorted(a.status for a in answers)
    assert hasher.verified <= limit, f"{hasher.verified} passwords verified, limit {limit}"
    assert statuses == [401] * limit + [429] * (BURST - limit), statuses
    assert hasher.verified == limit  # the ones allowed were really checked
    for a in answers:
        if a.status == 429:
            assert int(a.headers["Retry-After"]) > 0
            assert "Too many failed sign-ins" in a.text
        else:
            assert "Wrong username or password" in a.text
    failed = [r for r in w.review.access.list() if r.action == "sign_in_failed"]
    assert len(failed) == limit


def test_a_burst_of_wrong_passwords_for_one_account(
    counted: tuple[World, CountingHasher],
) -> None:
    w, hasher = counted
    with live_server(create_app(w.review)) as base:
        answers = burst(base, [("hs-counselor", f"wrong guess {i}") for i in range(BURST)])
        check_burst(w, hasher, answers)
        # the account stays locked for the right password too, without a verification
        (late,) = burst(base, [("hs-counselor", PASSWORD)])
        assert late.status == 429 and hasher.verified == w.review.settings.signin_limit


def test_a_burst_of_many_usernames_from_one_address(
    counted: tuple[World, CountingHasher],
) -> None:
    w, hasher = counted
    names = ["hs-counselor", "admin"] + [f"guess{i}" for i in range(BURST - 2)]
    with live_server(create_app(w.review)) as base:
        answers = burst(base, [(n, "not the password") for n in names])
        check_burst(w, hasher, answers)
        # the address is limited: a right password for an untouched account is refused now
        (late,) = burst(base, [("admin", PASSWORD)])
        assert late.status == 429


def test_a_success_gives_its_slot_back(counted: tuple[World, CountingHasher]) -> None:
    """Signing in right does not use up the address's allowance, and forgives the account's
    failures (as before): colleagues behind one address are not locked out by successes."""
    w, hasher = counted
    limit = w.review.settings.signin_limit
    with live_server(create_app(w.review)) as base:
        wrong = burst(base, [("hs-counselor", "wrong!")] * (limit - 1))
        assert [a.status for a in wrong] == [401] * (limit - 1)
        for _ in range(3):
            (ok,) = burst(base, [("hs-counselor", PASSWORD)])
            assert ok.status == 303
        # limit - 1 failures on the address, none on the account: one more try is allowed
        (one,) = burst(base, [("admin", "wrong!")])
        assert one.status == 401
        (locked,) = burst(base, [("admin", PASSWORD)])
        assert locked.status == 429
    with w.review.store.engine.connect() as conn:
        assert len(conn.execute(select(sessions.c.token_hash)).all()) == 3


def test_a_success_does_not_forgive_attempts_still_under_way() -> None:
    from monitor.web.security import SignInLimiter

    now = [0.0]
    lim = SignInLimiter(2, 60, clock=lambda: now[0])
    right = lim.reserve("pat", "10.0.0.1")
    guess = lim.reserve("pat", "10.0.0.2")
    refused = lim.reserve("pat", "10.0.0.3")  # two checks under way fill the account's slots
    assert refused.refused and refused.retry_after == 60
    lim.settle(right, succeeded=True)  # forgives the account, not the guess still being checked
    another = lim.reserve("pat", "10.0.0.4")
    assert not another.refused and lim.reserve("pat", "10.0.0.5").refused
    lim.settle(guess, succeeded=False)
    lim.settle(another, succeeded=False)
    assert lim.retry_after("pat", "10.0.0.9") == 60  # two failures: locked for the window
    assert lim.retry_after("sam", "10.0.0.1") == 0  # the right password freed its address slot
    now[0] = 61
    assert not lim.reserve("pat", "10.0.0.9").refused
