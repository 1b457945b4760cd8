"""Linux network namespaces for tests: a small lab of namespaces joined by veth pairs, built by
the test itself (root only) and removed whole afterwards.

    with Lab.create() as lab:
        gw, cl = lab.namespace("gw"), lab.namespace("cl")
        lab.link(gw, "lan0", ["192.0.2.1/24"], cl, "eth0", ["192.0.2.11/24"])
        gw.nft(ruleset)                            # nft -f - inside gw
        proc = gw.popen(["monitor", "proxy", …])   # a process inside gw
        cl.run(["curl", …])                        # and one inside cl
        origin = gw.call(Origin().start, ca)       # sockets made inside gw, served from here

Names: every namespace is ``smon-<pid>-<role>`` (the pid of the test process), so concurrent
runs do not collide and :func:`remove_leftovers` can remove what a dead run left behind (its
pid no longer runs). Veth pairs are created directly inside their two namespaces, so nothing is
created in the host's namespace and deleting a namespace removes its links, addresses, routes
and nftables ruleset with it. Processes still running inside a namespace are killed (by pid,
from ``ip netns pids``) before it is deleted. Addresses: documentation ranges only
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), and no route out.

The next step (transparent mode) adds an "internet" namespace with its own link, DNS and
routes: :meth:`Lab.namespace` and :meth:`Lab.link` are meant for that too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PREFIX = "smon-"
NETNS_DIR = Path("/run/netns")
_NAME = re.compile(rf"{re.escape(PREFIX)}(\d+)-[a-z0-9]+")


def missing_requirements() -> str:
    """Why namespace tests cannot run here ('' when they can)."""
    if not hasattr(os, "setns"):
        return "os.setns needs Python 3.12 on Linux"
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns, veth, nftables)"
    missing = [t for t in ("ip", "nft", "curl") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"not found: {', '.join(missing)}: apt-get install -y iproute2 nftables curl "
            "(scripts/test does so)",
            pytrace=False,
        )
    return ""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


def namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_inside(name: str) -> None:
    """Kill what still runs in a namespace of ours (processes our tests started)."""
    pids = [int(p) for p in _ip("netns", "pids", name, check=False).stdout.split() if p.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def delete_namespace(name: str) -> None:
    _kill_inside(name)
    _ip("netns", "delete", name, check=False)


def remove_leftovers() -> list[str]:
    """Delete the namespaces a dead test run left behind (ours by name, their pid gone)."""
    removed = []
    for name in namespaces():
        m = _NAME.fullmatch(name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            delete_namespace(name)
            removed.append(name)
    return removed


@dataclass
class Namespace:
    name: str

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self, cmd: Sequence[str], *, check: bool = True, timeout: float = 60, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            self.argv(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"[{self.name}] {' '.join(cmd)}: {out.stderr.strip()}")
        return out

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(cmd), **kw)

    def ip(self, *args: str) -> None:
        _ip("-n", self.name, *args)

    def nft(self, ruleset: str) -> None:
        self.run(["nft", "-f", "-"], input=ruleset)

    def call[R](self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` in a thread that has entered this namespace: sockets it creates belong
        here, and keep doing so when other threads use them."""
        box: dict[str, Any] = {}

        def inside() -> None:
            try:
                fd = os.open(NETNS_DIR / self.name, os.O_RDONLY)
                try:
                    os.setns(fd, os.CLONE_NEWNET)
                finally:
                    os.close(fd)
                box["value"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e

        t = threading.Thread(target=inside, name=f"netns-{self.name}")
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]


@dataclass
class Lab:
    """Namespaces and links of one test run; :meth:`close` removes them all."""

    tag: str
    spaces: list[Namespace] = field(default_factory=list)

    @classmethod
    def create(cls) -> Lab:
        remove_leftovers()
        return cls(f"{PREFIX}{os.getpid()}")

    def namespace(self, role: str) -> Namespace:
        ns = Namespace(f"{self.tag}-{role}")
        if ns.name in namespaces():  # an earlier lab of this very process
            delete_namespace(ns.name)
        _ip("netns", "add", ns.name)
        self.spaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def link(
        self,
        a: Namespace,
        a_if: str,
        a_addrs: Sequence[str],
        b: Namespace,
        b_if: str,
        b_addrs: Sequence[str],
    ) -> None:
        """A veth pair between ``a`` and ``b``, created inside them, with these addresses
        (IPv6 ones without duplicate address detection, usable at once)."""
        _ip("link", "add", a_if, "netns", a.name, "type", "veth", "peer", b_if, "netns", b.name)
        for ns, ifname, addrs in ((a, a_if, a_addrs), (b, b_if, b_addrs)):
            for addr in addrs:
                extra = ["nodad"] if ":" in addr else []
                ns.ip("addr", "add", addr, "dev", ifname, *extra)
            ns.ip("link", "set", ifname, "up")

    def close(self) -> None:
        for ns in reversed(self.spaces):
            delete_namespace(ns.name)
        self.spaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def lab() -> Iterator[Lab]:
    """A :class:`Lab`, removed however the test ends (skips without root)."""
    why = missing_requirements()
    if why:
        pytest.skip(why)
    the_lab = Lab.create()
    try:
        yield the_lab
    finally:
        the_lab.close()


@dataclass
class Response:
    status: int  # the last HTTP status curl saw (0: none)
    headers: dict[str, str]
    body: str
    issuer: str  # the TLS certificate issuer the client saw ('' without TLS)
    stderr: str


def curl(
    ns: Namespace,
    url: str,
    *,
    source: str,
    proxy: str = "",
    cacert: Path | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Response:
    """The real curl inside ``ns``, from the local address ``source`` (``proxy``: through an
    explicit proxy, http://HOST:PORT)."""
    cmd = ["curl", "-sS", "-v", "--http1.1", "--max-time", str(timeout), "--interface", source]
    cmd += ["-D", "-", "-o", "-"]
    if proxy:
        cmd += ["-x", proxy]
    if cacert is not None:
        cmd += ["--cacert", str(cacert)]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    # bytes: text mode would turn the heads' CRLF into LF
    r = subprocess.run(ns.argv([*cmd, url]), capture_output=True, timeout=timeout + 10, check=False)
    stderr = r.stderr.decode("utf-8", "replace")
    issuer = ""
    for line in stderr.splitlines():
        if "issuer:" in line:
            issuer = line.split("issuer:", 1)[1].strip()
    status, hdrs, body = 0, {}, r.stdout.decode("utf-8", "replace")
    while body.startswith("HTTP/"):  # every response head (a CONNECT's too), then the body
        head, _, body = body.partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return Response(status, hdrs, body, issuer, stderr)


def wait_for[R](predicate: Callable[[], R], timeout: float, what: str, step: float = 0.1) -> R:
    """Poll until ``predicate()`` is truthy; its value, or AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
