"""Web security pieces: response headers, cookies, CSRF tokens and sign-in rate limiting."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable

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


class SignInLimiter:
    """At most ``limit`` failed sign-ins per username and per client address within
    ``window`` seconds; then sign-in is refused (without checking the password) until the
    oldest failure leaves the window. Memory is bounded by ``max_keys``."""

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
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until sign-in may be tried again (0: now)."""
        now = self.clock()
        wait = 0.0
        for key in (f"u:{username}", f"a:{client}"):
            times = self._recent(key, now)
            if len(times) >= self.limit:
                wait = max(wait, self.window - (now - times[-self.limit]))
        return wait

    def failed(self, username: str, client: str) -> None:
        now = self.clock()
        for key in (f"u:{username}", f"a:{client}"):
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username}", None)
