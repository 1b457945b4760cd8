"""Load generator for bench_proxy.py: a lean HTTP/1.1 keep-alive client and a lean origin.

Both are asyncio ``Protocol`` classes (no streams, no HTTP library) so that on the 2-core
machine, where mitmdump keeps one core busy, the load costs as little of the other as possible
(about 30 µs of CPU per request each, client and origin, with TLS).

Client: N concurrent keep-alive connections bound to a loopback demo address, each sending one
request at a time (no pipelining) and reading a Content-Length body. Plain HTTP uses
absolute-form requests to the proxy; HTTPS sends CONNECT, then TLS (to the proxy's
certificate when intercepted, to the origin's when passed through), then origin-form requests.

Origin (``python bench/loadgen.py origin --cert C --key K``, run as its own process): HTTPS and
plain HTTP on 127.0.0.1, a fixed small answer to every request, and per-host counters of the
requests it saw and of how many carried ``YouTube-Restrict: Strict``, served as JSON at
``/__origin_stats`` on the plain port.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

STATS_PATH = b"/__origin_stats"
RESTRICT = b"\r\nyoutube-restrict: strict"

# --- client -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how one load run sends its requests."""

    proxy_port: int
    client: str  # loopback source address, e.g. 127.0.0.13: the proxy's idea of who it is
    host: str
    tls: bool
    sslctx: ssl.SSLContext | None = None
    path: str = "/watch?v=bench"
    direct: bool = False  # no proxy: proxy_port is the origin's (the load generator's ceiling)
    headers: tuple[tuple[str, str], ...] = (
        ("User-Agent", "Mozilla/5.0 (X11; CrOS x86_64) bench-proxy/1"),
        ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "document"),
    )

    def request_bytes(self) -> bytes:
        # absolute-form for plain HTTP through a proxy, origin-form inside a tunnel
        target = self.path if self.tls or self.direct else f"http://{self.host}{self.path}"
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connect_bytes(self) -> bytes:
        return f"CONNECT {self.host}:443 HTTP/1.1\r\nHost: {self.host}:443\r\n\r\n".encode()


class _Conn(asyncio.Protocol):
    """One client connection: one outstanding request, answers framed by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.head_only = False
        self.lost = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closed.done():
            self.closed.set_result(None)
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionError(f"connection closed: {exc}"))

    def _complete(self) -> None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end])
        length = 0
        if not self.head_only:  # a CONNECT's 2xx answer has no body whatever it says
            low = head.lower()
            i = low.find(b"\r\ncontent-length:")
            if i >= 0:
                j = low.find(b"\r\n", i + 17)
                length = int(low[i + 17 : j if j >= 0 else len(low)])
            elif b"\r\ntransfer-encoding:" in low:
                self._fail(ValueError("chunked answer: the benchmark expects Content-Length"))
                return
        total = end + 4 + length
        if len(buf) < total:
            return
        del buf[:total]
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(head)

    def _fail(self, exc: Exception) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(exc)

    async def exchange(self, data: bytes, head_only: bool = False) -> bytes:
        """Send one request and return the answer's head (status line and headers)."""
        if self.lost:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.head_only = head_only
        assert isinstance(self.transport, asyncio.WriteTransport)
        self.transport.write(data)
        return await self.waiter

    async def close(self, timeout: float = 5.0) -> None:
        """Close and wait until the socket is gone: a connection left to the garbage collector
        would stay open in the proxy (and in its memory) into the next run."""
        if self.transport is None:
            return
        self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.abort()


def status_of(head: bytes) -> int:
    return int(head[9:12])


def issuer_of(transport: asyncio.BaseTransport) -> str:
    """The issuer of the TLS peer's certificate, as 'CN=…, O=…'."""
    sslobj = transport.get_extra_info("ssl_object")
    cert = sslobj.getpeercert() if sslobj is not None else None
    if not cert:
        return ""
    parts = [f"{k}={v}" for rdn in cert.get("issuer", ()) for k, v in rdn]
    return ", ".join(parts)


async def open_conn(t: Target) -> tuple[_Conn, str]:
    """TCP to the proxy from the client address; for HTTPS also CONNECT and TLS.

    Returns the connection and the TLS peer certificate's issuer ('' for plain HTTP)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(
        _Conn, "127.0.0.1", t.proxy_port, local_addr=(t.client, 0)
    )
    if not t.tls:
        return proto, ""
    try:
        if not t.direct:
            head = await proto.exchange(t.connect_bytes(), head_only=True)
            if status_of(head) != 200:
                line = head.split(b"\r\n", 1)[0].decode(errors="replace")
                raise ConnectionError(f"CONNECT {t.host}: {line}")
        assert t.sslctx is not None
        tls = await loop.start_tls(transport, proto, t.sslctx, server_hostname=t.host)
    except BaseException:
        transport.abort()
        raise
    assert tls is not None
    proto.transport = tls  # start_tls does not call connection_made again
    return proto, issuer_of(tls)


@dataclass
class RunResult:
    requests: int = 0
    seconds: float = 0.0
    connections: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    issuers: Counter[str] = field(default_factory=Counter)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def run_load(
    t: Target,
    requests: int,
    conns: int,
    *,
    per_conn: int | None = None,
    max_errors: int = 20,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Send ``requests`` requests over ``conns`` concurrent keep-alive connections.

    A connection is replaced after ``per_conn`` requests (None: it lives until the budget
    is spent). The clock includes connection set-up, so per-connection work counts too."""
    res = RunResult()
    req = t.request_bytes()
    budget = requests

    async def worker() -> None:
        nonlocal budget
        while budget > 0 and res.errors < max_errors:
            try:
                conn, issuer = await open_conn(t)
            except (OSError, ConnectionError, ssl.SSLError) as e:
                res.errors += 1
                res.first_error = res.first_error or f"connect: {e!r}"
                await asyncio.sleep(0.05)
                continue
            res.connections += 1
            res.issuers[issuer] += 1
            n = 0
            try:
                while budget > 0 and (per_conn is None or n < per_conn):
                    budget -= 1
                    try:
                        head = await conn.exchange(req)
                    except (OSError, ConnectionError, ValueError) as e:
                        budget += 1  # not done: another connection takes it
                        res.errors += 1
                        res.first_error = res.first_error or f"request: {e!r}"
                        break
                    n += 1
                    res.requests += 1
                    res.statuses[status_of(head)] += 1
                    if progress is not None:
                        progress(res.requests)
            finally:
                await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    res.seconds = time.perf_counter() - start
    return res


# --- origin ---------------------------------------------------------------------------------


def _answer(body_bytes: int) -> bytes:
    body = b'{"origin":"ok","pad":"' + b"x" * max(0, body_bytes - 24) + b'"}'
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        'Alt-Svc: h3=":443"; ma=86400\r\n'  # the addon strips it on catalogue hosts
        "Cache-Control: no-store\r\n"
        "\r\n"
    )
    return head.encode() + body


class _OriginConn(asyncio.Protocol):
    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.buf = bytearray()
        self.transport: asyncio.WriteTransport | None = None
        self.counted = False  # made a request other than the stats one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            low = bytes(buf[:end]).lower()
            length = 0
            i = low.find(b"\r\ncontent-length:")
            if i >= 0:
                j = low.find(b"\r\n", i + 17)
                length = int(low[i + 17 : j if j >= 0 else len(low)])
            if len(buf) < end + 4 + length:
                return
            del buf[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(self.origin.handle(low, self))


@dataclass
class Origin:
    """Counts requests per Host header, those carrying YouTube-Restrict: Strict, and the
    connections they came on (to see that the proxy keeps its upstream connections)."""

    answer: bytes
    seen: dict[str, list[int]] = field(default_factory=dict)
    connections: int = 0

    def handle(self, low_head: bytes, conn: _OriginConn) -> bytes:
        first_end = low_head.find(b"\r\n")
        if STATS_PATH in low_head[:first_end]:
            body = json.dumps({"hosts": self.seen, "connections": self.connections}).encode()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        if not conn.counted:
            conn.counted = True
            self.connections += 1
        i = low_head.find(b"\r\nhost:")
        host = ""
        if i >= 0:
            j = low_head.find(b"\r\n", i + 7)
            host = low_head[i + 7 : j if j >= 0 else len(low_head)].strip().decode()
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        counts = self.seen.get(host)
        if counts is None:
            counts = self.seen[host] = [0, 0]
        counts[0] += 1
        if RESTRICT in low_head:
            counts[1] += 1
        return self.answer


async def serve_origin(cert: str, key: str, body_bytes: int) -> None:
    loop = asyncio.get_running_loop()
    origin = Origin(_answer(body_bytes))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    https = await loop.create_server(
        lambda: _OriginConn(origin), "127.0.0.1", 0, ssl=ctx, backlog=512
    )
    http = await loop.create_server(lambda: _OriginConn(origin), "127.0.0.1", 0, backlog=512)
    ports = {
        "https_port": https.sockets[0].getsockname()[1],
        "http_port": http.sockets[0].getsockname()[1],
    }
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    https.close()
    http.close()


def child_setup(cpus: set[int]) -> Callable[[], None]:
    """A ``preexec_fn``: pin the child (and every thread it will start) to ``cpus`` (empty:
    leave it), and have it receive SIGTERM when the benchmark dies, even by SIGKILL, so no
    process is left behind (Linux PR_SET_PDEATHSIG)."""

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
        except OSError:
            pass

    return setup


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="The benchmark's origin server (127.0.0.1 only).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("origin")
    o.add_argument("--cert", required=True)
    o.add_argument("--key", required=True)
    o.add_argument("--body-bytes", type=int, default=1024)
    args = ap.parse_args(argv)
    asyncio.run(serve_origin(args.cert, args.key, args.body_bytes))


if __name__ == "__main__":
    main()
