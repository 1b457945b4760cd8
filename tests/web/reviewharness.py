"""Helpers of the review app's tests: the example district copied to a temporary directory,
a real SQLite store (migrated like ``monitor review`` does), incidents written through the real
store, accounts, and a TestClient that signs in; real servers (uvicorn in a thread, or the
``monitor review`` command) and parallel sign-in clients for them. Fixtures are in
conftest.py."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

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


# -- real servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn server on a free 127.0.0.1 port, in a thread of this
    process (so that the test can look at the app's state); yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def monitor_review(config: Path, *args: str, admin_password: str = PASSWORD) -> Iterator[str]:
    """``monitor review --config CONFIG ARGS…`` as a real process on a free loopback port (the
    command's own uvicorn settings); yields the base URL."""
    port = free_port()
    env = {**os.environ, "MONITOR_ADMIN_PASSWORD": admin_password}
    log = tempfile.TemporaryFile("w+")
    argv = [sys.executable, "-m", "monitor", "review", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", *args]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("monitor review did not start:\n" + log.read()) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


class SignInForm:
    """One HTTP client (its own connection and cookies) that has fetched the sign-in form,
    ready to post it; for bursts of parallel sign-ins against a real server."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        self.headers = dict(headers or {})
        first = self.request("GET", "/signin")
        assert first.status == 200, first.text
        self.csrf = csrf_of(first.text)
        cookies = [c.split(";")[0] for c in first.headers.get_all("set-cookie") or []]
        self.cookie = "; ".join(cookies)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        r = self.conn.getresponse()
        return Answer(r.status, r.headers, r.read().decode())

    def post(self, username: str, password: str, headers: dict[str, str] | None = None) -> Answer:
        body = urlencode({"csrf": self.csrf, "username": username, "password": password})
        return self.request("POST", "/signin", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie,
            **(headers or {}),
        })  # fmt: skip

    def close(self) -> None:
        self.conn.close()


def burst(base: str, attempts: list[tuple[str, str]]) -> list[Answer]:
    """Post the sign-in form once per (username, password), all at the same moment, each from
    its own client thread; the answers in the order of ``attempts``."""
    forms = [SignInForm(base) for _ in attempts]  # every form fetched before the burst
    start = threading.Barrier(len(attempts))
    answers: list[Answer | None] = [None] * len(attempts)

    def one(i: int) -> None:
        start.wait()
        answers[i] = forms[i].post(*attempts[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(attempts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for f in forms:
        f.close()
    assert all(a is not None for a in answers), "a sign-in of the burst got no answer"
    return [a for a in answers if a is not None]
