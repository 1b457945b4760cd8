"""Incident store benchmark: batch writer throughput and first-page list latency.

    /tmp/v/bin/python bench/bench_store.py [--events 100000] [--batch 1000] [--rows 1000000]
                                           [--url postgresql+psycopg://…]

Targets: >= 20,000 incidents/s written in batches to SQLite; first page (50) of a filtered
list over 1,000,000 incidents in < 200 ms median. Without --url a temporary SQLite file is used.
The 1,000,000 incidents for the list test are written through the store (one event each, so
that run is also a write figure for a growing store); --url against PostgreSQL drops and
recreates the incident tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy
from sqlalchemy import update

from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.incidents.store import IncidentFilter, SqlIncidentStore, normalise_url, open_store
from monitor.incidents.store.schema import incidents, metadata
from monitor.model import SEVERITIES

T0 = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
SCHOOLS = [f"SCH-{i:02d}" for i in range(20)]
PLATFORMS = ["tiktok", "instagram", "snapchat", "youtube", "discord", "reddit", "x", "facebook",
             "twitch", "roblox"]  # fmt: skip


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}"
    )


KEY = b"bench-key-not-a-secret"


def person(n: int) -> str:
    # Real pseudonyms: random-looking, so inserts spread as they would in a district.
    return pseudonym(KEY, f"fake-student-{n}")


def make_events(n: int, persons: int, rnd: random.Random) -> list[IncidentEvent]:
    people = [person(i) for i in range(min(n, persons))]
    return [
        IncidentEvent(
            time=T0 + timedelta(seconds=i * 0.05),
            person=rnd.choice(people),
            school=rnd.choice(SCHOOLS),
            grade="6",
            age_band="under13",
            role="student",
            platform=rnd.choice(PLATFORMS),
            activity="view",
            action="block",
            rule_id="age.under13",
            reason="Students 12 and under: platforms for children only.",
            host="www.example.com",
            source="proxy",
            severity=rnd.choice(SEVERITIES),
        )  # fmt: skip
        for i in range(n)
    ]


def bench_write(url: str, events: list[IncidentEvent], batch: int, label: str) -> None:
    store = open_store(url)
    try:
        t = time.perf_counter()
        for i in range(0, len(events), batch):
            store.write_batch(events[i : i + batch])
        dt = time.perf_counter() - t
        n_inc = store.count()
    finally:
        store.close()
    print(f"write {label:<34} {len(events):>8} events in {dt:6.2f} s = "
          f"{len(events) / dt:>9,.0f} events/s  ({n_inc:,} incidents)")  # fmt: skip


def populate(store: SqlIncidentStore, rows: int, batch: int, rnd: random.Random) -> None:
    """``rows`` incidents through the real write path (one event each), 90 days of them."""
    span = 90 * 24 * 3600
    writing = 0.0
    t = time.perf_counter()
    for start in range(0, rows, batch):
        events = [
            IncidentEvent(
                time=T0 + timedelta(seconds=(i * span) // rows),
                person=person(i),
                school=rnd.choice(SCHOOLS),
                grade="6",
                age_band="under13",
                role="student",
                platform=rnd.choice(PLATFORMS),
                activity="view",
                action="block",
                rule_id="age.under13",
                reason="Students 12 and under: platforms for children only.",
                host="www.example.com",
                source="proxy",
                severity=rnd.choice(SEVERITIES),
            )  # fmt: skip
            for i in range(start, min(rows, start + batch))
        ]
        w = time.perf_counter()
        store.write_batch(events)
        writing += time.perf_counter() - w
    dt = time.perf_counter() - t
    label = f"store growing to {rows:,}, batch {batch}"
    print(
        f"write {label:<34} {rows:>8} events in {writing:6.2f} s = "
        f"{rows / writing:>9,.0f} events/s  ({rows / dt:,.0f}/s with event creation)"
    )
    # Most incidents of the past are resolved; a tenth are new, a tenth acknowledged.
    with store.engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id % 10 < 8).values(status="resolved"))
        conn.execute(
            update(incidents).where(incidents.c.id % 10 == 8).values(status="acknowledged")
        )
        if store.dialect == "sqlite":
            conn.exec_driver_sql("ANALYZE")
    if store.dialect == "postgresql":  # what autovacuum would do after the mass update
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE incidents")


def bench_list(store: SqlIncidentStore, repeats: int) -> None:
    cases = [
        ("no filter", IncidentFilter()),
        ("school", IncidentFilter(school="SCH-07")),
        ("platform", IncidentFilter(platform="snapchat")),
        ("status=new", IncidentFilter(status="new")),
        ("severity=high", IncidentFilter(severity="high")),
        ("school+platform", IncidentFilter(school="SCH-07", platform="tiktok")),
        ("school+status+severity", IncidentFilter(school="SCH-03", status="new", severity="high")),
        ("since 7 days", IncidentFilter(since=T0 + timedelta(days=83))),
        ("person", IncidentFilter(person=person(4242))),
    ]
    for label, f in cases:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            page = store.list(f, limit=50)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        n = store.count(f)
        count_ms = (time.perf_counter() - t) * 1000
        times.sort()
        median_ms = statistics.median(times) * 1000
        p95_ms = times[int(len(times) * 0.95) - 1] * 1000
        print(f"list  {label:<24} first page of {n:>9,}: median {median_ms:7.2f} ms, "
              f"p95 {p95_ms:7.2f} ms  (rows {len(page)}; count() {count_ms:7.1f} ms)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--url", help="store URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    print(machine())
    rnd = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:

        def fresh(name: str) -> str:
            if args.url is None:
                return f"sqlite:///{Path(tmp) / name}"
            engine = sqlalchemy.create_engine(open_store(args.url).url)
            metadata.drop_all(engine)
            engine.dispose()
            return args.url

        where = "SQLite (WAL, synchronous=FULL)"
        if args.url is not None:
            where = normalise_url(args.url).render_as_string(hide_password=True)
        print(f"store: {where}")
        distinct = make_events(args.events, persons=args.events, rnd=rnd)
        bench_write(fresh("w1.db"), distinct, args.batch, f"new incidents, batch {args.batch}")
        flood = make_events(args.events, persons=200, rnd=rnd)
        bench_write(fresh("w2.db"), flood, args.batch, f"200 people flood, batch {args.batch}")
        small = distinct[: args.events // 4]
        bench_write(fresh("w3.db"), small, 100, "new incidents, batch 100")

        url = fresh("list.db")
        store = open_store(url)
        try:
            populate(store, args.rows, args.batch, rnd)
            bench_list(store, args.repeats)
        finally:
            store.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
