"""Benchmark monitor.rules.decide.decide: p50/p99 latency per call over a realistic mix.

    /tmp/v/bin/python bench/bench_decide.py [--calls 200000] [--seed 7]

The mix: the example policy over the shipped catalogue plus synthetic platforms (so that the
table has a district-sized catalogue), 2,000 synthetic students aged 5-18 (3% without
birthDate), 150 staff, 5% unknown people; mostly views and streams; times spread over a school
week in increasing order (as a proxy sees them), 40 active class and student overrides.
Each call is timed on its own with perf_counter_ns (the timer's own cost is included and
printed separately).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from monitor.model import Device, Identity, Person
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue, Platform
from monitor.rules.decide import decide
from monitor.rules.loader import load_policy
from monitor.rules.overrides import Override, OverrideSet

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "tests" / "data" / "policy_example.yaml"
SCHOOLS = ("es", "ms", "hs")
ACTIVITY_MIX = (
    ("view", 60), ("stream", 20), ("embed", 6), ("post", 5), ("message", 4),
    ("login", 2), ("upload", 2), ("live", 1),
)  # fmt: skip


def synthetic_platform(
    pid: str, category: str, kids: bool = False, bypass: str | None = None
) -> Platform:
    return Platform(
        id=pid, name=pid, owner="Example", category=category, min_age=None if kids else 13,
        designed_for_children=kids, bypass_kind=bypass, suffixes=(f"{pid}.example",), hosts=(),
        page_hosts=frozenset(), page_suffixes=(),
    )  # fmt: skip


def bench_catalogue() -> Catalogue:
    shipped = catalogue_mod.load()
    platforms = dict(shipped.platforms)
    cats = ("social", "video", "messaging", "social_gaming", "forum", "ai_chat")
    for i in range(24):
        p = synthetic_platform(f"bench-{cats[i % len(cats)]}-{i}", cats[i % len(cats)])
        platforms[p.id] = p
    for i in range(4):
        platforms[f"bench-kids-{i}"] = synthetic_platform(f"bench-kids-{i}", "kids", kids=True)
    for i, kind in enumerate(("vpn", "proxy", "tor")):
        platforms[f"bench-bypass-{i}"] = synthetic_platform(
            f"bench-bypass-{i}", "bypass", bypass=kind
        )
    return Catalogue(platforms=platforms, shared_cdn_suffixes=shipped.shared_cdn_suffixes)


def people(rng: random.Random, start: date) -> list[Person]:
    out: list[Person] = []
    for i in range(2000):
        age_days = rng.randint(5 * 365, 18 * 365)
        birth = None if rng.random() < 0.03 else start - timedelta(days=age_days)
        school = SCHOOLS[min(2, age_days // (365 * 5) - 1)] if birth else rng.choice(SCHOOLS)
        classes = tuple(f"c-{school}-{rng.randrange(40)}" for _ in range(6))
        out.append(Person(f"s-{i:05d}", f"student{i}", "student", (school,), birth_date=birth,
                          classes=classes))  # fmt: skip
    for i in range(150):
        out.append(Person(f"t-{i:04d}", f"staff{i}", "teacher", (rng.choice(SCHOOLS),)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    cat = bench_catalogue()
    t0 = time.perf_counter()
    policy = load_policy(POLICY, cat, SCHOOLS)
    load_ms = (time.perf_counter() - t0) * 1000

    monday = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # 07:00 in New York
    pop = people(rng, monday.date())
    devices = [Device(f"d-{i}", school=rng.choice(SCHOOLS)) for i in range(200)]
    weights = {pid: 1 for pid in cat.ids}
    weights.update({"youtube": 40, "tiktok": 15, "doh-google": 3})
    plist = list(cat)
    pweights = [weights[p.id] for p in plist]
    acts = [a for a, _ in ACTIVITY_MIX]
    aweights = [w for _, w in ACTIVITY_MIX]
    overrides = OverrideSet(
        Override(
            id=f"ov-{i}", platform=rng.choice(["youtube", "tiktok", "bench-social-0"]),
            granted_by="t-0001", class_id=f"c-hs-{i}" if i % 2 else None,
            students=() if i % 2 else (f"s-{rng.randrange(2000):05d}",),
            starts=monday, ends=monday + timedelta(days=5),
        )
        for i in range(40)
    )  # fmt: skip

    week = 5 * 86400.0
    times = sorted(monday.timestamp() + rng.random() * week for _ in range(args.calls))
    calls = []
    for ts in times:
        r = rng.random()
        if r < 0.05:
            who: Identity | Person | None = Identity(None, rng.choice(devices), "unknown")
        else:
            who = rng.choice(pop)
        platform = rng.choices(plist, pweights)[0] if rng.random() > 0.01 else None
        calls.append((who, platform, rng.choices(acts, aweights)[0], ts))

    for who, platform, activity, ts in calls[:5000]:  # warm the caches and the CPU
        decide(policy, who, None, platform, activity, ts, overrides)

    clock = time.perf_counter_ns
    timer_cost = statistics.median([-(clock() - clock()) for _ in range(10000)])
    samples = []
    gc.disable()  # a collection is not the decision's cost; counted below as a separate figure
    try:
        start = clock()
        for who, platform, activity, ts in calls:
            t = clock()
            decide(policy, who, None, platform, activity, ts, overrides)
            samples.append(clock() - t)
        total = clock() - start
    finally:
        gc.enable()
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))] / 1000

    actions: dict[str, int] = {}
    for who, platform, activity, ts in calls[:20000]:
        d = decide(policy, who, None, platform, activity, ts, overrides)
        actions[d.action] = actions.get(d.action, 0) + 1
    print(f"policy load+compile: {load_ms:.1f} ms, {len(cat)} platforms, {len(policy.rules)} rules")
    print(f"calls: {len(calls)}  (mix of first 20k: {actions})")
    print(f"p50 {pct(50):.2f} µs  p90 {pct(90):.2f} µs  p99 {pct(99):.2f} µs  "
          f"p99.9 {pct(99.9):.2f} µs  max {samples[-1] / 1000:.1f} µs")  # fmt: skip
    print(f"mean with timing loop: {total / len(calls) / 1000:.2f} µs/call; "
          f"timer overhead ≈ {timer_cost / 1000:.3f} µs (included above)")  # fmt: skip


if __name__ == "__main__":
    main()
