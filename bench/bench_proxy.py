"""Proxy benchmark: requests/s through mitmdump WITH the monitor's addons against BARE mitmdump.

    /tmp/v/bin/python bench/bench_proxy.py [--requests 3000] [--rounds 6] [--conns 16]
    /tmp/v/bin/python bench/bench_proxy.py --requests 500 --rounds 2     # a quick look
    /tmp/v/bin/python bench/bench_proxy.py --rss [--rss-requests 100000] [--rss-compare]

Two real mitmdump processes with the production options (connection_strategy=lazy,
flow_detail=0, termlog_verbosity=warn, stream_large_bodies=1m) and one upstream mapper that
sends every upstream connection to a local origin (tests/upstream_map.py's mapping, made
keep-alive friendly: see UPSTREAM_MAP): ADDON also runs addons/student_monitor.py on a
generated example district (school hours always open), BARE runs nothing else and passes
www.school-site.example through with ``ignore_hosts``.
Scenarios, all with keep-alive (many requests per connection) from 127.0.0.13 (the
district's 13-year-old):

  http         plain HTTP, absolute-form GETs to www.youtube.com (addon: restricted)
  intercepted  CONNECT + TLS to the proxy's certificate for www.youtube.com (addon: the
               13-year-old is restricted in school hours, so decrypted and decided per request)
  passthrough  CONNECT + TLS to the origin's certificate for www.school-site.example (addon:
               not in the catalogue, ignore_connection; bare: ignore_hosts)
  incident     CONNECT + TLS to the proxy's certificate for www.tiktok.com, GET /login from
               127.0.0.11 (the 11-year-old): with the addon every request is blocked (403 and
               the block page, nothing upstream) and raises an incident, which is journaled
               before the answer and written to the store; bare mitmdump fetches it from the
               origin. Not the same work, so its ratio has no target: it is there to measure
               the cost per incident (addon µs before and after a change to recording).

Runs alternate bare and addon (the order swaps every round) so that machine noise hits both;
the figures are medians over rounds. Each run's clock includes opening its connections. The
machine is shared: before each bare/addon pair the bench waits (bounded) for other load to
drop, reruns (bounded) a pair that other load disturbed, and prints mitmdump's CPU time per
request next to req/s, which other load disturbs less. Every run is checked: all answers 200;
the TLS issuer is mitmproxy's when intercepted and "Monitor Test Origin CA" when passed
through; the origin saw every request, on one upstream connection per client connection, and
with the addon every YouTube request carried ``YouTube-Restrict: Strict``; the addon's
connection counter agrees. A failed check makes the exit status 1.

Targets: addon/bare >= 0.90 intercepted (plain HTTP held to the same), >= 0.95 passthrough;
--rss: VmRSS growth of the addon's mitmdump under 20 MB over 100,000 requests after a warm-up.
Everything listens on 127.0.0.1; every process started here is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import RunResult, Target, child_setup, run_load  # noqa: E402
from proxyharness import (  # noqa: E402
    ORIGIN_CA_NAME,
    OriginCA,
    Proxy,
    free_port,
    make_origin_ca,
    mitmdump_bin,
    wait_port,
)

TZ = ZoneInfo("America/New_York")  # the example district's
CLIENT = "127.0.0.13"  # the example district's 13-year-old
YOUTUBE = "www.youtube.com"
OFF_CATALOGUE = "www.school-site.example"
TIKTOK = "www.tiktok.com"
UNDER13 = "127.0.0.11"  # the example district's 11-year-old
HOSTS = [YOUTUBE, OFF_CATALOGUE, TIKTOK]
RSS_TARGET_MB = 20.0
# monitor/cli/proxy.py's production options
PRODUCTION = {
    "connection_strategy": "lazy",
    "flow_detail": "0",
    "termlog_verbosity": "warn",
    "stream_large_bodies": "1m",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# --pin: mitmdump (all its threads) on the first CPU, client and origin on the others, so that
# the scheduler never puts the load generator on mitmdump's core. Empty: no pinning.
PROXY_CPUS: set[int] = set()
GENERATOR_CPUS: set[int] = set()

# tests/upstream_map.py rewrites server.address for good. mitmproxy picks a server connection
# to reuse by comparing that address with the request's, so every request on a decrypted or
# plain-HTTP keep-alive connection opens a new upstream connection, and the sixth waits forever
# (mitmproxy allows 5 concurrent connections per address and client; proxy/server.py
# max_conns). This mapper does the same mapping and puts the address back once connected, so
# upstream keep-alive works as it does in production (one upstream connection per client
# connection). Both proxies load it instead of the tests' script (which start_proxy always
# adds), so the bench starts mitmdump itself.
UPSTREAM_MAP = """\
from mitmproxy import ctx


class BenchUpstream:
    def __init__(self):
        self.original = {}

    def load(self, loader):
        loader.add_option("bench_upstream", str, "", "host:port for TLS connections")
        loader.add_option("bench_upstream_plain", str, "", "host:port for port 80")

    def server_connect(self, data):
        addr = data.server.address
        if addr is None:
            return
        target = ctx.options.bench_upstream_plain if addr[1] == 80 else ctx.options.bench_upstream
        if target:
            host, _, port = target.rpartition(":")
            self.original[data.server.id] = addr
            data.server.address = (host, int(port))

    def server_connected(self, data):
        addr = self.original.pop(data.server.id, None)
        if addr is not None:
            # Server.__setattr__ refuses a new address on an open connection (it would not
            # move the socket); here the socket stays where it is and only the name that
            # mitmproxy matches requests against goes back to what the client asked for.
            data.server.__dict__["address"] = addr

    def server_connect_error(self, data):
        self.original.pop(data.server.id, None)


addons = [BenchUpstream()]
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    host: str
    tls: bool
    intercepted: bool  # the client sees the proxy's certificate (else the origin's)
    target: float | None  # addon/bare req/s (None: not comparable, no target)
    restricted: bool  # with the addon, the origin must see YouTube-Restrict: Strict
    client: str = CLIENT
    path: str = "/watch?v=bench"
    blocked: bool = False  # with the addon: 403, nothing upstream, one incident per request


SCENARIOS = (
    Scenario("http", YOUTUBE, tls=False, intercepted=False, target=0.90, restricted=True),
    Scenario("intercepted", YOUTUBE, tls=True, intercepted=True, target=0.90, restricted=True),
    Scenario(
        "passthrough", OFF_CATALOGUE, tls=True, intercepted=False, target=0.95, restricted=False
    ),
    Scenario(
        "incident",
        TIKTOK,
        tls=True,
        intercepted=True,
        target=None,
        restricted=False,
        client=UNDER13,
        path="/login",
        blocked=True,
    ),  # fmt: skip
)


@dataclass
class UnderTest:
    """One mitmdump and how a client talks to it."""

    name: str  # bare | addon
    proxy: Proxy
    metrics_port: int | None
    intercept_ctx: ssl.SSLContext  # trusts only this proxy's CA

    @property
    def pid(self) -> int:
        return int(self.proxy.proc.pid)


@dataclass
class Sample:
    scenario: str
    proxy: str
    result: RunResult
    proxy_cpu: float  # seconds of CPU used by mitmdump during the run
    origin_cpu: float
    client_cpu: float
    other_cpu: float  # everything else on the machine (other users, the idle proxy, kernel)


@dataclass
class World:
    base: Path
    origin_proc: subprocess.Popen[bytes]
    origin_ports: dict[str, int]
    ca: OriginCA
    passthrough_ctx: ssl.SSLContext
    proxies: list[UnderTest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- machine and processes ------------------------------------------------------------------


def machine() -> list[str]:
    import mitmproxy.version

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{model or platform.processor() or 'unknown CPU'}, {platform.system()} "
        f"{platform.release()}",
        f"python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}, "
        f"{ssl.OPENSSL_VERSION}",
        f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
    ]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent not idle (all CPUs), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_quiet(max_other: float, max_wait: float) -> float:
    """Wait (at most max_wait seconds) until the rest of the machine uses at most max_other
    cores over half a second; nothing of ours is running meanwhile. Returns the seconds
    waited."""
    start = time.monotonic()
    while True:
        m0 = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - m0) / 0.5 <= max_other or time.monotonic() - start > max_wait:
            return time.monotonic() - start


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def generate_district(base: Path) -> Path:
    """The example district for today, with school hours that are always open."""
    district = base / "district"
    today = datetime.now(TZ).date()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "generate_district.py"),
            "--out",
            str(district),
            "--today",
            today.isoformat(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    policy = district / "policy.yaml"
    text = policy.read_text()
    # as tests/addons/test_proxy_e2e.py does: every day is a school day, all day long
    text, n = re.subn(
        r'\{days: \[mon-fri\], start: "08:00", end: "15:00"\}',
        '{days: [mon-sun], start: "00:00", end: "23:59"}',
        text,
    )
    text, m = re.subn(r"(?ms)^closed:.*?(?=^schools:)", "closed: []\n\n", text)
    if not n or not m:
        raise RuntimeError(f"{policy}: school hours not found; the example policy changed")
    policy.write_text(text)
    return district


def start_origin(ca: OriginCA) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("loadgen.py")),
            "origin",
            "--cert",
            str(ca.leaf_cert),
            "--key",
            str(ca.leaf_key),
        ],
        stdout=subprocess.PIPE,
        preexec_fn=child_setup(GENERATOR_CPUS),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the origin prints its ports once it listens
    if not line:
        proc.wait(timeout=5)
        raise RuntimeError(f"origin exited with {proc.returncode}")
    return proc, json.loads(line)


def client_ctx(cafile: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def start_mitmdump(workdir: Path, options: dict[str, str], scripts: list[Path]) -> Proxy:
    """mitmdump as tests/proxyharness.py's start_proxy runs it, with the bench's mapper."""
    port = free_port()
    confdir = workdir / "mitmconf"
    confdir.mkdir(parents=True)
    log = workdir / "mitmdump.log"
    cmd = [
        mitmdump_bin(),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
    ]
    for script in scripts:
        cmd += ["-s", str(script)]
    for k, v in options.items():
        cmd += ["--set", f"{k}={v}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            preexec_fn=child_setup(PROXY_CPUS),
        )
    wait_port(port, proc=proc)
    deadline = time.monotonic() + 10
    while not (confdir / "mitmproxy-ca-cert.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return Proxy(port, confdir, proc, log)


def start_under_test(world: World, name: str) -> UnderTest:
    mapper = world.base / "bench_upstream.py"
    if not mapper.exists():
        mapper.write_text(UPSTREAM_MAP)
    options = {
        "ssl_verify_upstream_trusted_ca": str(world.ca.cert_pem),
        "bench_upstream": f"127.0.0.1:{world.origin_ports['https_port']}",
        "bench_upstream_plain": f"127.0.0.1:{world.origin_ports['http_port']}",
        **PRODUCTION,
    }
    scripts = [mapper]
    metrics_port = None
    if name == "addon":
        metrics_port = free_port()
        options["monitor_config"] = str(world.base / "district")
        options["monitor_metrics_listen"] = f"127.0.0.1:{metrics_port}"
        scripts.append(ROOT / "addons" / "student_monitor.py")
    else:
        # bare mitmdump passes the same host through, by mitmproxy's own option
        options["ignore_hosts"] = r"^www\.school-site\.example(:443)?$"
    workdir = world.base / name
    workdir.mkdir()
    proxy = start_mitmdump(workdir, options, scripts)
    under = UnderTest(name, proxy, metrics_port, client_ctx(proxy.ca_cert))
    world.proxies.append(under)
    if metrics_port is not None:
        wait_port(metrics_port, proc=proxy.proc)  # up once the district is loaded
    return under


def stop_all(world: World) -> None:
    for p in world.proxies:
        log = p.proxy.stop()
        if "Traceback" in log:
            print(f"--- {p.name} mitmdump log has a traceback:\n{log[-4000:]}", file=sys.stderr)
    if world.origin_proc.poll() is None:
        world.origin_proc.terminate()
        try:
            world.origin_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            world.origin_proc.kill()
            world.origin_proc.wait()


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks stop the processes."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C is KeyboardInterrupt even when started from a shell that ignores SIGINT (&)
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --- observations -----------------------------------------------------------------------------


def http_get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def origin_counts(world: World) -> dict[str, Any]:
    """{"hosts": {host: [requests, with YouTube-Restrict: Strict]}, "connections": n}."""
    counts: dict[str, Any] = json.loads(
        http_get_json(world.origin_ports["http_port"], "/__origin_stats")
    )
    return counts


def connection_metrics(under: UnderTest) -> dict[str, float]:
    """monitor_connections_total by outcome (summed over platforms)."""
    if under.metrics_port is None:
        return {}
    text = http_get_json(under.metrics_port, "/metrics").decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("monitor_connections_total{"):
            outcome = re.search(r'outcome="([^"]+)"', line)
            if outcome:
                key = outcome.group(1)
                out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def incident_count(under: UnderTest) -> float:
    """monitor_incidents_total, summed (incident events handed to the recorder)."""
    assert under.metrics_port is not None
    text = http_get_json(under.metrics_port, "/metrics").decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("monitor_incidents_total{")
    )


def target_for(world: World, under: UnderTest, sc: Scenario) -> Target:
    ctx = under.intercept_ctx if sc.intercepted else world.passthrough_ctx
    return Target(under.proxy.port, sc.client, sc.host, sc.tls, ctx if sc.tls else None,
                  path=sc.path)  # fmt: skip


def one_run(
    world: World,
    under: UnderTest,
    sc: Scenario,
    requests: int,
    conns: int,
    *,
    per_conn: int | None = None,
    check: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Sample:
    t = target_for(world, under, sc)
    before_origin = origin_counts(world) if check else {}
    before_metrics = connection_metrics(under) if check else {}
    if check and under.metrics_port is not None:
        before_metrics["incidents"] = incident_count(under)
    m0 = machine_busy()
    c0, o0, s0 = cpu_seconds(under.pid), cpu_seconds(world.origin_proc.pid), time.process_time()
    # a floor of 25 req/s: slower than that is a hang, not a measurement
    timeout = 30 + requests / 25
    res = asyncio.run(
        asyncio.wait_for(
            run_load(t, requests, conns, per_conn=per_conn, progress=progress), timeout
        )
    )
    proxy_cpu = cpu_seconds(under.pid) - c0
    origin_cpu = cpu_seconds(world.origin_proc.pid) - o0
    client_cpu = time.process_time() - s0
    other = machine_busy() - m0 - proxy_cpu - origin_cpu - client_cpu
    sample = Sample(sc.name, under.name, res, proxy_cpu, origin_cpu, client_cpu, max(0.0, other))
    if check:
        verify(world, under, sc, requests, res, before_origin, before_metrics)
    return sample


def verify(
    world: World,
    under: UnderTest,
    sc: Scenario,
    requests: int,
    res: RunResult,
    before_origin: dict[str, Any],
    before_metrics: dict[str, float],
) -> None:
    """Every check that one run did what the scenario says; failures go to world.problems."""
    where = f"{under.name}/{sc.name}"
    bad: list[str] = []
    if res.requests != requests or res.errors:
        bad.append(f"{res.requests}/{requests} requests, {res.errors} errors {res.first_error}")
    blocked = sc.blocked and under.name == "addon"
    if set(res.statuses) != ({403} if blocked else {200}):
        bad.append(f"statuses {dict(res.statuses)}")
    if sc.tls:
        want = "mitmproxy" if sc.intercepted else ORIGIN_CA_NAME
        wrong = {i: n for i, n in res.issuers.items() if want not in i}
        if wrong:
            bad.append(f"TLS issuers {wrong}, expected {want!r}")
    after = origin_counts(world)
    now = after["hosts"].get(sc.host, [0, 0])
    then = before_origin["hosts"].get(sc.host, [0, 0])
    seen, restricted = now[0] - then[0], now[1] - then[1]
    if seen != (0 if blocked else res.requests):
        bad.append(f"origin saw {seen} requests for {sc.host}, the client made {res.requests}")
    want_restricted = seen if (sc.restricted and under.name == "addon") else 0
    if restricted != want_restricted:
        bad.append(f"origin saw YouTube-Restrict: Strict on {restricted}/{seen} requests")
    upstream = after["connections"] - before_origin["connections"]
    if upstream != (0 if blocked else res.connections):
        # keep-alive upstream too: one origin connection per client connection
        bad.append(f"{upstream} upstream connections for {res.connections} client connections")
    if under.metrics_port is not None and sc.tls:
        outcome = "intercepted" if sc.intercepted else "passthrough"
        delta = connection_metrics(under).get(outcome, 0.0) - before_metrics.get(outcome, 0.0)
        if delta != res.connections:
            bad.append(
                f"monitor_connections_total{{outcome={outcome}}} +{delta:g}, "
                f"{res.connections} connections made"
            )
    if blocked:
        raised = incident_count(under) - before_metrics.get("incidents", 0.0)
        if raised != res.requests:
            bad.append(f"monitor_incidents_total +{raised:g}, {res.requests} blocked requests")
    world.problems += [f"{where}: {b}" for b in bad]


# --- the two modes ------------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def conns_for(sc: Scenario, args: argparse.Namespace) -> int:
    return int(args.passthrough_conns if sc.name == "passthrough" else args.conns)


def compare(world: World, args: argparse.Namespace) -> None:
    bare = start_under_test(world, "bare")
    addon = start_under_test(world, "addon")
    pair = (bare, addon)
    scale = {"passthrough": args.passthrough_scale}
    scenarios = [sc for sc in SCENARIOS if sc.name in args.scenarios.split(",")]
    print(f"warm-up: {args.warmup} requests per scenario and proxy (checked, not timed)")
    for sc in scenarios:
        for u in pair:
            one_run(world, u, sc, args.warmup, conns_for(sc, args))
    direct = Target(world.origin_ports["https_port"], CLIENT, YOUTUBE, True,
                    world.passthrough_ctx, direct=True)  # fmt: skip
    ceiling = asyncio.run(run_load(direct, 20_000, args.conns))
    print(
        f"load generator alone (client + origin over TLS, no proxy, {args.conns} connections): "
        f"{ceiling.rate:,.0f} req/s"
    )
    rss0 = {u.name: rss_mb(u.pid) for u in pair}
    samples: list[Sample] = []
    sent = 0  # through each proxy, reruns included
    reruns = dict.fromkeys((sc.name for sc in scenarios), 0)
    waited = 0.0
    deadline = time.monotonic() + args.timeout
    for rnd in range(args.rounds):
        order = pair if rnd % 2 == 0 else pair[::-1]
        line = []
        for sc in scenarios:
            n = args.requests * scale.get(sc.name, 1)
            while True:
                waited += wait_quiet(args.max_other, args.quiet_wait)
                got = []
                for u in order:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"--timeout {args.timeout}s reached in round {rnd + 1}")
                    got.append(one_run(world, u, sc, n, conns_for(sc, args)))
                sent += n
                other = max(s.other_cpu / s.result.seconds for s in got)
                if other <= args.max_other or reruns[sc.name] >= args.rounds:
                    break
                # someone else used the machine during this pair: run it again (bounded)
                reruns[sc.name] += 1
                line.append(f"{sc.name[:5]} rerun (other load {other:.0%})")
            samples += got
            line += [f"{sc.name[:5]}/{s.proxy} {s.result.rate:,.0f}" for s in got]
        print(f"round {rnd + 1}/{args.rounds}: " + ", ".join(line), flush=True)
    rss1 = {u.name: rss_mb(u.pid) for u in pair}
    report(samples, scenarios, args, scale)
    print(
        f"other load: waited {waited:.0f} s in all for a quiet machine before pairs; pairs run "
        f"again because other load exceeded {args.max_other:.0%} of a core during them: "
        + ", ".join(f"{k} {v}" for k, v in reruns.items())
    )
    for u in pair:
        print(
            f"RSS {u.name}: {rss0[u.name]:.1f} MB after warm-up -> {rss1[u.name]:.1f} MB after "
            f"{sent:,} timed requests (growth {rss1[u.name] - rss0[u.name]:+.1f} MB)"
        )


def report(
    samples: list[Sample],
    scenarios: list[Scenario],
    args: argparse.Namespace,
    scale: dict[str, int],
) -> None:
    def of(sc: Scenario, proxy: str) -> list[Sample]:
        return [s for s in samples if s.scenario == sc.name and s.proxy == proxy]

    def cell(xs: list[float]) -> str:
        return f"{median(xs):,.0f} [{min(xs):,.0f}-{max(xs):,.0f}]"

    print()
    print(
        f"req/s: {args.conns} keep-alive connections ({args.passthrough_conns} for passthrough) "
        f"from {CLIENT} ({UNDER13} for incident), median [min-max] over "
        f"{args.rounds} rounds; ratio = addon/bare of the medians; paired = median of the "
        f"per-round ratios (each pair run back to back)"
    )
    hdr = (
        f"{'scenario':<12} {'req/run':>7} {'bare req/s':>22} {'addon req/s':>22} "
        f"{'ratio':>6} {'paired':>6} {'target':>7}  result"
    )
    print(hdr)
    print("-" * len(hdr))
    for sc in scenarios:
        bare, addon = of(sc, "bare"), of(sc, "addon")
        rb, ra = [s.result.rate for s in bare], [s.result.rate for s in addon]
        ratio = median(ra) / median(rb)
        paired = median([a / b for a, b in zip(ra, rb, strict=True)])
        n = args.requests * scale.get(sc.name, 1)
        if sc.target is None:
            ok, target = "-", "-"
        else:
            ok = "met" if ratio >= sc.target else "MISSED"
            target = ">=" + format(sc.target, ".2f")
        print(
            f"{sc.name:<12} {n:>7} {cell(rb):>22} {cell(ra):>22} {ratio:>6.3f} {paired:>6.3f} "
            f"{target:>7}  {ok}"
        )
    print(
        "per-round ratios: "
        + "; ".join(
            f"{sc.name} "
            + " ".join(
                f"{a.result.rate / b.result.rate:.2f}"
                for a, b in zip(of(sc, "addon"), of(sc, "bare"), strict=True)
            )
            for sc in scenarios
        )
    )
    print()
    print(
        "mitmdump CPU per request (µs, median over rounds; less sensitive to other load on "
        "the machine than req/s); busy = mitmdump's CPU while loaded (100% = one core); "
        "generator = client + origin; other = the rest of the machine (other users' work, "
        "the idle proxy, the kernel), in cores"
    )
    hdr = (
        f"{'scenario':<12} {'bare µs':>8} {'addon µs':>9} {'extra µs':>9} {'bare/addon':>10} "
        f"{'busy bare':>9} {'busy addon':>10} {'generator':>9} {'other':>6}"
    )
    print(hdr)
    print("-" * len(hdr))
    for sc in scenarios:
        bare, addon = of(sc, "bare"), of(sc, "addon")
        ub = median([s.proxy_cpu / s.result.requests * 1e6 for s in bare])
        ua = median([s.proxy_cpu / s.result.requests * 1e6 for s in addon])
        busy_b = median([s.proxy_cpu / s.result.seconds for s in bare])
        busy_a = median([s.proxy_cpu / s.result.seconds for s in addon])
        gen = median([(s.origin_cpu + s.client_cpu) / s.result.seconds for s in bare + addon])
        other = median([s.other_cpu / s.result.seconds for s in bare + addon])
        print(
            f"{sc.name:<12} {ub:>8.0f} {ua:>9.0f} {ua - ub:>+9.0f} {ub / ua:>10.3f} "
            f"{busy_b:>9.0%} {busy_a:>10.0%} {gen:>9.0%} {other:>6.0%}"
        )
    print()


def rss_run(world: World, args: argparse.Namespace) -> None:
    names = ["addon", "bare"] if args.rss_compare else ["addon"]
    for name in names:
        u = start_under_test(world, name)
        print(f"{name}: warm-up {args.chunk:,} requests per scenario (checked)", flush=True)
        for sc in SCENARIOS:
            one_run(world, u, sc, args.chunk, args.conns, per_conn=args.per_conn)
        base = rss_mb(u.pid)
        print(
            f"{name}: VmRSS after warm-up {base:.1f} MB; now {args.rss_requests:,} requests, "
            f"scenarios in turn in chunks of {args.chunk:,}, {args.conns} connections, a new "
            f"connection every {args.per_conn} requests",
            flush=True,
        )
        done = 0
        next_report = 10_000
        marks: list[tuple[int, float]] = [(0, base)]
        start = time.monotonic()
        i = 0
        while done < args.rss_requests:
            if time.monotonic() - start > args.timeout:
                raise TimeoutError(f"--timeout {args.timeout}s reached after {done} requests")
            sc = SCENARIOS[i % len(SCENARIOS)]
            i += 1
            n = min(args.chunk, args.rss_requests - done)
            # every chunk is checked: a leak test of a proxy that answers errors means nothing
            one_run(world, u, sc, n, args.conns, per_conn=args.per_conn)
            done += n
            if done >= next_report or done == args.rss_requests:
                marks.append((done, rss_mb(u.pid)))
                print(
                    f"  {done:>7,} requests: VmRSS {marks[-1][1]:.1f} MB "
                    f"({time.monotonic() - start:.0f} s)",
                    flush=True,
                )
                next_report += 10_000
        end = rss_mb(u.pid)
        growth = end - base
        half = min(marks, key=lambda m: abs(m[0] - done / 2))
        verdict = ("met" if growth < RSS_TARGET_MB else "MISSED") if name == "addon" else "-"
        print(
            f"RSS {name}: {base:.1f} MB -> {end:.1f} MB over {done:,} requests: growth "
            f"{growth:+.1f} MB, of which {end - half[1]:+.1f} MB in the last {done - half[0]:,} "
            f"(target < {RSS_TARGET_MB:.0f} MB: {verdict})"
        )
        u.proxy.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--requests", type=int, default=3000, help="requests per timed run (http, intercepted)"
    )
    ap.add_argument(
        "--passthrough-scale",
        type=int,
        default=10,
        help="passthrough runs make this many times --requests (they are faster)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="bare/addon pairs per scenario (the order swaps every round)",
    )
    ap.add_argument("--conns", type=int, default=16, help="concurrent keep-alive connections")
    ap.add_argument(
        "--passthrough-conns",
        type=int,
        default=64,
        help="connections for passthrough: with 16, mitmdump waits on round trips instead of "
        "working (50-70%% busy) and the figures swing with scheduling",
    )
    ap.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="other users' load, in cores, above which a bare/addon pair waits (--quiet-wait) "
        "and is run again when it happened during the pair (at most --rounds reruns per "
        "scenario)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="seconds to wait at most, before each pair, for other load to drop",
    )
    ap.add_argument(
        "--scenarios",
        default="http,intercepted,passthrough,incident",
        help="comma-separated subset of http, intercepted, passthrough, incident",
    )
    ap.add_argument("--warmup", type=int, default=400, help="untimed requests per scenario")
    ap.add_argument("--rss", action="store_true", help="the memory run instead of the comparison")
    ap.add_argument("--rss-requests", type=int, default=100_000)
    ap.add_argument(
        "--rss-compare",
        action="store_true",
        help="--rss: also run bare mitmdump through the same load, for reference",
    )
    ap.add_argument(
        "--per-conn", type=int, default=100, help="--rss: requests per connection before a new one"
    )
    ap.add_argument("--chunk", type=int, default=2000, help="--rss: requests per scenario turn")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds, for the whole run")
    ap.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="mitmdump on one CPU, the load generator on the other(s); off by default: "
        "pinned, every hop is a cross-CPU wake-up and passthrough gets slower and noisier",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for line in machine():
        print(line)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("warning: fewer than 2 CPUs: the load generator shares mitmdump's core")
    elif args.pin:
        PROXY_CPUS.add(cpus[0])
        GENERATOR_CPUS.update(cpus[1:])
        os.sched_setaffinity(0, GENERATOR_CPUS)
        print(
            f"pinned: mitmdump on CPU {cpus[0]}, client and origin on CPU "
            f"{','.join(map(str, cpus[1:]))} (--no-pin to let the scheduler place them)"
        )
    base = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    world: World | None = None
    try:
        with terminate_as_exit():
            generate_district(base)
            ca = make_origin_ca(base / "ca", HOSTS)
            proc, ports = start_origin(ca)
            world = World(base, proc, ports, ca, client_ctx(ca.cert_pem))
            if args.rss:
                rss_run(world, args)
            else:
                compare(world, args)
    finally:
        if world is not None:
            stop_all(world)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if world.problems:
        print(f"\nCHECKS FAILED ({len(world.problems)}):")
        for p in world.problems[:30]:
            print("  " + p)
        return 1
    print(
        "\nchecks: all runs answered as expected (200; 403 and one incident per request for "
        "incident), right TLS issuers, origin counts and YouTube-Restrict headers"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: proxies and origin stopped", file=sys.stderr)
        sys.exit(130)
