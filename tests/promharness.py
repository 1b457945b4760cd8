"""Real Prometheus for tests: find ``promtool`` and ``prometheus`` (Debian's ``prometheus``
package installs both in /usr/bin), run a Prometheus on a free 127.0.0.1 port with a temporary
configuration and storage, scrape given targets every second, and query it over the HTTP API.

    with MetricsServer(registry) as target, running_prometheus(tmp_path, [target.address],
                                                              rule_files=[...]) as prom:
        prom.wait_scrapes(3)
        prom.query('sum(rate(monitor_requests_total[1m]))')

Targets are any ``127.0.0.1:PORT`` serving ``/metrics``: a :class:`MetricsServer` around a
``CollectorRegistry``, or a real ``monitor proxy --metrics 127.0.0.1:PORT``. Also the helpers to
pull the queries out of Grafana dashboards and fill in their template variables.
Everything stays on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import yaml
from prometheus_client import CollectorRegistry, make_wsgi_app

DEBIAN_PACKAGE = "prometheus"  # installs /usr/bin/prometheus and /usr/bin/promtool
LOOPBACK = "127.0.0.1"


def find_tool(name: str) -> str | None:
    """The path of ``name`` (promtool, prometheus): $PATH first, then Debian's /usr/bin."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if os.access(debian, os.X_OK) else None


def require_tool(name: str) -> str:
    """Like :func:`find_tool`, but fail the test with the install command when it is missing:
    the test command (scripts/test) installs the Debian package on a fresh machine."""
    path = find_tool(name)
    if path is None:
        pytest.fail(
            f"{name} not found: install Debian's {DEBIAN_PACKAGE} package "
            f"(apt-get install -y {DEBIAN_PACKAGE}; scripts/test does so)",
            pytrace=False,
        )
    return path


def run_promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller asserts on returncode/stdout/stderr."""
    return subprocess.run(
        [require_tool("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class PromQLError(RuntimeError):
    """The Prometheus API answered with status "error" (bad query, bad parameters)."""


# -- a metrics target -----------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """Serves a CollectorRegistry at http://127.0.0.1:PORT/metrics from a daemon thread."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        app = make_wsgi_app(self.registry)
        self._server = make_server(LOOPBACK, 0, app, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_port)

    @property
    def address(self) -> str:
        """The scrape target, HOST:PORT."""
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Prometheus -----------------------------------------------------------------------------


def write_config(
    path: Path,
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> Path:
    """A prometheus.yml scraping ``targets`` (job name → HOST:PORT list), loopback only."""
    for job, addrs in targets.items():
        for addr in addrs:
            host = addr.rsplit(":", 1)[0].strip("[]")
            if host not in (LOOPBACK, "localhost", "::1"):
                raise ValueError(f"job {job}: target {addr} is not on loopback")
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
            for job, addrs in targets.items()
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Prometheus:
    """A running Prometheus process and a small client of its HTTP API."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    job: str = "monitor"
    targets: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- HTTP API --------------------------------------------------------------------------

    def api(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None) -> Any:
        """GET /api/v1/PATH and return its "data"; PromQLError when the status is "error"."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:  # 400/422 carry the error document
            with e:
                body = json.load(e)
        if body.get("status") != "success":
            raise PromQLError(f"{path} {dict(params or {})}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; a vector's samples (a scalar becomes one sample without labels)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(
        self, expr: str, start: float, end: float, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query; a matrix's series, each with "values"."""
        data = self.api(
            "query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The value of a single-sample instant query, None when empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr}: {len(result)} samples, expected one")
        return float(result[0]["value"][1])

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """What Grafana's ``label_values(MATCH, LABEL)`` variable query lists."""
        params = {"match[]": [match]} if match else {}
        return sorted(self.api(f"label/{urllib.parse.quote(label)}/values", params))

    def active_targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", {"state": "active"})["activeTargets"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(
        self,
        expr: str,
        check: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll an instant query until ``check(result)`` holds (default: not empty)."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            self.assert_running()
            result = self.query(expr)
            if check(result):
                return result
            time.sleep(0.25)
        raise TimeoutError(f"after {timeout}s, {expr!r} gives {result!r}\n{self.log_tail()}")

    def wait_scrapes(self, n: int, timeout: float = 30.0) -> None:
        """Wait until every target of the job has been scraped successfully ``n`` times."""
        want = len(self.targets)
        self.wait_for(
            f'sum_over_time(up{{job="{self.job}"}}[5m]) >= {n}',
            lambda r: len(r) >= want,
            timeout,
        )

    def assert_running(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_prometheus(
    workdir: Path,
    targets: Sequence[str],
    *,
    job: str = "monitor",
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus scraping ``targets`` as job ``job``; return once it is ready.

    Its configuration, storage and log live in ``workdir``. The caller stops it
    (:meth:`Prometheus.stop`), or uses :func:`running_prometheus`.
    """
    binary = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir / "prometheus.yml",
        {job: list(targets)},
        rule_files=rule_files,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
    )
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between choosing and binding it
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    "--storage.tsdb.retention.time=1d",
                    f"--web.listen-address={LOOPBACK}:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        prom = Prometheus(port, workdir, proc, log, job, tuple(targets))
        try:
            _wait_ready(prom, timeout)
            return prom
        except RuntimeError as e:  # exited: maybe the port was taken
            prom.stop()
            last_error = str(e)
            if "address already in use" not in last_error:
                break
        except TimeoutError:
            prom.stop()
            raise
    raise RuntimeError(f"prometheus did not start: {last_error}")


def _wait_ready(prom: Prometheus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prom.assert_running()
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"prometheus not ready after {timeout}s\n{prom.log_tail()}")


@contextmanager
def running_prometheus(
    workdir: Path, targets: Sequence[str], **kwargs: Any
) -> Iterator[Prometheus]:
    """:func:`start_prometheus` as a context manager that always stops the process."""
    prom = start_prometheus(workdir, targets, **kwargs)
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """A fixture: call it with targets (and start_prometheus's keywords) to get a running
    Prometheus in tmp_path; every one started is stopped at teardown."""
    started: list[Prometheus] = []

    def start(targets: Sequence[str], **kwargs: Any) -> Prometheus:
        prom = start_prometheus(tmp_path / f"prometheus-{len(started)}", targets, **kwargs)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


# -- Grafana dashboards ---------------------------------------------------------------------

# Grafana's built-in variables, as a dashboard over a short time range would fill them. The
# windows hold several 1-second scrapes.
GRAFANA_BUILTINS = {
    "__rate_interval": "15s",
    "__interval": "1s",
    "__range": "1m",
    "__range_s": "60",
}
_VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # file name
    panel: str  # title
    ref: str  # refId
    expr: str
    instant: bool


def panel_queries(dashboard: Mapping[str, Any], name: str = "") -> list[PanelQuery]:
    """Every query of every panel (rows' nested panels included), in order."""
    out: list[PanelQuery] = []

    def walk(panels: Sequence[Mapping[str, Any]]) -> None:
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append(
                        PanelQuery(
                            name,
                            p.get("title", ""),
                            t.get("refId", ""),
                            t["expr"],
                            bool(t.get("instant")) and not t.get("range", False),
                        )
                    )
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def variables_used(expr: str) -> set[str]:
    """Names of the template variables an expression refers to ($x, ${x}, ${x:fmt})."""
    return {m.group(1) or m.group(2) for m in _VAR.finditer(expr)}


def fill_template(expr: str, values: Mapping[str, str]) -> str:
    """Replace $x / ${x} / ${x:fmt} by ``values`` or Grafana's built-ins; KeyError if unknown."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in values:
            return values[name]
        return GRAFANA_BUILTINS[name]

    return _VAR.sub(sub, expr)


def empty_dashboard_queries(
    prom: Prometheus, boards: Mapping[str, Mapping[str, Any]], values: Mapping[str, str]
) -> list[str]:
    """Every dashboard query, template variables filled with ``values``, run as an instant query:
    the ones that return nothing (or fail), described."""
    problems = []
    for name, d in boards.items():
        for q in panel_queries(d, name):
            expr = fill_template(q.expr, values)
            try:
                result = prom.query(expr)
            except PromQLError as e:
                problems.append(f"{name} {q.panel!r} {q.ref}: {e}")
                continue
            if not result:
                problems.append(f"{name} {q.panel!r} {q.ref}: no data for {expr}")
    return problems
