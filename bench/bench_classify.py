"""Benchmark: host → platform classification against a naive list-of-regexes matcher.

Run: scripts/bench classify   (or: .venv/bin/python bench/bench_classify.py)

Builds >= 200,000 host names (subdomains of catalogue suffixes, exact catalogue hosts, and
non-catalogue names), then times, in the same process and run:
  * the shipped Classifier (normalisation + exact dict + label-suffix walk), over all names,
    in several rounds, reporting the median ns per lookup;
  * a naive matcher: one compiled regex per suffix/host, tried in order, on a sample.
Prints lookups/s, the ratio, and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import time

from monitor.platforms import catalogue as cat
from monitor.platforms.classify import Classifier


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
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def make_hosts(c: cat.Catalogue, n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    suffixes = [s for p in c for s in p.suffixes]
    exact = [h for p in c for h in p.hosts]
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
        elif r < 0.6:
            out.append(rnd.choice(suffixes).upper() + ".")  # needs normalising
        else:
            out.append(f"{rnd.choice(words)}{i % 1013}.{rnd.choice(others)}")
    return out


class NaiveMatcher:
    """What a hand-rolled filter often does: one regex per suffix, tried in order."""

    def __init__(self, c: cat.Catalogue) -> None:
        # same semantics as the classifier: exact names first, then the longest suffix
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--naive-sample", type=int, default=5_000)
    args = ap.parse_args()

    c = cat.load()
    cls = Classifier(c)
    hosts = make_hosts(c, args.hosts)
    naive = NaiveMatcher(c)

    lookup = cls.platform_of
    per_round: list[float] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter_ns()
        for h in hosts:
            lookup(h)
        per_round.append((time.perf_counter_ns() - t0) / len(hosts))
    fast_ns = statistics.median(per_round)

    sample = hosts[: args.naive_sample]
    naive_rounds: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter_ns()
        for h in sample:
            naive(h)
        naive_rounds.append((time.perf_counter_ns() - t0) / len(sample))
    naive_ns = statistics.median(naive_rounds)

    # the two must agree (the naive matcher does no IDNA, so compare on plain ASCII names)
    disagree = sum(1 for h in sample if (cls(h) or None) != naive(h))

    print(f"machine: {machine()}")
    print(f"catalogue: {len(c)} entries, {len(naive.rules)} host/suffix rules")
    print(
        f"classifier: {len(hosts)} hosts x {args.rounds} rounds, median {fast_ns:.0f} ns/lookup "
        f"= {1e9 / fast_ns:,.0f} lookups/s (rounds: {', '.join(f'{x:.0f}' for x in per_round)})"
    )
    print(
        f"naive regex list: {len(sample)} hosts x 3 rounds, median {naive_ns:.0f} ns/lookup "
        f"= {1e9 / naive_ns:,.0f} lookups/s"
    )
    met = "met" if 1e9 / fast_ns >= 500_000 else "NOT met"
    print(
        f"ratio: the classifier is {naive_ns / fast_ns:.0f}x faster than the naive matcher "
        f"(same run); target >= 500,000 lookups/s: {met}"
    )
    print(f"agreement on the sample: {len(sample) - disagree}/{len(sample)}")


if __name__ == "__main__":
    main()
