"""Liveness and readiness of a proxy worker or sensor, served on its metrics port beside
``/metrics`` (``/healthz``, ``/readyz``), and the small file by which ``monitor status`` finds
every running process of a configuration directory.

- ``/healthz``: 200 while the process answers and its event loop has run lately (a proxy whose
  loop is stuck for ``stall_after`` seconds answers 503); nothing else is checked.
- ``/readyz``: 200 when the process listens, its district configuration is loaded, and its
  incident store took the last write or, when it did not, the spool can take incidents
  (``store`` says ``up`` or ``spooling``); 503 otherwise, with ``reason``. Both answer JSON.

The endpoint has no authentication, like ``/metrics``: bind it to loopback or a management
network. The JSON holds no person, address or store URL: counts, versions, times, states.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from monitor.district import District
from monitor.flow.recording import recorder_files
from monitor.incidents.recorder import Recorder

INSTANCES_DIR = "instances"  # in the state directory: one announcement file per process
STALL_AFTER = 30.0  # seconds without a heartbeat before /healthz fails

_Answer = tuple[int, dict[str, Any]]


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class Health:
    """What one process says about itself. The callables are read at every request, from the
    HTTP server's threads: each returns a reference (no locking needed) or a number.

    ``require_district``: a sensor without ``--config`` records nothing and is ready once
    it captures."""

    kind: str  # "proxy" or "sensor"
    instance: str
    district: Callable[[], District | None]
    recorder: Callable[[], Recorder | None]
    started: Callable[[], bool] = lambda: True
    last_reload: Callable[[], float | None] = lambda: None
    require_district: bool = True
    stall_after: float = STALL_AFTER
    pid: int = field(default_factory=os.getpid)
    since: float = field(default_factory=time.time)
    _beat: float | None = None

    def beat(self) -> None:
        """The event loop (or capture loop) ran: called every second or so."""
        self._beat = time.monotonic()

    def liveness(self) -> _Answer:
        body: dict[str, Any] = {"status": "alive", "kind": self.kind, "pid": self.pid}
        if self._beat is not None:
            idle = time.monotonic() - self._beat
            if idle > self.stall_after:
                body.update(status="stalled", reason=f"event loop has not run for {idle:.0f} s")
                return 503, body
        return 200, body

    def _store(self, district: District, recorder: Recorder) -> tuple[str, str]:
        """(store state, reason when not ready)."""
        s = recorder.stats
        if s.store_ok and not s.key_mismatch:
            return "up", ""
        state = "key mismatch" if s.key_mismatch else "unreachable"
        spool = recorder_files(district.state_dir, self.instance)[1]
        writable = os.access(spool.parent, os.W_OK) and (
            not spool.exists() or os.access(spool, os.W_OK)
        )
        if writable:
            return "spooling", ""
        return state, f"incident store {state} and the spool {spool} is not writable"

    def readiness(self) -> _Answer:
        district, recorder = self.district(), self.recorder()
        body: dict[str, Any] = {
            "status": "ready",
            "kind": self.kind,
            "instance": self.instance,
            "pid": self.pid,
            "started": _iso(self.since),
            "district": district.policy.district if district is not None else None,
            "versions": dict(district.versions) if district is not None else {},
            "last_reload": _iso(self.last_reload()),
            "store": "none",
            "spool_events": 0,
            "queue_depth": 0,
        }
        reason = ""
        if recorder is not None:
            s = recorder.stats
            body.update(spool_events=s.spool_pending, queue_depth=s.queue_depth)
        if not self.started():
            doing = "capturing" if self.kind == "sensor" else "listening"
            reason = f"starting: not {doing} yet"
        elif district is None and self.require_district:
            reason = "no district configuration loaded"
        elif district is not None and recorder is not None:
            body["store"], reason = self._store(district, recorder)
        if reason:
            body.update(status="not ready", reason=reason)
            return 503, body
        return 200, body


# -- the HTTP server ------------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: scrapes every 15 s per worker would fill the journal."""


def _app(registry: CollectorRegistry, health: Health) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)
    probes: dict[str, Callable[[], _Answer]] = {
        "/healthz": health.liveness,
        "/readyz": health.readiness,
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        try:
            code, body = probe()
        except Exception as e:  # noqa: BLE001 - a probe must answer, never take a thread down
            code, body = 503, {"status": "error", "reason": f"{type(e).__name__}: {e}"[:200]}
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        status = "200 OK" if code == 200 else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [data]

    return app


def serve(host: str, port: int, registry: CollectorRegistry, health: Health) -> WSGIServer:
    """Serve ``/metrics`` (and any other path, as prometheus_client does), ``/healthz`` and
    ``/readyz`` on a daemon thread; OSError when the address cannot be bound. Stop it with
    :func:`stop`."""
    host = host.strip("[]") or "127.0.0.1"
    cls = _Server6 if ":" in host else _Server
    server = make_server(host, port, _app(registry, health), cls, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def stop(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()  # or the port stays bound until garbage collection


def address(server: WSGIServer) -> str:
    """HOST:PORT the server is bound to ([v6]:PORT)."""
    host, port = server.server_address[:2]
    host = str(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- announcements: how `monitor status` finds the processes -------------------------------


def announcement_path(state_dir: Path, kind: str, instance: str) -> Path:
    return Path(state_dir) / INSTANCES_DIR / f"{instance or kind}.json"


def announce(state_dir: Path, kind: str, instance: str, metrics: str) -> Path:
    """Write this process's announcement (kind, instance, pid, metrics address, start time)
    into ``STATE_DIR/instances/``, replacing a stale one of the same name."""
    path = announcement_path(state_dir, kind, instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "kind": kind,
        "instance": instance,
        "pid": os.getpid(),
        "metrics": metrics,
        "started": time.time(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def withdraw(path: Path) -> None:
    """Remove this process's announcement, unless another process has replaced it."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def announcements(state_dir: Path) -> list[tuple[Path, dict[str, Any] | str]]:
    """Every announcement file of a state directory, parsed (a dict), or why it could not be
    read (a str), sorted by name."""
    folder = Path(state_dir) / INSTANCES_DIR
    out: list[tuple[Path, dict[str, Any] | str]] = []
    try:
        paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    except OSError:
        return out
    for p in paths:
        try:
            data = json.loads(p.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            out.append((p, data))
        except (OSError, ValueError) as e:
            out.append((p, f"unreadable: {e}"))
    return out
