"""What the notification outbox and the incident event log cost the store's writer.

    .venv/bin/python bench/bench_notify.py [--events 100000] [--batch 500] [--high 0.1] [--rounds 5]

Writes the same events (a share ``--high`` of them high severity, each its own incident) into
three fresh SQLite stores: plain, with the outbox (severities: high), and with the outbox and
the JSONL event log; prints events per second (wall clock, and per CPU second of the
writer: steadier on a shared machine) of each, median of interleaved rounds, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.incidents.events import IncidentEvent
from monitor.incidents.store import open_store
from monitor.incidents.store.outboxschema import OutboxFilter
from monitor.notify.eventlog import EventLog

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def events(n: int, high: float, seed: int) -> list[IncidentEvent]:
    rng = random.Random(seed)
    return [
        IncidentEvent(
            time=T0 + timedelta(milliseconds=i * 10), person=f"p-{rng.getrandbits(64):016x}",
            school=f"s{i % 20}", grade="7", age_band="teen", role="student",
            platform="nordvpn" if rng.random() < high else "tiktok", activity="view",
            action="block", rule_id="r", reason="bench", host="example.com", source="proxy",
            severity="high" if rng.random() < high else "low",
        )
        for i in range(n)
    ]  # fmt: skip


def run(
    evs: list[IncidentEvent], batch: int, make: Callable[[Path], object]
) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second of this process)."""
    with tempfile.TemporaryDirectory() as d:
        store = make(Path(d))
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(evs), batch):
            store.write_batch(evs[i : i + batch])  # type: ignore[attr-defined]
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()  # type: ignore[attr-defined]
    return len(evs) / took, len(evs) / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--high", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    evs = events(a.events, a.high, 1)
    high = frozenset({"high"})
    variants: dict[str, Callable[[Path], object]] = {
        "plain": lambda d: open_store(f"sqlite:///{d / 's.sqlite'}"),
        "outbox": lambda d: open_store(f"sqlite:///{d / 's.sqlite'}", outbox=OutboxFilter(high)),
        "outbox+log": lambda d: open_store(
            f"sqlite:///{d / 's.sqlite'}",
            outbox=OutboxFilter(high),
            event_sink=EventLog(d / "log" / "events.jsonl"),
        ),
    }
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"Python {platform.python_version()}; {a.events} events in batches of {a.batch}, "
          f"{a.high:.0%} high")  # fmt: skip
    # interleaved rounds: a shared machine's load drifts, and each variant should see the same
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(a.rounds):
        for name, make in variants.items():
            samples[name].append(run(evs, a.batch, make))
    wall = {name: statistics.median(w for w, _ in v) for name, v in samples.items()}
    cpu = {name: statistics.median(c for _, c in v) for name, v in samples.items()}
    for name in variants:
        print(
            f"{name:<11} {wall[name]:>9,.0f} events/s ({wall[name] / wall['plain']:.2f} of "
            f"plain), {cpu[name]:>9,.0f} per CPU s ({cpu[name] / cpu['plain']:.2f})"
        )


if __name__ == "__main__":
    main()
