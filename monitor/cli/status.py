"""``monitor status``: the proxy workers and sensors of a configuration directory, their
readiness, store, spools and configuration versions, in one look (or as JSON).

Processes announce themselves in ``STATE_DIR/instances/`` when they start serving metrics
(:mod:`monitor.flow.health`); each one's ``/readyz`` says the rest. Spools are also read from
the state directory, so a stopped instance that still holds incidents shows up.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli._common import load_district

if TYPE_CHECKING:
    from monitor.district import District

EXIT_NOT_READY = 3  # as `systemctl is-active` for a unit that is not active
SPOOL_PREFIX = "incident-spool"


@dataclass
class InstanceStatus:
    """One process (or one instance's left-over spool)."""

    name: str
    kind: str = "?"
    pid: int | None = None
    running: bool = False
    metrics: str = ""
    ready: bool = False
    reason: str = ""
    store: str = ""
    spool_events: int = 0
    queue_depth: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    config_current: bool | None = None
    last_reload: str | None = None
    started: str | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def _probe_address(metrics: str) -> str:
    host, _, port = metrics.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fetch_readyz(metrics: str, timeout: float) -> tuple[int, dict[str, Any] | None, str]:
    """(HTTP status, JSON body, error) of ``http://METRICS/readyz``; status 0 for no answer."""
    url = f"http://{_probe_address(metrics)}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            code, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, raw = e.code, e.read()
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return 0, None, f"no answer from {url}: {reason}"
    try:
        body = json.loads(raw)
    except ValueError:
        return code, None, f"{url} answered {code} without JSON (another program on that port?)"
    if not isinstance(body, dict):
        return code, None, f"{url} answered {code} with unexpected JSON"
    return code, body, ""


def spool_depths(state_dir: Path) -> dict[str, int]:
    """Instance name ('' for the default) → events waiting in its spool file."""
    out: dict[str, int] = {}
    for p in sorted(state_dir.glob(f"{SPOOL_PREFIX}*.jsonl")):
        name = p.name[len(SPOOL_PREFIX) : -len(".jsonl")].removeprefix("-")
        try:
            with p.open("rb") as f:
                out[name] = sum(1 for line in f if line.strip())
        except OSError:
            continue
    return out


def _instance(path: Path, data: dict[str, Any] | str, timeout: float) -> InstanceStatus:
    if isinstance(data, str):
        return InstanceStatus(path.stem, reason=f"{path}: {data}")
    pid = data.get("pid")
    st = InstanceStatus(
        str(data.get("instance") or path.stem),
        kind=str(data.get("kind", "?")),
        pid=pid if isinstance(pid, int) else None,
        metrics=str(data.get("metrics", "")),
    )
    if st.pid is None or not _alive(st.pid):
        st.reason = f"not running (process {st.pid} is gone)"
        return st
    st.running = True
    code, body, error = fetch_readyz(st.metrics, timeout)
    if body is None:
        st.reason = error
        return st
    if body.get("pid") not in (None, st.pid):
        st.reason = f"{st.metrics} is served by process {body.get('pid')}, not {st.pid}"
        return st
    st.ready = code == 200
    st.reason = str(body.get("reason", ""))
    st.store = str(body.get("store", ""))
    st.spool_events = int(body.get("spool_events", 0))
    st.queue_depth = int(body.get("queue_depth", 0))
    st.versions = {str(k): str(v) for k, v in dict(body.get("versions") or {}).items()}
    st.last_reload = body.get("last_reload")
    st.started = body.get("started")
    return st


def _store_check(url: str, timeout: float) -> tuple[bool, str]:
    """(reachable, error) for the store: opened without creating anything."""
    from monitor.flow.recording import masked_url
    from monitor.incidents.recorder import redact
    from monitor.incidents.store import open_store

    try:
        open_store(url, create=False, timeout=timeout).close()
    except Exception as e:  # noqa: BLE001 - any failure is "unreachable", with its reason
        return False, f"{masked_url(url)}: {redact(str(e)) or type(e).__name__}"
    return True, ""


def collect(district: District, timeout: float) -> dict[str, Any]:
    """Everything ``monitor status`` shows, as one JSON-ready dict."""
    from monitor.flow import health
    from monitor.flow.recording import masked_url

    state = district.state_dir
    if state.exists() and not os.access(state, os.R_OK | os.X_OK):
        raise click.ClickException(
            f"{state}: permission denied: run as root or as the services' user "
            "(sudo -u monitor monitor status …)"
        )
    disk = dict(district.versions)
    instances = [_instance(p, d, timeout) for p, d in health.announcements(state)]
    known = {i.name for i in instances}
    for name, depth in spool_depths(state).items():
        shown = name or "proxy"
        for i in instances:
            if i.name == shown and not i.running:
                i.spool_events = depth  # a stopped instance: its file says what waits
        if shown not in known and depth:
            instances.append(
                InstanceStatus(shown, reason="not running (a spool is left)", spool_events=depth)
            )
    for i in instances:
        if i.versions:
            i.config_current = i.versions == disk
    reachable, error = _store_check(district.store_url, timeout)
    return {
        "district": district.policy.district,
        "config_dir": str(district.config_dir),
        "state_dir": str(state),
        "store": {"url": masked_url(district.store_url), "reachable": reachable, "error": error},
        "versions": disk,
        "instances": [asdict(i) for i in instances],
    }


def verdict(report: dict[str, Any], workers: int) -> list[str]:
    """What is wrong (empty: everything running is ready, and at least ``workers`` proxies)."""
    problems = []
    if not report["store"]["reachable"]:
        problems.append(f"incident store unreachable: {report['store']['error']}")
    running = [i for i in report["instances"] if i["running"]]
    for i in running:
        if not i["ready"]:
            problems.append(f"{i['name']} not ready: {i['reason']}")
    if not running:
        problems.append(f"no running process announced in {report['state_dir']}/instances")
    proxies = sum(1 for i in running if i["kind"] == "proxy" and i["ready"])
    if proxies < workers:
        problems.append(f"{proxies} proxy processes ready, {workers} expected")
    return problems


def _versions_text(v: dict[str, str]) -> str:
    if not v:
        return "-"
    parts = []
    if "roster" in v:
        parts.append(f"roster {v['roster']}")
    if "policy" in v:
        digest = f" sha256 {v['policy_sha256']}" if v.get("policy_sha256") else ""
        parts.append(f"policy {v['policy']} rules{digest}")
    if "catalogue" in v:
        parts.append(f"catalogue {v['catalogue']} platforms")
    shown = ("roster", "policy", "policy_sha256", "catalogue")
    parts += [f"{k} {val}" for k, val in sorted(v.items()) if k not in shown]
    return ", ".join(parts)


def render(report: dict[str, Any], problems: list[str]) -> str:
    store = report["store"]
    lines = [
        f"district   {report['district']} ({report['config_dir']})",
        f"store      {'reachable' if store['reachable'] else 'UNREACHABLE'}: "
        + (store["url"] if store["reachable"] else store["error"]),
        f"config     {_versions_text(report['versions'])} (files on disk)",
        "",
    ]
    head = ("INSTANCE", "KIND", "PID", "STATE", "STORE", "SPOOL", "QUEUE", "CONFIG", "LAST RELOAD")
    rows = [head]
    notes = []
    for i in report["instances"]:
        if i["running"]:
            state = "ready" if i["ready"] else "NOT READY"
        else:
            state = "stopped" if i["pid"] else "-"
        config = {True: "current", False: "DIFFERS", None: "-"}[i["config_current"]]
        rows.append(
            (
                i["name"], i["kind"], str(i["pid"] or "-"), state, i["store"] or "-",
                str(i["spool_events"]), str(i["queue_depth"]), config, i["last_reload"] or "-",
            )
        )  # fmt: skip
        if i["reason"]:
            notes.append(f"  {i['name']}: {i['reason']}")
        if i["config_current"] is False:
            notes.append(f"  {i['name']}: in force: {_versions_text(i['versions'])}")
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    if len(rows) == 1:
        lines.append("(no process has announced itself)")
    lines += notes
    lines.append("")
    lines.append("ready" if not problems else "NOT READY: " + "; ".join(problems))
    return "\n".join(lines)


@click.command("status")
@click.option(
    "--config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (with district.yaml).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=3.0,
    show_default=True,
    help="Seconds to wait for each process's /readyz and for the store.",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Ask again until everything is ready or this long has passed (for a unit's "
    "ExecStartPost).",
)
@click.option(
    "--workers",
    default="0",
    metavar="N|auto",
    show_default=True,
    help="At least this many proxy processes must be ready (auto: one per core, as "
    "`monitor proxy --workers auto`).",
)
def status_cmd(config: str, as_json: bool, timeout: float, wait: float, workers: str) -> None:
    """Show the proxy workers and sensors of a configuration directory: running and ready or
    not (and why), incident store reachable, spool and queue depth per instance, the
    configuration versions each has in force against the files on disk, the last reload.

    Exit status: 0 when the store is reachable and every running process is ready; 3 when
    not; 1 on bad input."""
    from monitor.gateway.workers import parse_count

    expected = 0
    if workers.strip() != "0":
        try:
            expected = parse_count(workers)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--workers") from e
    district = load_district(config)
    deadline = time.monotonic() + wait
    while True:
        report = collect(district, timeout)
        problems = verdict(report, expected)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    report["ready"] = not problems
    report["problems"] = problems
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render(report, problems))
    sys.stdout.flush()
    if problems:
        sys.exit(EXIT_NOT_READY)


def register(group: click.Group) -> None:
    group.add_command(status_cmd)
