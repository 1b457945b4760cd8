"""Benchmark: load a synthetic 50,000-person OneRoster export (1.1 and 1.2), then apply a delta.

    /tmp/v/bin/python bench/bench_roster.py [--people 50000] [--classes-per-student 6]

The roster is written by tests/oneroster_factory.py into a temporary directory; each load then
runs in a fresh child process so that its peak RSS is the loader's, not the generator's. CPU
seconds are printed beside wall seconds: on a shared machine they vary less.
Targets: under 5 s and under 300 MB peak RSS for 50,000 people.

With a state directory (as the proxy loads it) the first load keeps a copy of the bulk export;
a delta export of --delta changes (new students, grade changes, deletions) dropped into a
subdirectory is then merged over it and the merged roster loaded (figures printed, no target).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2025, 9, 1)


def peak_rss_kb() -> int:
    """This process's peak resident set size in kB.

    VmHWM belongs to the address space, so it starts afresh at exec; ``ru_maxrss`` on Linux
    carries the parent's high-water mark across exec and would count the generator's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS


def child(directory: str, state: str | None) -> None:
    """Load one roster and print its figures as JSON (runs in a fresh interpreter)."""
    from monitor.people.roster import load_roster

    base_kb = peak_rss_kb()
    start, cpu = time.perf_counter(), time.process_time()
    load = load_roster(directory, today=TODAY, state=state)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_kb = peak_rss_kb()
    roster = load.roster
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "deltas": len(load.deltas),
                "peak_rss_mb": peak_kb / 1024,
                "base_rss_mb": base_kb / 1024,
                "people": len(roster.people),
                "classes": len(roster.classes),
                "enrollments": sum(len(p.classes) for p in roster.people.values()),
                "problems": len(load.problems),
                "bands": roster.counts(TODAY).by_age_band,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--classes-per-student", type=int, default=6)
    parser.add_argument("--delta", type=int, default=1500, help="changes in the delta export")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        child(args.load, args.state)
        return

    sys.path.insert(0, str(ROOT / "tests"))
    from oneroster_factory import write_district

    teachers = max(1, args.people // 20)
    students = args.people - teachers
    print(
        f"roster: {students} students, {teachers} teachers, "
        f"{args.classes_per_student} classes per student"
    )
    for version in ("1.1", "1.2"):
        with tempfile.TemporaryDirectory(prefix="bench-roster-") as tmp:
            t0 = time.perf_counter()
            write_district(
                Path(tmp),
                students=students,
                teachers=teachers,
                schools=20,
                version=version,
                classes_per_student=args.classes_per_student,
                class_size=25,
                disabled=students // 100,
                today=TODAY,
            )
            size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
            written = time.perf_counter() - t0
            r = load_in_child(tmp)
            ok = "ok" if r["seconds"] < 5 and r["peak_rss_mb"] < 300 else "OVER TARGET"
            print(
                f"OneRoster {version}: {size_mb:.1f} MB of CSV (written in {written:.1f} s); "
                f"load {r['seconds']:.2f} s (CPU {r['cpu_seconds']:.2f} s), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB "
                f"(interpreter + imports {r['base_rss_mb']:.0f} MB); "
                f"{r['people']} people, {r['classes']} classes, "
                f"{r['enrollments']} enrollments, {r['problems']} problems; "
                f"bands {r['bands']} [{ok}]"
            )
            with tempfile.TemporaryDirectory(prefix="bench-roster-state-") as state:
                first = load_in_child(tmp, state)
                n = write_bench_delta(Path(tmp), version, args.delta)
                d = load_in_child(tmp, state)
            assert d["deltas"] == 1, d
            print(
                f"  with a state directory: first load (keeps the base) {first['seconds']:.2f} s; "
                f"a delta of {n} changes merged and loaded {d['seconds']:.2f} s "
                f"(CPU {d['cpu_seconds']:.2f} s), peak RSS {d['peak_rss_mb']:.0f} MB; "
                f"{d['people']} people"
            )


def load_in_child(directory: str, state: str | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--load", directory]
    if state:
        command += ["--state", state]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def write_bench_delta(directory: Path, version: str, changes: int) -> int:
    """A delta export in ``directory/delta-1``: a third new students, a third grade changes of
    existing ones, a third deletions; returns the number of changes."""
    from oneroster_factory import FakePerson, person_rows, read_csv, tombstone, write_delta

    when = "2025-09-02T06:00:00Z"
    header, rows = read_csv(directory / "users.csv")
    sid_i = header.index("sourcedId")
    students = [r for r in rows if r[sid_i].startswith("stu-")]
    third = changes // 3
    files: dict[str, list[dict[str, str]]] = {"users.csv": [], "demographics.csv": []}
    if version == "1.2":
        files["roles.csv"] = []
    for n in range(third):
        p = FakePerson(
            f"new-{n:05d}", f"new{n:05d}", "student", "sch-1", "05", date(2014, 5, 6),
            f"New{n:05d}", "Testperson",
        )  # fmt: skip
        for name, row in person_rows(p, version).items():
            files[name].append(row)
    for row in students[:third]:
        files["users.csv"].append({**dict(zip(header, row, strict=True)), "grades": "11"})
    for row in students[third : 2 * third]:
        files["users.csv"].append(tombstone(row[sid_i], when))
    write_delta(directory / "delta-1", version, files, when=when)
    return 3 * third


if __name__ == "__main__":
    main()
