"""Report benchmark: ``monitor report`` on a year of a large district's store.

    .venv/bin/python bench/bench_report.py [--quick] [--backend sqlite|postgresql|both]
                                           [--pg-url postgresql+psycopg://…]

Targets (issue 15): with a year of daily activity aggregates of a 50,000-student district
(25 schools) plus 1,000,000 incidents, the HTML report of one school and one month in < 3 s,
of the whole district and year in < 20 s, peak RSS < 500 MB; on SQLite and PostgreSQL.

The store is filled fast with bulk inserts (executemany of plain tuples; COPY on PostgreSQL):
about 1.4 million aggregate rows (per day, school, grade, platform, activity, decision; fewer
on weekends), 1,000,000 incidents over the year, acknowledgement and resolution records in the
record of access for one incident in ten, and 2,000 teacher overrides. Each report is the real
command in a child process (imports and the record of access included); its peak RSS comes
from wait4. ``--quick``: 5 schools and 100,000 incidents (a 10,000-student district).
The district is the example one with the extra schools added to its roster's orgs.csv.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "web"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_store import machine  # noqa: E402
from reviewharness import copy_district  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from monitor.incidents.events import pseudonym  # noqa: E402
from monitor.incidents.store import normalise_url, open_store  # noqa: E402
from monitor.incidents.store.migrations import upgrade  # noqa: E402

YEAR_START = date(2025, 9, 1)
DAYS = 365
KEY = b"bench-key-not-a-secret"
PLATFORMS = [
    "tiktok",
    "instagram",
    "snapchat",
    "youtube",
    "discord",
    "reddit",
    "twitter",
    "facebook",
    "twitch",
    "roblox",
    "pinterest",
    "threads",
    "whatsapp",
    "telegram",
    "character-ai",
    "youtube-kids",
    "nordvpn",
    "doh-google",
    "croxyproxy",
    "bereal",
]
ACTIVITIES = ["view", "post", "login"]
DECISIONS = ["allow", "block"]
GRADES = {
    "es": ["KG", "01", "02", "03", "04", "05"],
    "ms": ["06", "07", "08"],
    "hs": ["09", "10", "11", "12"],
}


def schools_of(n: int) -> list[tuple[str, str]]:
    """(label, kind): the example's es, ms, hs and n - 3 more (s04, …), mostly elementary."""
    out = [("es", "es"), ("ms", "ms"), ("hs", "hs")]
    kinds = ["es", "es", "es", "ms", "hs"]
    out += [(f"s{i:02d}", kinds[i % len(kinds)]) for i in range(4, n + 1)]
    return out


def add_schools(config: Path, schools: list[tuple[str, str]]) -> None:
    orgs = config / "roster" / "orgs.csv"
    lines = orgs.read_text().rstrip("\n").split("\n")
    for label, _kind in schools[3:]:
        lines.append(
            f"sch-{label},active,2026-07-15T12:00:00.000Z,Bench School {label},school,{label},"
            "org-district"
        )
    orgs.write_text("\n".join(lines) + "\n")


def band(grade: str) -> str:
    return "under13" if grade in ("KG", "01", "02", "03", "04", "05", "06") else "teen"


def aggregate_rows(schools: list[tuple[str, str]], rnd: random.Random) -> Iterator[tuple]:  # type: ignore[type-arg]
    for d in range(DAYS):
        day = YEAR_START + timedelta(days=d)
        weekend = day.weekday() >= 5
        for label, kind in schools:
            for grade in GRADES[kind]:
                platforms = PLATFORMS[:7] if weekend else PLATFORMS
                for platform in platforms:
                    for activity in ACTIVITIES[: 1 if weekend else 2]:
                        decision = "block" if rnd.random() < 0.4 else "allow"
                        rule = "under13" if decision == "block" else "default"
                        n = rnd.randint(1, 400)
                        yield (
                            day.isoformat(),
                            label,
                            band(grade),
                            grade,
                            platform,
                            activity,
                            decision,
                            rule,
                            "proxy",
                            n,
                            n // 10 if decision == "block" else 0,
                        )


def _iso(t: datetime) -> str:
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


def incident_rows(
    schools: list[tuple[str, str]], n: int, students: int, rnd: random.Random
) -> Iterator[tuple]:  # type: ignore[type-arg]
    people = [pseudonym(KEY, f"bench-student-{i}") for i in range(students)]
    labels = [s for s, _k in schools]
    start = datetime.combine(YEAR_START, datetime.min.time(), UTC)
    span = DAYS * 86400
    sev = ["low", "medium", "high"]
    for i in range(n):
        t = start + timedelta(seconds=(i * span) // n)
        p = rnd.randrange(students)
        status = "new" if i % 10 else rnd.choice(["acknowledged", "resolved"])
        yield (
            f"{i:032x}",
            _iso(t),
            _iso(t),
            _iso(t),
            rnd.randint(1, 5),
            labels[p % len(labels)],
            "07",
            "under13",
            "student",
            people[p],
            rnd.choice(PLATFORMS[:12]),
            "view",
            "block",
            "under13",
            "Blocked.",
            "www.example.com",
            "proxy",
            rnd.choice(sev),
            status,
            "",
        )


INCIDENT_COLS = (
    "dedupe_key, window_start, first_seen, last_seen, count, school, grade, age_band, "
    "role, person, platform, activity, decision, rule_id, reason, host, source, "
    "severity, status, notes"
)
AGG_COLS = (
    "day, school, age_band, grade, platform, activity, decision, rule_id, source, requests, refused"
)


def bulk(url: str, table: str, cols: str, rows: Iterator[tuple], batch: int = 50_000) -> int:  # type: ignore[type-arg]
    """Insert ``rows`` fast: COPY on PostgreSQL, executemany on SQLite."""
    u = normalise_url(url)
    n = 0
    if u.get_backend_name() == "postgresql":
        import psycopg

        conninfo = u.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
                    n += 1
        return n
    import sqlite3

    db = sqlite3.connect(u.database or "")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" * len(cols.split(",")))
    chunk: list[tuple] = []  # type: ignore[type-arg]
    for r in rows:
        chunk.append(r)
        if len(chunk) >= batch:
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", chunk)
            n += len(chunk)
            chunk = []
    if chunk:
        db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", chunk)
        n += len(chunk)
    db.commit()
    db.close()
    return n


def fill(
    url: str, schools: list[tuple[str, str]], incidents: int, students: int
) -> dict[str, float]:
    rnd = random.Random(15)
    upgrade(url)
    out: dict[str, float] = {}
    t = time.perf_counter()
    out["aggregate_rows"] = bulk(url, "daily_activity", AGG_COLS, aggregate_rows(schools, rnd))
    t_inc = time.perf_counter()
    out["aggregates_s"] = t_inc - t
    out["incidents"] = bulk(
        url, "incidents", INCIDENT_COLS, incident_rows(schools, incidents, students, rnd)
    )
    out["incidents_s"] = time.perf_counter() - t_inc
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        # record of access: who acknowledged or resolved the reviewed incidents (1 in 10)
        ids = [
            r[0]
            for r in conn.execute(
                text("SELECT id, first_seen, status FROM incidents WHERE status != 'new'")
            )
        ]
    access = []
    start = datetime.combine(YEAR_START, datetime.min.time(), UTC)
    for k, i in enumerate(ids):
        at = start + timedelta(seconds=((i - 1) * DAYS * 86400) // incidents + 3600 * (1 + k % 20))
        access.append(
            (
                _iso(at),
                f"counselor{k % 40}",
                "counselor",
                "Counselor",
                "review",
                None,
                None,
                i,
                "acknowledge: status new → acknowledged",
                "",
            )
        )
    acc_cols = (
        "at, account, role, position, action, person, sourced_id, incident_id, detail, reason"
    )
    out["access_records"] = bulk(url, "access_log", acc_cols, iter(access))
    grants = []
    for k in range(2000):
        s = start + timedelta(hours=6 * k)
        grants.append(
            (
                f"ov-{k}",
                rnd.choice(PLATFORMS[:6]),
                "teacher",
                "teacher",
                None,
                json.dumps([f"stu-{k:05d}"]),
                _iso(s),
                _iso(s + timedelta(hours=2)),
                "",
                _iso(s),
                None,
                None,
                k,
                k,
            )
        )
    ov_cols = (
        "id, platform, granted_by, granted_by_role, class_id, students, starts, ends, reason,"
        " created, revoked_at, revoked_by, position, version"
    )
    bulk(url, "overrides", ov_cols, iter(grants))
    if normalise_url(url).get_backend_name() == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    out["fill_s"] = time.perf_counter() - t
    return out


def run_report(config: Path, url: str, args: list[str], out: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one ``monitor report``
    child process."""
    cmd = [
        sys.executable,
        "-m",
        "monitor",
        "report",
        "--config",
        str(config),
        "--db",
        url,
        "--out",
        str(out),
        *args,
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    _pid, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if status != 0:
        raise RuntimeError(f"monitor report failed: {err}")
    return took, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    import pg

    bindir = pg.find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries: give --pg-url")
    with pg.running_cluster(bindir) as cluster:
        yield cluster.url


def bench(
    backend: str,
    url: str,
    config: Path,
    work: Path,
    schools: list[tuple[str, str]],
    incidents: int,
    students: int,
) -> dict[str, object]:
    filled = fill(url, schools, incidents, students)
    # one school, one month (the school year's busiest: October); the district, the year
    month = ["--from", "2025-10-01", "--to", "2025-10-31", "--school", "hs"]
    year = [
        "--from",
        YEAR_START.isoformat(),
        "--to",
        (YEAR_START + timedelta(days=DAYS - 1)).isoformat(),
    ]
    result: dict[str, object] = {"backend": backend, **filled}
    for name, args in (("school_month", month), ("district_year", year)):
        runs = [run_report(config, url, args, work / f"{backend}-{name}.html") for _ in range(3)]
        result[f"{name}_s"] = sorted(r[0] for r in runs)[1]  # median of 3
        result[f"{name}_cpu_s"] = sorted(r[2] for r in runs)[1]
        result[f"{name}_rss_mb"] = max(r[1] for r in runs)
    csv = run_report(config, url, [*year, "--format", "csv"], work / f"{backend}.csv")
    result["district_year_csv_s"], result["district_year_csv_rss_mb"] = csv[0], csv[1]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 schools, 100,000 incidents")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg-url", help="an empty PostgreSQL database (default: a throwaway cluster)")
    ap.add_argument(
        "--workdir", help="keep the district and the SQLite store here (a new directory)"
    )
    a = ap.parse_args()
    n_schools, incidents, students = (5, 100_000, 10_000) if a.quick else (25, 1_000_000, 50_000)
    schools = schools_of(n_schools)
    print(machine(), flush=True)
    print(
        f"{'quick: ' if a.quick else ''}{n_schools} schools, {students} students, {DAYS} days, "
        f"{incidents} incidents",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.workdir or tmp)
        config = copy_district(work / "district")
        add_schools(config, schools)
        if a.backend in ("sqlite", "both"):
            url = f"sqlite:///{work / 'bench.sqlite'}"
            open_store(url).close()
            results.append(bench("sqlite", url, config, work, schools, incidents, students))
            print(json.dumps(results[-1]), flush=True)
        if a.backend in ("postgresql", "both"):
            with postgres(a.pg_url) as url:
                open_store(url).close()
                results.append(bench("postgresql", url, config, work, schools, incidents, students))
                print(json.dumps(results[-1]), flush=True)
    out = io.StringIO()
    out.write(
        f"{'backend':<11} {'school/month wall (cpu)':>24} {'district/year wall (cpu)':>25}"
        f" {'peak RSS':>9}\n"
    )
    for r in results:
        rss = max(float(r["school_month_rss_mb"]), float(r["district_year_rss_mb"]))  # type: ignore[arg-type]
        month = f"{r['school_month_s']:.2f}s ({r['school_month_cpu_s']:.2f}s)"
        year = f"{r['district_year_s']:.2f}s ({r['district_year_cpu_s']:.2f}s)"
        out.write(f"{r['backend']:<11} {month:>24} {year:>25} {rss:>7.0f}MB\n")
    out.write(f"{'targets':<11} {'< 3 s':>24} {'< 20 s':>25} {'< 500 MB':>9}\n")
    print(out.getvalue())


if __name__ == "__main__":
    main()
