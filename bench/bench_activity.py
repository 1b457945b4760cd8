"""Benchmark: request → activity over the real API requests of the endpoint table, with the
shipped catalogue and, side by side, a previous catalogue file.

Run: scripts/bench activity   (or: .venv/bin/python bench/bench_activity.py)

``--previous FILE`` names an older catalogue file
(``git show REV:monitor/platforms/data/catalogue.yaml > /tmp/prev.yaml``); without it the
previous catalogue is the shipped one with every activity rule and read-only entry dropped
(only the default left). Both are timed on the same requests (tests/platforms/data/
api_endpoints.yaml, as apps send them) in alternating rounds, so that a busy machine slows both
alike; prints the median µs per request, requests/s, the ratio, each catalogue's share of right
activities on the table, and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path

import yaml

from monitor.platforms import catalogue as cat
from monitor.platforms.activity import request_activity
from monitor.platforms.classify import Classifier

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "platforms" / "data" / "api_endpoints.yaml"

Request = tuple[cat.Platform, str, str, str, dict[str, str], str]


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def requests_for(c: Classifier, rows: list[list[object]]) -> list[Request]:
    out: list[Request] = []
    for row in rows:
        _, method, host, path, activity, _src, *rest = (x for x in row)
        p = c.platform_of(str(host))
        if p is None:
            continue
        headers = dict(rest[0]) if rest and isinstance(rest[0], dict) else {}
        out.append((p, str(method), str(host), str(path), headers, str(activity)))
    return out


def one_round(c: Classifier, reqs: list[Request], repeat: int) -> float:
    """µs per request over ``repeat`` passes of the table."""
    platform_of = c.platform_of
    t = time.perf_counter()
    for _ in range(repeat):
        for p, method, host, path, headers, _ in reqs:
            request_activity(p, method, host, path, headers, platform_of)
    return (time.perf_counter() - t) / (repeat * len(reqs)) * 1e6


def accuracy(c: Classifier, reqs: list[Request]) -> float:
    right = sum(
        request_activity(p, m, h, path, hdr, c.platform_of) == want
        for p, m, h, path, hdr, want in reqs
    )
    return right / len(reqs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--previous", type=Path, default=None, help="an older catalogue file")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=50, help="passes of the table per round")
    args = ap.parse_args()

    rows = yaml.safe_load(TABLE.read_text())["endpoints"]
    new = Classifier(cat.load())
    if args.previous:
        old = Classifier(cat.load(shipped=args.previous))
        label = str(args.previous)
    else:
        bare = {
            pid: dataclasses.replace(p, activities=(), read_only=())
            for pid, p in new.catalogue.platforms.items()
        }
        old = Classifier(dataclasses.replace(new.catalogue, platforms=bare))
        label = "the shipped catalogue without activity rules"
    reqs_new, reqs_old = requests_for(new, rows), requests_for(old, rows)

    times_new: list[float] = []
    times_old: list[float] = []
    one_round(new, reqs_new, 2)  # warm up
    one_round(old, reqs_old, 2)
    for _ in range(args.rounds):
        times_old.append(one_round(old, reqs_old, args.repeat))
        times_new.append(one_round(new, reqs_new, args.repeat))
    t_new, t_old = statistics.median(times_new), statistics.median(times_old)
    rules = sum(len(p.activities) + len(p.read_only) for p in new.catalogue)
    print(f"machine: {machine()}")
    print(f"table: {len(reqs_new)} requests ({TABLE.relative_to(ROOT)})")
    print(f"previous: {label}")
    print(
        f"  previous: {t_old:6.2f} µs/request  {1 / t_old:7.3f} M requests/s  "
        f"right activity {accuracy(old, reqs_old):.3f}"
    )
    print(
        f"  shipped:  {t_new:6.2f} µs/request  {1 / t_new:7.3f} M requests/s  "
        f"right activity {accuracy(new, reqs_new):.3f}  ({rules} rules)"
    )
    print(f"  ratio shipped/previous time: {t_new / t_old:.2f}")


if __name__ == "__main__":
    main()
