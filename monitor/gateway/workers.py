"""Proxy workers on one gateway: N mitmdump processes, each on its own port, supervised.

One mitmproxy process uses one core, so a gateway runs one worker per core. The kernel spreads
devices over the workers by their address (:mod:`monitor.gateway.nftables`); this module plans
the workers' ports, checks them before anything starts, and keeps the workers running:

- worker ``i`` (named ``w{i}``) listens on ``port_base + i`` and serves its metrics on
  ``metrics_base + i`` (one Prometheus target per worker); its journal and spool are its own
  (``monitor_instance=w{i}``).
- Worker ``w0`` starts first (it creates mitmproxy's CA on the first start, which the others
  then read: two workers must not each make one), then the others together. A worker is
  ready when it has listened on its port for 2 s (mitmdump's start-up check, which exits on an
  error, runs just after it starts listening). A worker that fails before its first ready
  stops everything: the configuration was checked, so the cause (a port, an option) stays.
- A worker that exits later, however (SIGKILL included), is started again after a delay: 0.5 s,
  doubling for each run in a row shorter than 30 s, at most 30 s. A worker that exits before it
  is ready 5 times in a row stops the supervisor, which reports its exit and last log lines.
  The other workers keep serving throughout a restart.
- SIGTERM or SIGINT stops every worker with SIGTERM (each flushes its incident queue), and
  SIGKILL after 30 s. Workers get SIGTERM too if the supervisor itself dies (Linux
  ``PR_SET_PDEATHSIG``), and run in their own session, so a terminal's Ctrl-C reaches the
  supervisor only.

The workers' output is passed on line by line, each line prefixed with the worker's name, and the
last lines of each are kept for the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TextIO

DEFAULT_PORT_BASE = 13128  # below the ephemeral range (32768+), unlike 8080 rarely taken
MAX_WORKERS = 512
LAST_LINES = 20


def default_count() -> int:
    """One worker per core this process may run on (CPU affinity, e.g. systemd's
    ``CPUAffinity=``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_count(text: str) -> int:
    """``--workers`` value: a whole number from 1, or ``auto`` (one per core)."""
    value = text.strip().lower()
    if value == "auto":
        return default_count()
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of workers (a whole number, or auto)") from None
    if n < 1:
        raise ValueError(f"{n} workers: at least 1 (or auto: one per core)")
    if n > MAX_WORKERS:
        raise ValueError(f"{n} workers: at most {MAX_WORKERS}")
    return n


def split_hostport(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) → (host, port), port within 1-65535."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{what} {text!r} is not HOST:PORT")
    if not 0 < int(port) < 65536:
        raise ValueError(f"{what} {text!r}: port {port} is outside 1-65535")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Worker:
    """One worker's place: its index, where it listens and where it serves metrics."""

    index: int
    host: str  # as written after --listen: an address, 0.0.0.0, or * (IPv4 and IPv6)
    port: int
    metrics: str  # HOST:PORT, or '' without metrics

    @property
    def name(self) -> str:
        return f"w{self.index}"

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def plan(count: int, host: str, port_base: int, metrics: str, front_port: int) -> list[Worker]:
    """The workers' ports, checked for range and overlap (``ValueError`` says which)."""
    last = port_base + count - 1
    if port_base < 1 or last > 65535:
        raise ValueError(
            f"--worker-port-base {port_base} with {count} workers gives ports {port_base}-{last}, "
            f"outside 1-65535: choose a base between 1 and {65536 - count}"
        )
    if port_base <= front_port <= last:
        raise ValueError(
            f"the --listen port {front_port} is one of the worker ports {port_base}-{last}: it "
            "is the port devices use, redirected to the workers; choose another "
            "--worker-port-base"
        )
    m_host, m_base = ("", 0)
    if metrics:
        m_host, m_base = split_hostport(metrics, "--metrics")
        m_last = m_base + count - 1
        if m_last > 65535:
            raise ValueError(
                f"--metrics {metrics} with {count} workers gives ports {m_base}-{m_last}, "
                f"outside 1-65535: choose a port between 1 and {65536 - count}"
            )
        if m_base <= last and port_base <= m_last:
            raise ValueError(
                f"metrics ports {m_base}-{m_last} overlap the worker ports {port_base}-{last}"
            )
        if m_base <= front_port <= m_last:
            raise ValueError(f"the --listen port {front_port} is one of the metrics ports")
    host = host or "127.0.0.1"  # as a single proxy: no host is loopback
    out = []
    for i in range(count):
        m = ""
        if metrics:
            mh = f"[{m_host}]" if ":" in m_host else m_host
            m = f"{mh}:{m_base + i}"
        out.append(Worker(i, host, port_base + i, m))
    return out


# -- ports ------------------------------------------------------------------------------------


def _bind_hosts(host: str) -> list[str]:
    if host == "*":
        return ["0.0.0.0", "::"]
    return [host]


def _try_bind(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # as mitmproxy and the metrics server bind: a connection in TIME_WAIT is no conflict
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
    except OSError as e:
        if family == socket.AF_INET6 and e.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            if host == "::":
                return None  # no IPv6 on this host: mitmproxy listens on IPv4 alone
        return e
    return None


def check_free(workers: Sequence[Worker]) -> None:
    """Every port the workers will listen on can be bound now; else ``ValueError`` naming the
    port, its use and what to do."""
    for w in workers:
        wanted = [(w.host, w.port, f"worker {w.name}'s proxy port", "--worker-port-base")]
        if w.metrics:
            mh, mp = split_hostport(w.metrics, "--metrics")
            wanted.append((mh or "127.0.0.1", mp, f"worker {w.name}'s metrics port", "--metrics"))
        for host, port, use, option in wanted:
            for h in _bind_hosts(host):
                err = _try_bind(h, port)
                if err is None:
                    continue
                where = f"{h}:{port}" if ":" not in h else f"[{h}]:{port}"
                if err.errno == errno.EADDRINUSE:
                    raise ValueError(
                        f"port {port} ({use}) is in use on {where}: stop what listens there "
                        f"(`ss -ltnp 'sport = :{port}'` names it; an earlier `monitor proxy`?) "
                        f"or choose another {option}"
                    )
                if err.errno == errno.EACCES:
                    raise ValueError(
                        f"port {port} ({use}): permission denied on {where} (ports below 1024 "
                        f"need privileges): choose another {option}"
                    )
                if err.errno == errno.EADDRNOTAVAIL:
                    raise ValueError(
                        f"cannot listen on {where} ({use}): {h} is not an address of this host"
                    )
                raise ValueError(f"cannot listen on {where} ({use}): {err.strerror or err}")


def ephemeral_overlap(workers: Sequence[Worker]) -> str:
    """A warning when worker ports fall in the kernel's range for outgoing connections (an
    upstream connection may then hold a worker's port while it restarts), else ''."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return ""
    ports = [w.port for w in workers]
    if max(ports) >= low and min(ports) <= high:
        return (
            f"worker ports {min(ports)}-{max(ports)} overlap the ephemeral port range "
            f"{low}-{high}: choose a --worker-port-base below {low - len(ports)}"
        )
    return ""


def listening_sockets() -> dict[int, set[str]] | None:
    """Port → inodes of the TCP sockets listening on it, from Linux's /proc (None elsewhere).
    On a busy gateway the tables are long: read them once for every worker being checked."""
    out: dict[int, set[str]] = {}
    found = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A":  # TCP_LISTEN
                out.setdefault(int(cols[1].rsplit(":", 1)[1], 16), set()).add(cols[9])
    return out if found else None


def listening(
    pid: int, port: int, host: str = "127.0.0.1", sockets: dict[int, set[str]] | None = None
) -> bool:
    """Whether process ``pid`` listens on TCP ``port``: its open sockets against the kernel's
    listening sockets (``sockets``, else read now; no connection is made, so the proxy counts
    nothing), or where there is no /proc, whether something answers on the port."""
    table = sockets if sockets is not None else listening_sockets()
    if table is not None:
        inodes = table.get(port)
        if not inodes:
            return False
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
        return False
    probe = "127.0.0.1" if host in ("", "*", "0.0.0.0") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((probe, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- the supervisor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before restarting a worker that ran a while
    max_delay: float = 30.0
    stable_after: float = 30.0  # a run this long resets the delay
    give_up_after: int = 5  # exits before ready, in a row, before the supervisor stops
    stop_timeout: float = 30.0  # SIGTERM, then SIGKILL after this long
    settle: float = 2.0  # listening this long before a worker counts as ready
    tick: float = 0.1


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _pdeathsig() -> Callable[[], None] | None:
    """A preexec function asking Linux to send SIGTERM to the child when the supervisor dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before the call
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass
class _Slot:
    """One worker's process and its history."""

    worker: Worker
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    listening_since: float | None = None
    ever_ready: bool = False
    not_ready_exits: int = 0  # in a row
    short_runs: int = 0  # in a row
    restart_at: float | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))
    reader: threading.Thread | None = None


class WorkerFailed(RuntimeError):
    """The supervisor gave up on a worker (the message says why, with its last lines)."""


class Supervisor:
    """Runs ``workers`` (``argv_of(worker)`` each) until a signal or a failure; see the module
    docstring for the rules. :meth:`run` returns the exit status for the command."""

    def __init__(
        self,
        workers: Sequence[Worker],
        argv_of: Callable[[Worker], list[str]],
        *,
        out: TextIO,
        policy: RestartPolicy = RestartPolicy(),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_ready: Callable[[list[bool]], object] | None = None,
    ) -> None:
        self.slots = [_Slot(w, argv_of(w)) for w in workers]
        # called with every worker's readiness whenever it changes (nftables failover)
        self.on_ready = on_ready
        self._last_ready: list[bool] | None = None
        self.out = out
        self.policy = policy
        self.env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
        self.cwd = cwd
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._preexec = _pdeathsig()
        self._tick_sockets: tuple[dict[int, set[str]] | None] | None = None

    # -- output ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"monitor: {text}\n")
            self.out.flush()

    def _pump(self, slot: _Slot, stream: IO[bytes]) -> None:
        name = slot.worker.name
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            slot.lines.append(line)
            with self._lock:
                self.out.write(f"{name}: {line}\n")
                self.out.flush()
        stream.close()

    # -- processes -------------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.lines.clear()
        slot.ready = False
        slot.listening_since = None
        slot.restart_at = None
        proc = subprocess.Popen(
            slot.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C in a terminal reaches the supervisor only
            preexec_fn=self._preexec,
        )
        slot.proc, slot.started = proc, time.monotonic()
        assert proc.stdout is not None
        slot.reader = threading.Thread(
            target=self._pump, args=(slot, proc.stdout), name=f"log-{slot.worker.name}", daemon=True
        )
        slot.reader.start()

    def _sockets(self) -> dict[int, set[str]] | None:
        """The listening sockets, read at most once a tick (see :func:`listening_sockets`)."""
        if self._tick_sockets is None:
            self._tick_sockets = (listening_sockets(),)
        return self._tick_sockets[0]

    def _check_ready(self, slot: _Slot) -> None:
        """Ready: listening on its port, and still so ``settle`` seconds later. mitmdump
        listens before its last start-up check, which exits on an error logged during start-up
        (an addon's bad option): the settling time lets that exit happen first."""
        proc = slot.proc
        if proc is None or slot.ready or proc.poll() is not None:
            return
        now = time.monotonic()
        if not listening(proc.pid, slot.worker.port, slot.worker.host, self._sockets()):
            slot.listening_since = None
            return
        if slot.listening_since is None:
            slot.listening_since = now
        if now - slot.listening_since < self.policy.settle:
            return
        slot.ready = True
        slot.not_ready_exits = 0
        took = slot.listening_since - slot.started
        again = "again " if slot.ever_ready else ""
        slot.ever_ready = True
        self.say(
            f"worker {slot.worker.name} {again}listening on {slot.worker.listen} "
            f"(pid {proc.pid}, metrics {slot.worker.metrics or 'off'}; listening "
            f"{took:.1f} s after its start)"
        )

    def _report(self, slot: _Slot, what: str) -> str:
        if slot.reader is not None:
            slot.reader.join(timeout=2)  # the last lines of its output
        tail = "\n".join(f"  {line}" for line in slot.lines) or "  (no output)"
        return f"{what}; its last lines:\n{tail}"

    def _exited(self, slot: _Slot, code: int, *, starting: bool) -> None:
        """Decide what follows a worker's exit: a restart after a delay, or giving up."""
        assert slot.proc is not None
        ran = time.monotonic() - slot.started
        name, pid = slot.worker.name, slot.proc.pid
        how = f"worker {name} (pid {pid}) {describe_exit(code)} after {ran:.1f} s"
        slot.proc = None
        if not slot.ready:
            slot.not_ready_exits += 1
            if starting or not slot.ever_ready:
                raise WorkerFailed(self._report(slot, f"{how}, before it was ready"))
            if slot.not_ready_exits >= self.policy.give_up_after:
                raise WorkerFailed(
                    self._report(
                        slot,
                        f"{how}: {slot.not_ready_exits} starts in a row ended before it "
                        "was ready; giving up",
                    )
                )
        slot.short_runs = slot.short_runs + 1 if ran < self.policy.stable_after else 0
        p = self.policy
        delay = min(p.max_delay, p.first_delay * 2 ** max(0, slot.short_runs - 1))
        slot.restart_at = time.monotonic() + delay
        before = "" if slot.ready else f" (before it was ready, {slot.not_ready_exits} in a row)"
        self.say(f"{how}{before}; starting it again in {delay:.1f} s")
        slot.ready = False

    def _poll(self, slot: _Slot, *, starting: bool) -> None:
        if slot.proc is not None:
            code = slot.proc.poll()
            if code is None:
                self._check_ready(slot)
            else:
                self._exited(slot, code, starting=starting)
        elif slot.restart_at is not None and time.monotonic() >= slot.restart_at:
            self._start(slot)

    def _wait(self, slots: Sequence[_Slot]) -> bool:
        """Wait until ``slots`` are ready (True) or a stop is asked for (False)."""
        while not self._stop.is_set():
            self._tick_sockets = None
            for slot in slots:
                self._poll(slot, starting=True)
            if all(s.ready for s in slots):
                return True
            self._stop.wait(self.policy.tick)
        return False

    def _ready_changed(self) -> None:
        if self.on_ready is None:
            return
        state = [s.ready for s in self.slots]
        if state != self._last_ready:
            self._last_ready = state
            self.on_ready(state)

    def stop_all(self) -> None:
        running = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for slot in running:
            assert slot.proc is not None
            with contextlib.suppress(ProcessLookupError):
                slot.proc.terminate()  # each worker flushes its incident queue
        deadline = time.monotonic() + self.policy.stop_timeout
        for slot in running:
            assert slot.proc is not None
            try:
                code = slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(
                    f"worker {slot.worker.name} did not stop within "
                    f"{self.policy.stop_timeout:.0f} s: killing it"
                )
                slot.proc.kill()
                code = slot.proc.wait()
            if code not in (0, -signal.SIGTERM):
                self.say(f"worker {slot.worker.name} {describe_exit(code)} while stopping")
        for slot in self.slots:
            if slot.reader is not None:
                slot.reader.join(timeout=2)
            slot.proc = None

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start the workers, keep them running until SIGTERM/SIGINT; 0 after a clean stop, 1
        when a worker could not be kept running (the reason is written to ``out``)."""
        with self._signals():
            try:
                began = time.monotonic()
                first, rest = self.slots[0], self.slots[1:]
                self._start(first)  # alone first: it makes the CA the others read
                if self._wait([first]):
                    for slot in rest:
                        self._start(slot)
                    if self._wait(rest):
                        self.say(
                            f"all {len(self.slots)} workers ready in "
                            f"{time.monotonic() - began:.1f} s"
                        )
                while not self._stop.is_set():
                    self._tick_sockets = None
                    for slot in self.slots:
                        self._poll(slot, starting=False)
                    self._ready_changed()
                    self._stop.wait(self.policy.tick)
            except WorkerFailed as e:
                self.say(str(e))
                self.say("stopping the other workers")
                self.stop_all()
                return 1
            self.say("stopping the workers (each flushes its incident queue)")
            self.stop_all()
            self.say("stopped")
            return 0
