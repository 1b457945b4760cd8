"""Benchmark: host → platform classification, the previous catalogue and the new one side by side,
and against a naive list-of-regexes matcher.

Run: scripts/bench classify   (or: .venv/bin/python bench/bench_classify.py)

The previous catalogue is, by default, the curated catalogue alone (without the names merged
from the pinned v2fly snapshot); ``--previous FILE`` names an older catalogue file instead
(``git show REV:monitor/platforms/data/catalogue.yaml > /tmp/prev.yaml``). Builds >= 200,000
host names from the new catalogue (subdomains of its suffixes, exact hosts, names matched by
its label patterns and under shared CDNs, names to normalise, and non-catalogue names), then
times both classifiers on the same names in alternating rounds (so that a busy machine slows
both alike), reporting the median ns per lookup of each; then a naive matcher (one compiled
regex per suffix/host, tried in order) on a sample. Prints sizes, lookups/s, the ratios and
the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import time
from collections.abc import Callable

from monitor.platforms import catalogue as cat
from monitor.platforms.classify import Classifier

TARGET = 1_000_000  # lookups/s


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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load {load:.1f}"


def size(c: cat.Catalogue) -> str:
    suffixes = sum(len(p.suffixes) for p in c)
    hosts = sum(len(p.hosts) for p in c)
    patterns = sum(len(p.patterns) for p in c)
    return (
        f"{len(c)} entries, {suffixes} suffixes, {hosts} exact hosts, {patterns} patterns "
        f"({len(c.imported)} names from the v2fly snapshot)"
    )


def make_hosts(c: cat.Catalogue, n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    suffixes = [s for p in c for s in p.suffixes]
    exact = [h for p in c for h in p.hosts]
    patterned = [
        "instagram.fxyz1-1.fna.fbcdn.net",
        "instagram-shv-01-ams2.fbcdn.net",
        "scontent.fxyz1-1.fna.fbcdn.net",
        "fbcdn-video-a-a.akamaihd.net",
        "www.pinterest.com.edgekey.net",
        "random-name.akamaized.net",
    ]
    words = ["www", "api", "cdn", "static", "m", "img", "video", "edge", "v16", "rr3---sn-x"]
    others = [
        "example.com",
        "wikipedia.org",
        "khanacademy.org",
        "google.com",
        "microsoft.com",
        "instructure.com",
        "akamaized.net",
        "cloudfront.net",
        "apple.com",
        "example.org",
    ]
    out: list[str] = []
    for i in range(n):
        r = rnd.random()
        if r < 0.4 and suffixes:
            out.append(f"{rnd.choice(words)}{i % 97}.{rnd.choice(suffixes)}")
        elif r < 0.5 and exact:
            out.append(rnd.choice(exact))
        elif r < 0.55:
            out.append(rnd.choice(patterned))
        elif r < 0.6:
            out.append(rnd.choice(suffixes).upper() + ".")  # needs normalising
        else:
            out.append(f"{rnd.choice(words)}{i % 1013}.{rnd.choice(others)}")
    return out


class NaiveMatcher:
    """What a hand-rolled filter often does: one regex per suffix, tried in order."""

    def __init__(self, c: cat.Catalogue) -> None:
        # exact names first, then the longest suffix (no CDN rules, no patterns)
        self.rules: list[tuple[re.Pattern[str], str]] = []
        for p in c:
            for h in p.hosts:
                self.rules.append((re.compile(r"^" + re.escape(h) + r"\.?$", re.I), p.id))
        suffixes = sorted(((s, p.id) for p in c for s in p.suffixes), key=lambda x: -len(x[0]))
        for s, pid in suffixes:
            self.rules.append((re.compile(r"(^|\.)" + re.escape(s) + r"\.?$", re.I), pid))

    def __call__(self, host: str) -> str | None:
        for rx, pid in self.rules:
            if rx.search(host):
                return pid
        return None


def time_round(lookup: Callable[[str], object], hosts: list[str]) -> float:
    t0 = time.perf_counter_ns()
    for h in hosts:
        lookup(h)
    return (time.perf_counter_ns() - t0) / len(hosts)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--hosts", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--naive-sample", type=int, default=5_000)
    ap.add_argument("--previous", help="an older catalogue file to compare with")
    args = ap.parse_args()

    new = cat.load()
    if args.previous:
        old = cat.load(shipped=args.previous, imported=False)
        old_label = args.previous
    else:
        old = cat.load(imported=False)
        old_label = "curated only (without the v2fly snapshot)"
    cls_new, cls_old = Classifier(new), Classifier(old)
    hosts = make_hosts(new, args.hosts)

    rounds: dict[str, list[float]] = {"previous": [], "new": []}
    for _ in range(args.rounds):
        rounds["previous"].append(time_round(cls_old.platform_of, hosts))
        rounds["new"].append(time_round(cls_new.platform_of, hosts))
    old_ns = statistics.median(rounds["previous"])
    new_ns = statistics.median(rounds["new"])

    naive = NaiveMatcher(new)
    sample = hosts[: args.naive_sample]
    naive_ns = statistics.median(time_round(naive, sample) for _ in range(3))
    plain = [h for h in sample if not any(c in h for c in new.shared_cdn_suffixes)]
    plain = [h for h in plain if "fbcdn" not in h]
    disagree = sum(1 for h in plain if cls_new(h) != naive(h))
    attributed_old = sum(1 for h in hosts[:20_000] if cls_old(h))
    attributed_new = sum(1 for h in hosts[:20_000] if cls_new(h))

    print(f"machine: {machine()}")
    print(f"previous catalogue ({old_label}): {size(old)}")
    print(f"new catalogue: {size(new)}")
    print(f"{len(hosts)} hosts x {args.rounds} alternating rounds, median ns/lookup:")
    for label, ns in (("previous", old_ns), ("new", new_ns)):
        print(
            f"  {label:<9} {ns:7.0f} ns = {1e9 / ns:>11,.0f} lookups/s "
            f"(rounds: {', '.join(f'{x:.0f}' for x in rounds[label])})"
        )
    print(
        f"new / previous time: {new_ns / old_ns:.2f}; of the first 20,000 names the previous "
        f"catalogue attributes {attributed_old}, the new one {attributed_new}"
    )
    print(
        f"naive regex list ({len(naive.rules)} rules): {len(sample)} hosts x 3 rounds, median "
        f"{naive_ns:.0f} ns/lookup = {1e9 / naive_ns:,.0f} lookups/s; the classifier is "
        f"{naive_ns / new_ns:.0f}x faster (same run)"
    )
    met = "met" if 1e9 / new_ns >= TARGET else "NOT met on this machine now"
    print(f"target >= {TARGET:,} lookups/s with the new catalogue: {met}")
    print(
        f"agreement with the naive matcher outside CDN rules: {len(plain) - disagree}/{len(plain)}"
    )


if __name__ == "__main__":
    main()
