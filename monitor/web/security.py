"""Web security pieces: response headers, cookies, CSRF tokens and sign-in rate limiting."""

from __future__ import annotations

import hmac
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "monitor_session"
SIGNIN_COOKIE = "monitor_signin"  # the sign-in form's CSRF token (before there is a session)

# No script runs on any page, nothing loads from elsewhere, no page may be framed.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds the headers above to every response, and ``Cache-Control: no-store`` to every
    page but the stylesheet (student data must not linger in shared browser caches)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def set_cookie(
    response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> None:
    """A cookie the page's scripts cannot read, sent on same-site requests only."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict"
    )


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Attempt:
    """A sign-in attempt and the slot it holds in the limiter (``slot`` 0: refused, no slot
    taken; try again in ``retry_after`` seconds)."""

    username: str
    client: str
    slot: int
    retry_after: float = 0.0

    @property
    def refused(self) -> bool:
        return self.slot == 0


class SignInLimiter:
    """At most ``limit`` failed sign-ins per username and per client address within
    ``window`` seconds; then sign-in is refused (without checking the password) until the
    oldest failure leaves the window.

    An attempt takes its slot under a lock *before* the password is checked
    (:meth:`reserve`), so parallel attempts cannot all pass the check while the first hashes
    are still being computed: no more than ``limit`` passwords are ever checked per username
    or address in a window. A wrong password keeps its slot (it is the failure); a right one
    gives its address slot back and forgives the username's failures (:meth:`settle`).
    Memory is bounded by ``max_keys``. Safe to call from any thread."""

    def __init__(
        self,
        limit: int = 5,
        window: float = 15 * 60,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        # key ("u:name" or "a:address") -> (time, slot) of failures and attempts under way
        self._slots: OrderedDict[str, list[tuple[float, int]]] = OrderedDict()
        self._pending: set[int] = set()  # slots whose password check is under way
        self._ids = itertools.count(1)

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str]:
        return f"u:{username}", f"a:{client}"

    def _recent(self, key: str, now: float) -> list[tuple[float, int]]:
        slots = [s for s in self._slots.get(key, []) if now - s[0] < self.window]
        if slots:
            self._slots[key] = slots
        else:
            self._slots.pop(key, None)
        return slots

    def _wait(self, keys: tuple[str, ...], now: float) -> float:
        wait = 0.0
        for key in keys:
            slots = self._recent(key, now)
            if len(slots) >= self.limit:
                wait = max(wait, self.window - (now - slots[-self.limit][0]))
        return wait

    def _add(self, keys: tuple[str, ...], now: float, slot: int) -> None:
        for key in keys:
            self._slots.setdefault(key, []).append((now, slot))
            self._slots.move_to_end(key)
        while len(self._slots) > self.max_keys:
            self._slots.popitem(last=False)

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until sign-in may be tried again (0: now)."""
        with self._lock:
            return self._wait(self._keys(username, client), self.clock())

    def reserve(self, username: str, client: str) -> Attempt:
        """Take a slot for one attempt, or refuse it (``refused``, with ``retry_after``)
        when the username or the address has no slot left. Settle every attempt taken."""
        keys = self._keys(username, client)
        with self._lock:
            now = self.clock()
            wait = self._wait(keys, now)
            if wait > 0:
                return Attempt(username, client, 0, wait)
            slot = next(self._ids)
            self._add(keys, now, slot)
            self._pending.add(slot)
            return Attempt(username, client, slot)

    def settle(self, attempt: Attempt, *, succeeded: bool) -> None:
        """The attempt's password was checked: a failure keeps its slot; a success frees the
        address's slot and forgives the username's failures (not the attempts still under
        way, which count when they fail)."""
        if attempt.refused:
            return
        user, address = self._keys(attempt.username, attempt.client)
        with self._lock:
            self._pending.discard(attempt.slot)
            if not succeeded:
                return
            kept = [s for s in self._slots.get(user, []) if s[1] in self._pending]
            if kept:
                self._slots[user] = kept
            else:
                self._slots.pop(user, None)
            if address in self._slots:
                left = [s for s in self._slots[address] if s[1] != attempt.slot]
                if left:
                    self._slots[address] = left
                else:
                    self._slots.pop(address)

    def failed(self, username: str, client: str) -> None:
        """Count one failure now (an attempt that was not reserved)."""
        with self._lock:
            self._add(self._keys(username, client), self.clock(), 0)
