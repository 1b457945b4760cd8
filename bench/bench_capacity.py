"""Capacity benchmark: new TLS connections per mitmdump worker by outcome, 1 -> 2 workers, and
a school day's traffic mix through real mitmdumps with the monitor's addons.

    scripts/bench capacity                                  # 8-12 minutes
    .venv/bin/python bench/bench_capacity.py --quick        # about 3 minutes
    .venv/bin/python bench/bench_capacity.py --parts outcomes,scaling,mix [--keep]

The unit is a new connection (browsers open many): CONNECT, TLS handshake, one request,
close. Everything is real: mitmdump 12 with the production options of ``monitor proxy``
(bench_proxy.PRODUCTION), the example district generated for today, and a local origin (the
bench's loadgen origin) behind bench_proxy's upstream mapper. Proxies decide as if in school
hours, or out of them, by ``--set monitor_clock=`` (the next school day at 10:30 or 19:00 in
the district's zone; benchmarks only, never on by default).

1. outcomes: connections/s and mitmdump CPU per connection (utime+stime from /proc/PID/stat)
   for each outcome, against BARE mitmdump (no addons) with the same options in the same
   run, the order swapping every round, each pair after the machine is quiet (bounded):
     passthrough  www.school-site.example (not in the catalogue) from the 13-year-old;
                  bare: mitmproxy's own ignore_hosts
     refused      api16-normal-c-useast1a.tiktokv.com (a TikTok API host) from the
                  11-year-old: 403 to the CONNECT, no TLS; bare mitmdump cannot refuse
     block page   www.tiktok.com (a page host) from the 11-year-old: decrypted, 403 and the
                  block page, nothing upstream; bare: the same host decrypted and fetched
     allowed      www.youtube.com from the 13-year-old in school hours: restricted, so
                  decrypted, YouTube-Restrict added, forwarded; bare: decrypted and fetched
2. scaling: N mitmdump processes with the addons on N ports (one CA, one district, a
   ``monitor_instance`` each), connections spread by the client address with Linux's jhash
   (as nftables ``jhash ip saddr mod N`` does, seed 0) over 64 unknown loopback addresses
   (127.0.2.x: under-13 treatment); 1 vs 2 workers alternating; the load generator alone is
   measured too, since on 2 cores it competes with the workers.
3. mix: bench/trafficmix.py's school-day mix run through the proxies, (a) every connection
   through the proxy (regular mode without PAC, today) and (b) only catalogue hosts (a PAC
   file or DNS-driven redirect; the catalogue's Classifier decides), in and out of school
   hours; shares read from the proxies' monitor_connections_total{outcome} and checked
   against what every client saw.
4. sizing: connections/s per core by outcome, and students per core for the mix at
   trafficmix.CONNECTIONS_PER_STUDENT_MINUTE (and PEAK_FACTOR times that).

Every run is checked (outcome each client saw, metric deltas, origin counts, YouTube-Restrict);
a failed check makes the exit status 1. Read ratios, not absolutes: the machine is shared.
Everything listens on 127.0.0.1; every process started here is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_proxy as bp  # noqa: E402  (puts tests/ on sys.path too)
import trafficmix as tm  # noqa: E402
from loadgen import _Conn, child_setup, issuer_of, status_of  # noqa: E402
from proxyharness import (  # noqa: E402
    ORIGIN_CA_NAME,
    Proxy,
    example_district,
    free_port,
    make_origin_ca,
    mitmdump_bin,
    wait_port,
)

ROOT = HERE.parent
OFF_CATALOGUE = "www.school-site.example"
TIKTOK = "www.tiktok.com"
TIKTOK_API = "api16-normal-c-useast1a.tiktokv.com"
YOUTUBE = "www.youtube.com"
UNDER13 = "127.0.0.11"
TEEN = "127.0.0.13"
SCALE_CLIENTS = tuple(f"127.0.2.{i}" for i in range(1, 65))  # unknown: under-13 treatment
SCALE_TARGET = 1.7
MIX_TARGETS = {"reach_pac": 0.35, "decrypted": 0.08}


# --- spreading like the kernel ---------------------------------------------------------------


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def jhash_4bytes(data: bytes, seed: int = 0) -> int:
    """Linux's jhash() (include/linux/jhash.h) of a 4-byte key, as nft_hash computes it for
    ``jhash ip saddr``: the tail bytes add little-endian into a, then __jhash_final."""
    assert len(data) == 4
    a = b = c = (0xDEADBEEF + 4 + seed) & 0xFFFFFFFF
    a = (a + int.from_bytes(data, "little")) & 0xFFFFFFFF
    m = 0xFFFFFFFF
    c ^= b
    c = (c - _rol32(b, 14)) & m
    a ^= c
    a = (a - _rol32(c, 11)) & m
    b ^= a
    b = (b - _rol32(a, 25)) & m
    c ^= b
    c = (c - _rol32(b, 16)) & m
    a ^= c
    a = (a - _rol32(c, 4)) & m
    b ^= a
    b = (b - _rol32(a, 14)) & m
    c ^= b
    c = (c - _rol32(b, 24)) & m
    return c


def worker_of(address: str, n: int, seed: int = 0) -> int:
    """Which of n workers gets a client address: nft's ``jhash ip saddr mod n`` (the hash
    scaled into [0, n) by reciprocal_scale, as nft_jhash_eval does)."""
    if n <= 1:
        return 0
    h = jhash_4bytes(bytes(int(x) for x in address.split(".")), seed)
    return (h * n) >> 32


# --- processes --------------------------------------------------------------------------------


@dataclass
class Mitm:
    name: str
    proxy: Proxy
    metrics_port: int | None

    @property
    def pid(self) -> int:
        pid: int = self.proxy.proc.pid
        return pid

    @property
    def port(self) -> int:
        port: int = self.proxy.port
        return port


@dataclass
class World:
    base: Path
    district: Path
    origin_proc: subprocess.Popen[bytes]
    origin_ports: dict[str, int]
    ca_dir: Path | None = None  # the first proxy's confdir: every proxy shares its CA
    ctx: ssl.SSLContext | None = None  # trusts the origin's CA and the proxies' CA
    origin_ca: Path | None = None
    proxies: list[Mitm] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    clock_in: str = ""
    clock_out: str = ""


def start_mitm(world: World, name: str, *, addon: bool, clock: str = "") -> Mitm:
    """mitmdump with the bench's upstream mapper (and the addons), sharing one CA."""
    assert world.origin_ca is not None
    mapper = world.base / "bench_upstream.py"
    if not mapper.exists():
        mapper.write_text(bp.UPSTREAM_MAP)
    workdir = world.base / name
    confdir = workdir / "mitmconf"
    confdir.mkdir(parents=True)
    if world.ca_dir is not None:
        for f in world.ca_dir.glob("mitmproxy-ca*"):
            shutil.copy2(f, confdir / f.name)
    port = free_port()
    options = {
        "ssl_verify_upstream_trusted_ca": str(world.origin_ca),
        "bench_upstream": f"127.0.0.1:{world.origin_ports['https_port']}",
        "bench_upstream_plain": f"127.0.0.1:{world.origin_ports['http_port']}",
        **bp.PRODUCTION,
    }
    scripts = [mapper]
    metrics_port = None
    if addon:
        metrics_port = free_port()
        options["monitor_config"] = str(world.district)
        options["monitor_metrics_listen"] = f"127.0.0.1:{metrics_port}"
        options["monitor_instance"] = name
        if clock:
            options["monitor_clock"] = clock
        scripts.append(ROOT / "addons" / "student_monitor.py")
    else:
        options["ignore_hosts"] = r"^www\.school-site\.example(:443)?$"
    cmd = [
        mitmdump_bin(),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
    ]
    for s in scripts:
        cmd += ["-s", str(s)]
    for k, v in options.items():
        cmd += ["--set", f"{k}={v}"]
    log = workdir / "mitmdump.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            preexec_fn=child_setup(set()),
        )
    m = Mitm(name, Proxy(port, confdir, proc, log), metrics_port)
    world.proxies.append(m)
    wait_port(port, proc=proc)
    if metrics_port is not None:
        wait_port(metrics_port, proc=proc)  # up once the district is loaded
    deadline = time.monotonic() + 10
    while not (confdir / "mitmproxy-ca-cert.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if world.ca_dir is None:
        world.ca_dir = confdir
        ctx = ssl.create_default_context(cafile=str(confdir / "mitmproxy-ca-cert.pem"))
        ctx.load_verify_locations(str(world.origin_ca))
        ctx.set_alpn_protocols(["http/1.1"])
        world.ctx = ctx
    return m


def stop_mitm(world: World, m: Mitm) -> None:
    log = m.proxy.stop()
    if "Traceback" in log:
        print(f"--- {m.name} mitmdump log has a traceback:\n{log[-3000:]}", file=sys.stderr)
    world.proxies.remove(m)


def stop_all(world: World) -> None:
    for m in list(world.proxies):
        stop_mitm(world, m)
    if world.origin_proc.poll() is None:
        world.origin_proc.terminate()
        try:
            world.origin_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            world.origin_proc.kill()
            world.origin_proc.wait()


def school_clocks(district: Path) -> tuple[str, str]:
    """monitor_clock values: the next school day (today or later, in the district's zone)
    at 10:30, when every school is in session, and the same day at 19:00."""
    from monitor.district import DistrictLoader

    policy = DistrictLoader(str(district)).load().policy
    tz = ZoneInfo(str(policy.tz))
    schools = list(policy.schools)
    day = datetime.now(tz).date()
    for _ in range(120):
        if all(policy.in_school_hours(s, day, day.weekday(), 10 * 60 + 30) for s in schools):
            break
        day += timedelta(days=1)
    else:
        raise RuntimeError("no school day in the next 120 days: the example policy changed")
    at = datetime(day.year, day.month, day.day, 10, 30, tzinfo=tz)
    if any(policy.in_school_hours(s, day, day.weekday(), 19 * 60) for s in schools):
        raise RuntimeError("19:00 is in school hours: the example policy changed")
    return at.isoformat(), at.replace(hour=19, minute=0).isoformat()


# --- one connection, many connections --------------------------------------------------------


@dataclass(frozen=True)
class Job:
    port: int
    client: str
    host: str
    path: str = "/"
    direct: bool = False  # straight to the origin (the load generator alone)


@dataclass(frozen=True)
class Seen:
    outcome: str  # refused | intercepted | passthrough | error
    status: int  # the CONNECT's status when refused, else the request's
    detail: str = ""


def _request(host: str, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: Mozilla/5.0 (X11; CrOS x86_64) bench-capacity/1\r\n"
        "Accept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


async def one_connection(job: Job, ctx: ssl.SSLContext) -> Seen:
    """CONNECT (unless direct), TLS, one request, close; what the client saw."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(
        _Conn, "127.0.0.1", job.port, local_addr=(job.client, 0)
    )
    try:
        if not job.direct:
            connect = f"CONNECT {job.host}:443 HTTP/1.1\r\nHost: {job.host}:443\r\n\r\n"
            head = await proto.exchange(connect.encode(), head_only=True)
            if status_of(head) != 200:
                return Seen("refused", status_of(head))
        tls = await loop.start_tls(transport, proto, ctx, server_hostname=job.host)
        assert tls is not None
        proto.transport = tls
        issuer = issuer_of(tls)
        head = await proto.exchange(_request(job.host, job.path))
        if "mitmproxy" in issuer:
            return Seen("intercepted", status_of(head))
        if ORIGIN_CA_NAME in issuer:
            return Seen("passthrough", status_of(head))
        return Seen("error", status_of(head), f"issuer {issuer!r}")
    finally:
        await proto.close()


async def run_jobs(
    jobs: Sequence[Job], conns: int, ctx: ssl.SSLContext
) -> tuple[list[Seen], float]:
    """Every job, ``conns`` at a time; the clock includes everything."""
    seen: list[Seen | None] = [None] * len(jobs)
    nxt = 0

    async def worker() -> None:
        nonlocal nxt
        while nxt < len(jobs):
            i, nxt = nxt, nxt + 1
            try:
                seen[i] = await asyncio.wait_for(one_connection(jobs[i], ctx), 30)
            except (OSError, ConnectionError, ssl.SSLError, TimeoutError, ValueError) as e:
                seen[i] = Seen("error", 0, repr(e)[:200])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(conns, len(jobs)))))
    return [s or Seen("error", 0, "not run") for s in seen], time.perf_counter() - start


@dataclass
class Run:
    seen: list[Seen]
    seconds: float
    proxy_cpu: dict[int, float]  # pid -> CPU seconds during the run
    gen_cpu: float  # the client (this process) and the origin
    client_cpu: float
    other: float  # the rest of the machine, CPU seconds

    @property
    def n(self) -> int:
        return len(self.seen)

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def mitm_cpu(self) -> float:
        return sum(self.proxy_cpu.values())

    def busy(self, cpu: float) -> float:
        return cpu / self.seconds


def measure(world: World, procs: Sequence[Mitm], jobs: Sequence[Job], conns: int) -> Run:
    assert world.ctx is not None
    pids = [m.pid for m in procs]
    origin = world.origin_proc.pid
    m0 = bp.machine_busy()
    c0 = {p: bp.cpu_seconds(p) for p in pids}
    o0, s0 = bp.cpu_seconds(origin), time.process_time()
    timeout = 60 + len(jobs) / 10
    seen, secs = asyncio.run(asyncio.wait_for(run_jobs(jobs, conns, world.ctx), timeout))
    cpu = {p: bp.cpu_seconds(p) - c0[p] for p in pids}
    client = time.process_time() - s0
    gen = bp.cpu_seconds(origin) - o0 + client
    other = max(0.0, bp.machine_busy() - m0 - sum(cpu.values()) - gen)
    return Run(seen, secs, cpu, gen, client, other)


def outcome_metrics(m: Mitm) -> dict[str, float]:
    """monitor_connections_total by outcome, summed over platforms."""
    assert m.metrics_port is not None
    text = bp.http_get_json(m.metrics_port, "/metrics").decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("monitor_connections_total{"):
            o = re.search(r'outcome="([^"]+)"', line)
            if o:
                out[o.group(1)] = out.get(o.group(1), 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def metrics_delta(before: list[dict[str, float]], procs: Sequence[Mitm]) -> dict[str, float]:
    total: dict[str, float] = {}
    for b, m in zip(before, procs, strict=True):
        after = outcome_metrics(m)
        for k in set(after) | set(b):
            total[k] = total.get(k, 0.0) + after.get(k, 0.0) - b.get(k, 0.0)
    return total


def origin_seen(world: World, host: str) -> tuple[int, int]:
    stats = json.loads(bp.http_get_json(world.origin_ports["http_port"], "/__origin_stats"))
    got = stats["hosts"].get(host, [0, 0])
    return int(got[0]), int(got[1])


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def quiet(args: argparse.Namespace) -> float:
    return bp.wait_quiet(args.max_other, args.quiet_wait)


RERUNS: Counter[str] = Counter()  # runs done again because other load disturbed them


def settled(args: argparse.Namespace, what: str, go: Callable[[], list[Run]]) -> list[Run]:
    """Wait (bounded) for a quiet machine, run ``go`` (a pair of runs), and run it again
    (at most --reruns times per call, --rerun-budget in all) when other users' load exceeded
    --max-other cores during it."""
    for attempt in range(args.reruns + 1):
        quiet(args)
        runs = go()
        other = max(r.other / r.seconds for r in runs)
        if other <= args.max_other or attempt == args.reruns:
            return runs
        if sum(RERUNS.values()) >= args.rerun_budget:
            return runs
        RERUNS[what] += 1
    return runs


# --- 1. outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    host: str
    client: str
    path: str
    outcome: str  # what the addon's client sees and counts
    status: int  # the addon's answer (the CONNECT's for refused)
    bare: str | None  # what bare mitmdump does with it (None: nothing comparable)
    scale: int  # connections per run, in --conns-per-run units


SHAPES = (
    Shape("passthrough", OFF_CATALOGUE, TEEN, "/", "passthrough", 200, "passthrough", 2),
    Shape("refused", TIKTOK_API, UNDER13, "/", "refused", 403, None, 2),
    Shape("block page", TIKTOK, UNDER13, "/", "intercepted", 403, "intercepted", 1),
    Shape("allowed", YOUTUBE, TEEN, "/watch?v=bench", "intercepted", 200, "intercepted", 1),
)


def check_run(world: World, where: str, run: Run, outcome: str, status: int) -> None:
    bad = Counter(
        (s.outcome, s.status, s.detail[:80])
        for s in run.seen
        if (s.outcome, s.status) != (outcome, status)
    )
    if bad:
        world.problems.append(f"{where}: expected {outcome}/{status}, got {dict(bad)}")


def outcomes_part(
    world: World, addon: Mitm, bare: Mitm, args: argparse.Namespace
) -> dict[str, Any]:
    n0 = args.conns_per_run
    samples: dict[tuple[str, str], list[Run]] = {}
    print(
        f"\n== 1. outcomes: {args.rounds} rounds, {n0}-{2 * n0} new connections per run, "
        f"{args.conns} at a time",
        flush=True,
    )
    for sh in SHAPES:  # warm-up: certificates generated, code paths hot
        for m in (addon, bare) if sh.bare else (addon,):
            measure(world, [m], [Job(m.port, sh.client, sh.host, sh.path)] * 40, args.conns)

    def one(m: Mitm, sh: Shape) -> Run:
        n = n0 * sh.scale
        jobs = [Job(m.port, sh.client, sh.host, sh.path)] * n
        before = [outcome_metrics(addon)]
        o_before = origin_seen(world, sh.host)
        run = measure(world, [m], jobs, args.conns)
        where = f"outcomes/{sh.name}/{m.name}"
        if m is not addon:
            check_run(world, where, run, sh.bare or "", 200)
            return run
        check_run(world, where, run, sh.outcome, sh.status)
        delta = metrics_delta(before, [addon])
        if delta.get(sh.outcome, 0) != n:
            world.problems.append(f"{where}: metric {dict(delta)} for {n} connections")
        seen, restricted = (
            a - b for a, b in zip(origin_seen(world, sh.host), o_before, strict=True)
        )
        want = n if (sh.status == 200) else 0
        want_r = n if sh.host == YOUTUBE else 0
        if (seen, restricted) != (want, want_r):
            world.problems.append(
                f"{where}: origin saw {seen} ({restricted} restricted), expected {want} ({want_r})"
            )
        return run

    def one_pair(pair: list[Mitm], sh: Shape) -> list[Run]:
        return [one(m, sh) for m in pair]

    for rnd in range(args.rounds):
        line = []
        for sh in SHAPES:
            pair = [addon, bare] if sh.bare else [addon]
            if rnd % 2:
                pair.reverse()
            runs = settled(args, sh.name, functools.partial(one_pair, pair, sh))
            for m, run in zip(pair, runs, strict=True):
                samples.setdefault((sh.name, m.name), []).append(run)
                line.append(f"{sh.name[:6]}/{m.name} {run.rate:,.0f}")
        print(f"round {rnd + 1}/{args.rounds}: " + ", ".join(line), flush=True)

    def cell(runs: list[Run]) -> str:
        rs = [r.rate for r in runs]
        return f"{median(rs):,.0f} [{min(rs):,.0f}-{max(rs):,.0f}]"

    def cpu_ms(runs: list[Run]) -> float:
        return median([r.mitm_cpu / r.n * 1e3 for r in runs])

    print(
        "\nnew TLS connections/s per worker (median [min-max]) and mitmdump CPU per "
        "connection (ms, median); ratio = addon/bare of the medians; per core = 1 / CPU; "
        "busy = mitmdump's CPU while loaded; gen = client + origin, other = rest of the "
        "machine, in cores"
    )
    hdr = (
        f"{'outcome':<12} {'addon conn/s':>18} {'CPU ms':>7} {'bare conn/s':>18} "
        f"{'CPU ms':>7} {'ratio':>6} {'CPU ratio':>9} {'per core':>8} {'busy':>5} "
        f"{'gen':>5} {'other':>5}"
    )
    print(hdr)
    print("-" * len(hdr))
    per_outcome: dict[str, float] = {}
    for sh in SHAPES:
        a = samples[(sh.name, addon.name)]
        ca = cpu_ms(a)
        per_outcome[sh.name] = ca / 1e3
        busy = median([r.busy(r.mitm_cpu) for r in a])
        gen = median([r.busy(r.gen_cpu) for r in a])
        other = median([r.busy(r.other) for r in a])
        if sh.bare:
            b = samples[(sh.name, bare.name)]
            cb = cpu_ms(b)
            ratio = median([r.rate for r in a]) / median([r.rate for r in b])
            bare_cells = f"{cell(b):>18} {cb:>7.2f} {ratio:>6.2f} {cb / ca:>9.2f}"
        else:
            bare_cells = f"{'(cannot refuse)':>18} {'-':>7} {'-':>6} {'-':>9}"
        print(
            f"{sh.name:<12} {cell(a):>18} {ca:>7.2f} {bare_cells} {1e3 / ca:>8,.0f} "
            f"{busy:>5.0%} {gen:>5.2f} {other:>5.2f}"
        )
    print(
        "CPU ratio = bare CPU / addon CPU per connection (1.00: the addons cost nothing "
        "measurable). Block page: bare mitmdump fetches from the origin instead."
    )
    return per_outcome


# --- 2. scaling -------------------------------------------------------------------------------


def scaling_part(world: World, workers: list[Mitm], args: argparse.Namespace) -> dict[str, Any]:
    n = args.conns_per_run * 2
    split = Counter(worker_of(a, 2) for a in SCALE_CLIENTS)
    print(
        f"\n== 2. scaling: 1 vs 2 workers, {n} new connections per run from "
        f"{len(SCALE_CLIENTS)} addresses (jhash split over 2 workers: {split[0]}/{split[1]} "
        f"addresses), {args.conns} in flight per worker",
        flush=True,
    )
    # the load generator alone: the same client, straight to the origin over TLS
    direct = [
        Job(world.origin_ports["https_port"], a, OFF_CATALOGUE, "/", direct=True)
        for a in SCALE_CLIENTS
    ] * (n // len(SCALE_CLIENTS) + 1)
    measure(world, [], direct[:200], args.conns * 2)
    alone = settled(args, "generator", lambda: [measure(world, [], direct[:n], args.conns * 2)])[0]
    check_run(world, "scaling/generator alone", alone, "passthrough", 200)
    origin_ms = (alone.gen_cpu - alone.client_cpu) / alone.n * 1e3
    print(
        f"load generator alone (client -> origin, new TLS connection each, no proxy): "
        f"{alone.rate:,.0f} conn/s; client {alone.client_cpu / alone.n * 1e3:.2f} ms + "
        f"origin {origin_ms:.2f} ms CPU per connection"
    )
    workloads = {
        "block page": (TIKTOK, "intercepted", 403),
        "passthrough": (OFF_CATALOGUE, "passthrough", 200),
    }
    results: dict[tuple[str, int], list[Run]] = {}

    def pair(order: tuple[int, int], one: Callable[[int], Run]) -> list[Run]:
        return [one(k) for k in order]

    for wl, (host, outcome, status) in workloads.items():
        for k in (1, 2):  # warm-up
            jobs = [Job(workers[worker_of(a, k)].port, a, host) for a in SCALE_CLIENTS]
            measure(world, workers[:k], jobs, args.conns * k)

        def one(
            k: int, wl: str = wl, host: str = host, outcome: str = outcome, status: int = status
        ) -> Run:
            jobs = [
                Job(workers[worker_of(a, k)].port, a, host)
                for a in (SCALE_CLIENTS * (n // len(SCALE_CLIENTS) + 1))[:n]
            ]
            before = [outcome_metrics(w) for w in workers[:k]]
            run = measure(world, workers[:k], jobs, args.conns * k)
            where = f"scaling/{wl}/{k}w"
            check_run(world, where, run, outcome, status)
            delta = metrics_delta(before, workers[:k])
            if delta.get(outcome, 0) != n:
                world.problems.append(f"{where}: metric {dict(delta)} for {n} connections")
            return run

        for rnd in range(args.rounds):
            order = (1, 2) if rnd % 2 == 0 else (2, 1)
            runs = settled(args, f"scaling {wl}", functools.partial(pair, order, one))
            for k, run in zip(order, runs, strict=True):
                results.setdefault((wl, k), []).append(run)
            print(
                f"{wl} round {rnd + 1}/{args.rounds}: "
                + ", ".join(f"{k}w {r.rate:,.0f}" for k, r in zip(order, runs, strict=True)),
                flush=True,
            )
    print(
        "\nconn/s medians; busy in cores (mitmdump sum; gen = client + origin; other = the "
        "rest of the machine); CPU ms = mitmdump CPU per connection"
    )
    hdr = (
        f"{'workload':<12} {'1 worker':>9} {'2 workers':>9} {'ratio':>6} {'paired':>6} "
        f"{'busy 1w':>7} {'busy 2w':>7} {'gen 2w':>6} {'other 2w':>8} {'CPU ms 1w/2w':>13} "
        f"{'split 2w':>9}"
    )
    print(hdr)
    print("-" * len(hdr))
    out: dict[str, dict[str, float]] = {}
    for wl in workloads:
        r1, r2 = results[(wl, 1)], results[(wl, 2)]
        ratio = median([r.rate for r in r2]) / median([r.rate for r in r1])
        paired = median([b.rate / a.rate for a, b in zip(r1, r2, strict=True)])
        cpu1 = median([r.mitm_cpu / r.n * 1e3 for r in r1])
        cpu2 = median([r.mitm_cpu / r.n * 1e3 for r in r2])
        busy1 = median([r.busy(r.mitm_cpu) for r in r1])
        busy2 = median([r.busy(r.mitm_cpu) for r in r2])
        gen2 = median([r.busy(r.gen_cpu) for r in r2])
        other2 = median([r.busy(r.other) for r in r2])
        last = r2[-1]
        per = [last.proxy_cpu[w.pid] for w in workers[:2]]
        spl = f"{per[0] / sum(per):.0%}/{per[1] / sum(per):.0%}" if sum(per) else "-"
        m1, m2 = median([r.rate for r in r1]), median([r.rate for r in r2])
        print(
            f"{wl:<12} {m1:>9,.0f} {m2:>9,.0f} "
            f"{ratio:>6.2f} {paired:>6.2f} {busy1:>7.2f} {busy2:>7.2f} {gen2:>6.2f} "
            f"{other2:>8.2f} {cpu1:>6.2f}/{cpu2:<6.2f} {spl:>9}"
        )
        out[wl] = {
            "ratio": ratio,
            "rate1": m1,
            "busy2": busy2,
            "gen2": gen2,
            "other2": other2,
            "cpu1": cpu1,
            "cpu2": cpu2,
            "gen_ms": last.gen_cpu / last.n * 1e3,
        }
    cores = len(os.sched_getaffinity(0))
    for wl, o in out.items():
        total = o["busy2"] + o["gen2"] + o["other2"]
        verdict = "met" if o["ratio"] >= SCALE_TARGET else "MISSED"
        # the most 2 workers can do here: both busy, or the machine full with the generator
        bound = min(2e3 / o["cpu1"], cores * 1e3 / (o["cpu1"] + o["gen_ms"]))
        print(
            f"{wl}: 2 vs 1 workers {o['ratio']:.2f}x (target >= {SCALE_TARGET}: {verdict}). "
            f"With 2 workers the machine was {total:.2f} of {cores} cores busy: workers "
            f"{o['busy2']:.2f}, load generator {o['gen2']:.2f} ({o['gen_ms']:.2f} ms CPU per "
            f"connection), others {o['other2']:.2f}. On {cores} cores with this generator 2 "
            f"workers can do at most {bound:,.0f} conn/s = {bound / o['rate1']:.2f}x the 1-worker "
            f"rate; the workers' CPU per connection went {o['cpu1']:.2f} -> {o['cpu2']:.2f} ms, "
            f"so 2 workers on 2 cores of their own would give about "
            f"{2 * o['cpu1'] / o['cpu2']:.2f}x (CPU-normalised)."
        )
    return out


# --- 3. mix -----------------------------------------------------------------------------------


def mix_part(
    world: World, in_hours: list[Mitm], out_hours: Mitm, args: argparse.Namespace, classifier: Any
) -> dict[str, Any]:
    from monitor.platforms import catalogue as cat

    n_media, is_media = tm.media_host_matcher(cat.load())
    print(
        f"\n== 3. school-day mix: {args.mix} connections (seed {args.seed}), "
        f"{args.conns} at a time; catalogue media_hosts: "
        + (
            f"present ({n_media} platforms; media hosts pass through undecrypted)"
            if n_media
            else "absent (media hosts are decided like every other host of their platform)"
        ),
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for hours, procs in ((True, in_hours), (False, [out_hours])):
        mix = tm.generate(args.mix, args.seed, in_hours=hours)
        label = "in school hours" if hours else "out of hours"
        if is_media is not None:
            media = [c for c in mix if c.role == "media"]
            covered = sum(1 for c in media if is_media(c.host))
            print(
                f"{label}: {covered}/{len(media)} of the mix's media-host connections are "
                "catalogue media hosts"
            )
        # warm-up: every host once through every proxy (certificates), not counted
        for m in procs:
            uniq = {c.host: c for c in mix}.values()
            measure(world, [m], [Job(m.port, c.client, c.host, c.path) for c in uniq], args.conns)
        for mode in ("a", "b"):
            sent = [c for c in mix if mode == "a" or classifier(c.host) is not None]
            jobs = [
                Job(procs[worker_of(c.client, len(procs))].port, c.client, c.host, c.path)
                for c in sent
            ]
            got: dict[str, dict[str, float]] = {}

            def one(
                jobs: list[Job] = jobs,
                got: dict[str, dict[str, float]] = got,
                procs: list[Mitm] = procs,
            ) -> list[Run]:
                before = [outcome_metrics(m) for m in procs]
                run = measure(world, procs, jobs, args.conns)
                got["delta"] = metrics_delta(before, procs)
                return [run]

            run = settled(args, "mix", one)[0]
            delta = got["delta"]
            where = f"mix/{label}/{mode}"
            seen = Counter(s.outcome for s in run.seen)
            errors = [s for s in run.seen if s.outcome == "error"]
            if errors:
                world.problems.append(f"{where}: {len(errors)} errors, e.g. {errors[0]}")
            for o in ("passthrough", "intercepted", "refused"):
                if delta.get(o, 0) != seen.get(o, 0):
                    world.problems.append(
                        f"{where}: metric {o} +{delta.get(o, 0):g}, clients saw {seen.get(o, 0)}"
                    )
            n = len(mix)
            by_persona: dict[str, list[int]] = {}
            for c, s in zip(sent, run.seen, strict=True):
                tally = by_persona.setdefault(c.persona, [0, 0])
                tally[1] += s.outcome == "intercepted"
            for c in mix:
                by_persona.setdefault(c.persona, [0, 0])[0] += 1
            blocked = sum(1 for s in run.seen if s.outcome == "intercepted" and s.status == 403)
            if mode == "b":
                roles = Counter(
                    f"{c.role} {s.outcome}" for c, s in zip(sent, run.seen, strict=True)
                )
                print(
                    f"{label} (b): what reached the proxy, by the host's role: "
                    + ", ".join(f"{k} {v / len(sent):.0%}" for k, v in sorted(roles.items()))
                )
            rows.append(
                {
                    "hours": hours,
                    "mode": mode,
                    "n": n,
                    "reach": len(sent) / n,
                    "decrypted": delta.get("intercepted", 0) / n,
                    "blockpage": blocked / n,
                    "refused": delta.get("refused", 0) / n,
                    "passthrough": delta.get("passthrough", 0) / n,
                    "direct": (n - len(sent)) / n,
                    "teen": by_persona["teen"][1] / max(1, by_persona["teen"][0]),
                    "under13": by_persona["under13"][1] / max(1, by_persona["under13"][0]),
                    "cpu_per_mix_conn": run.mitm_cpu / n,
                    "rate": run.rate,
                }
            )
            print(
                f"{label} ({mode}): {len(sent)} connections to the proxy in {run.seconds:.1f} "
                f"s ({run.rate:,.0f}/s), mitmdump CPU {run.mitm_cpu:.2f} s",
                flush=True,
            )
    print(
        "\nshares of ALL the mix's TLS connections, from the proxies' "
        "monitor_connections_total{outcome} (checked against every client); (a) everything "
        "through the proxy, (b) PAC file or DNS-driven redirect (catalogue hosts only)"
    )
    hdr = (
        f"{'when':<16} {'mode':<4} {'reach proxy':>11} {'decrypted':>9} {'(block pg)':>10} "
        f"{'refused':>7} {'passthru':>8} {'direct':>6} {'teens decr':>10} "
        f"{'u13 decr':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        when = "school hours" if r["hours"] else "out of hours"
        print(
            f"{when:<16} {r['mode']:<4} {r['reach']:>11.1%} {r['decrypted']:>9.1%} "
            f"{r['blockpage']:>10.1%} {r['refused']:>7.1%} {r['passthrough']:>8.1%} "
            f"{r['direct']:>6.1%} {r['teen']:>10.1%} {r['under13']:>8.1%}"
        )
    for r in rows:
        if r["mode"] != "b":
            continue
        when = "school hours" if r["hours"] else "out of hours"
        reach = "met" if r["reach"] < MIX_TARGETS["reach_pac"] else "MISSED"
        dec = "met" if r["decrypted"] < MIX_TARGETS["decrypted"] else "MISSED"
        print(
            f"targets, {when}: reach proxy with PAC/redirect {r['reach']:.1%} (< 35%: {reach}); "
            f"decrypted {r['decrypted']:.1%} (< 8%: {dec})"
        )
    return {"rows": rows}


# --- 4. sizing --------------------------------------------------------------------------------


def sizing_part(per_outcome: dict[str, float], mix: dict[str, Any]) -> None:
    rate = tm.CONNECTIONS_PER_STUDENT_MINUTE / 60
    peak = rate * tm.PEAK_FACTOR
    print(
        f"\n== 4. sizing: one mitmdump worker is one core. Assumed per-student rate: "
        f"{tm.CONNECTIONS_PER_STUDENT_MINUTE:g} new TLS connections a minute in school hours "
        f"(bench/trafficmix.py says why), peak {tm.PEAK_FACTOR:g}x"
    )
    hdr = f"{'what':<44} {'CPU ms/conn':>11} {'conn/s per core':>15}"
    print(hdr)
    print("-" * len(hdr))
    for name, cpu in per_outcome.items():
        print(f"{name:<44} {cpu * 1e3:>11.2f} {1 / cpu:>15,.0f}")
    if not mix:
        return
    hdr = (
        f"{'mix in school hours':<44} {'CPU ms/mix conn':>15} {'mix conn/s/core':>15} "
        f"{'students/core':>13} {'at peak':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in mix["rows"]:
        if not r["hours"]:
            continue
        what = (
            "(a) all through the proxy (today)"
            if r["mode"] == "a"
            else "(b) PAC / DNS redirect (catalogue only)"
        )
        cpu = r["cpu_per_mix_conn"]
        print(
            f"{what:<44} {cpu * 1e3:>15.3f} {1 / cpu:>15,.0f} {1 / (cpu * rate):>13,.0f} "
            f"{1 / (cpu * peak):>8,.0f}"
        )
    if per_outcome:
        r = next(x for x in mix["rows"] if x["hours"] and x["mode"] == "a")
        blended = (
            r["passthrough"] * per_outcome["passthrough"]
            + r["refused"] * per_outcome["refused"]
            + r["blockpage"] * per_outcome["block page"]
            + (r["decrypted"] - r["blockpage"]) * per_outcome["allowed"]
        )
        print(
            f"cross-check: part 1's per-outcome CPU weighted by the mix's (a) shares gives "
            f"{blended * 1e3:.3f} ms per mix connection (the mix's own run measured "
            f"{r['cpu_per_mix_conn'] * 1e3:.3f} ms)"
        )
    print(
        "students per core: at 100% of a core; plan for 60-70% (headroom for peaks, "
        "reloads, incident writes)."
    )


# --- main -------------------------------------------------------------------------------------


def workers_option() -> str:
    """Whether ``monitor proxy`` has --workers yet (this bench spreads by itself either way)."""
    try:
        from monitor.cli.proxy import proxy_cmd

        names = {p.name for p in proxy_cmd.params}
    except Exception:  # noqa: BLE001 - a report line only
        return "unknown"
    return "present" if "workers" in names else "absent"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (2 rounds, small runs)")
    ap.add_argument(
        "--parts",
        default="outcomes,scaling,mix",
        help="comma-separated subset of outcomes, scaling, mix",
    )
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 2)")
    ap.add_argument(
        "--conns-per-run",
        type=int,
        default=None,
        help="new connections per timed run (x2 for passthrough and refused; "
        "default 400, quick 120)",
    )
    ap.add_argument("--conns", type=int, default=16, help="connections in flight per worker")
    ap.add_argument("--mix", type=int, default=None, help="mix connections (3000; quick 800)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="other users' load, in cores, to wait for before each run",
    )
    ap.add_argument("--quiet-wait", type=float, default=20, help="seconds to wait at most")
    ap.add_argument("--reruns", type=int, default=2, help="times a disturbed pair may be run again")
    ap.add_argument("--rerun-budget", type=int, default=20, help="reruns in all, at most")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.conns_per_run = args.conns_per_run or (120 if args.quick else 400)
    args.mix = args.mix or (800 if args.quick else 3000)
    for name, full, quick in (("quiet_wait", 10.0, 5.0), ("reruns", 2, 1), ("rerun_budget", 12, 4)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    parts = set(args.parts.split(","))
    for line in bp.machine():
        print(line)
    print(
        f"monitor proxy --workers: {workers_option()} (this bench starts and spreads "
        "its own workers)"
    )
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    world: World | None = None
    per_outcome: dict[str, float] = {}
    mix: dict[str, Any] = {}
    try:
        with bp.terminate_as_exit():
            district = example_district(base, always_in_hours=False)
            hosts = sorted(set(tm.all_hosts()) | {OFF_CATALOGUE, TIKTOK, TIKTOK_API, YOUTUBE})
            hosts.remove(OFF_CATALOGUE)
            ca = make_origin_ca(base / "ca", [OFF_CATALOGUE, *hosts])
            proc, ports = bp.start_origin(ca)
            world = World(base, district, proc, ports, origin_ca=ca.cert_pem)
            world.clock_in, world.clock_out = school_clocks(district)
            print(f"clocks: in school hours {world.clock_in}, out of hours {world.clock_out}")
            w0 = start_mitm(world, "w0", addon=True, clock=world.clock_in)
            w1 = start_mitm(world, "w1", addon=True, clock=world.clock_in)
            if "outcomes" in parts:
                bare = start_mitm(world, "bare", addon=False)
                per_outcome = outcomes_part(world, w0, bare, args)
                stop_mitm(world, bare)
            if "scaling" in parts:
                scaling_part(world, [w0, w1], args)
            if "mix" in parts:
                ooh = start_mitm(world, "ooh", addon=True, clock=world.clock_out)
                mix = mix_part(world, [w0, w1], ooh, args, tm.load_classifier())
            sizing_part(per_outcome, mix)
            print(
                f"runs done again because other users' load exceeded {args.max_other} cores "
                f"during them: {dict(RERUNS) or 'none'}"
            )
    finally:
        if world is not None:
            stop_all(world)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\ntook {time.monotonic() - started:.0f} s")
    if world is not None and world.problems:
        print(f"\nCHECKS FAILED ({len(world.problems)}):")
        for p in world.problems[:30]:
            print("  " + p)
        return 1
    print("checks: every connection had the expected outcome, metrics and origin agreed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: proxies and origin stopped", file=sys.stderr)
        sys.exit(130)
