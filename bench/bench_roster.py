"""Benchmark: load a synthetic 50,000-person OneRoster export (1.1 and 1.2).

    /tmp/v/bin/python bench/bench_roster.py [--people 50000] [--classes-per-student 6]

The roster is written by tests/oneroster_factory.py into a temporary directory; each load then
runs in a fresh child process so that its peak RSS is the loader's, not the generator's.
Targets: under 5 s and under 300 MB peak RSS for 50,000 people.
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


def child(directory: str) -> None:
    """Load one roster and print its figures as JSON (runs in a fresh interpreter)."""
    from monitor.people.roster import load_roster

    base_kb = peak_rss_kb()
    start = time.perf_counter()
    load = load_roster(directory, today=TODAY)
    seconds = time.perf_counter() - start
    peak_kb = peak_rss_kb()
    roster = load.roster
    print(
        json.dumps(
            {
                "seconds": seconds,
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
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        child(args.load)
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
            out = subprocess.run(
                [sys.executable, __file__, "--load", tmp],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout
            r = json.loads(out)
            ok = "ok" if r["seconds"] < 5 and r["peak_rss_mb"] < 300 else "OVER TARGET"
            print(
                f"OneRoster {version}: {size_mb:.1f} MB of CSV (written in {written:.1f} s); "
                f"load {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
                f"(interpreter + imports {r['base_rss_mb']:.0f} MB); "
                f"{r['people']} people, {r['classes']} classes, "
                f"{r['enrollments']} enrollments, {r['problems']} problems; "
                f"bands {r['bands']} [{ok}]"
            )


if __name__ == "__main__":
    main()
