"""Daily activity aggregates: counted per process, flushed with an additive upsert; many
writer processes on one store (SQLite file, real PostgreSQL) sum exactly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from monitor.incidents.aggregates import ActivityCounts, merge_counts, purge_aggregates
from monitor.incidents.store import open_store
from monitor.incidents.store.aggregateschema import DIMENSIONS, daily_activity

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
# 2026-03-02 04:30 UTC is 23:30 on 1 March in New York: the district's day decides.
LATE = datetime(2026, 3, 2, 4, 30, tzinfo=UTC).timestamp()


def _rows(url: str) -> dict[tuple[object, ...], tuple[int, int]]:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(daily_activity)).all()
    finally:
        store.close()
    return {tuple(r[:9]): (r.requests, r.refused) for r in rows}


def test_counts_fold_by_district_day_and_refusals(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    open_store(url).close()
    counts = ActivityCounts(url, NY)
    args = ("ms", "under13", "06", "tiktok", "view", "block", "under13-social", "proxy")
    counts.add(LATE, *args)
    counts.add(LATE + 1, *args, refused=True)
    counts.add(LATE + 3600, *args)  # 00:30 on 2 March in New York
    assert counts.flush()
    counts.add(LATE, *args)
    assert counts.close()
    assert _rows(url) == {
        (date(2026, 3, 1), *args): (3, 1),
        (date(2026, 3, 2), *args): (1, 0),
    }


def test_an_unreachable_store_keeps_counts_and_the_pending_file_carries_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'no.sqlite'}"  # directory absent: cannot open
    pending = tmp_path / "activity-pending.json"
    counts = ActivityCounts(url, NY, pending=pending, timeout=0.2)
    args = ("hs", "teen", "10", "vpn", "view", "block", "bypass", "sensor")
    for _ in range(5):
        counts.add(LATE, *args)
    assert not counts.flush()
    assert counts.snapshot() == {(date(2026, 3, 1), *args): (5, 0)}
    assert not counts.close()
    assert pending.exists()
    # the next start reads them back and writes them once the store answers
    (tmp_path / "missing").mkdir()
    open_store(url).close()
    again = ActivityCounts(url, NY, pending=pending)
    assert not pending.exists()
    assert again.close()
    assert _rows(url) == {(date(2026, 3, 1), *args): (5, 0)}


def test_purge_deletes_days_before_the_cut(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    store = open_store(url)
    key = ("hs", "teen", "10", "tiktok", "view", "allow", "default", "proxy")
    merge_counts(store.engine, {(date(2024, 1, 1), *key): (2, 0), (date(2026, 1, 1), *key): (3, 1)})
    assert purge_aggregates(store.engine, date(2025, 1, 1)) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.sum(daily_activity.c.requests))).scalar_one() == 3
    store.close()


WRITER = textwrap.dedent(
    """
    import json, random, sys
    from zoneinfo import ZoneInfo
    from monitor.incidents.aggregates import ActivityCounts
    url, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    counts = ActivityCounts(url, ZoneInfo("America/New_York"), flush_every=0.02)
    counts.start()
    for i in range(n):
        school = rng.choice(["es", "ms", "hs"])
        platform = rng.choice(["tiktok", "instagram", "youtube", "vpn"])
        decision = rng.choice(["block", "allow"])
        when = 1772400000 + rng.randrange(0, 3 * 86400)
        counts.add(when, school, "teen", "07", platform, "view", decision, "r-" + decision,
                   "proxy", refused=rng.random() < 0.25)
        if i % 500 == 0:
            counts.flush()
    assert counts.close()
    """
)


def _expected(seed: int, n: int) -> Counter[tuple[object, ...]]:
    import random

    rng = random.Random(seed)
    out: Counter[tuple[object, ...]] = Counter()
    for _ in range(n):
        school = rng.choice(["es", "ms", "hs"])
        platform = rng.choice(["tiktok", "instagram", "youtube", "vpn"])
        decision = rng.choice(["block", "allow"])
        when = 1772400000 + rng.randrange(0, 3 * 86400)
        day = datetime.fromtimestamp(when, NY).date()
        key = (day, school, "teen", "07", platform, "view", decision, "r-" + decision, "proxy")
        out[("req", *key)] += 1
        if rng.random() < 0.25:
            out[("ref", *key)] += 1
    return out


@pytest.mark.slow
def test_many_writer_processes_sum_exactly(store_url: str) -> None:
    open_store(store_url).close()
    writers, n = 4, 4000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, str(seed), str(n)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(writers)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    expected: Counter[tuple[object, ...]] = Counter()
    for seed in range(writers):
        expected.update(_expected(seed, n))
    got = _rows(store_url)
    assert sum(v[0] for v in got.values()) == writers * n
    assert {k: v[0] for k, v in got.items()} == {
        k[1:]: v for k, v in expected.items() if k[0] == "req"
    }
    assert {k: v[1] for k, v in got.items() if v[1]} == {
        k[1:]: v for k, v in expected.items() if k[0] == "ref"
    }


def test_rows_hold_no_person() -> None:
    assert {c.name for c in daily_activity.c} == {*DIMENSIONS, "requests", "refused"}
    assert not {"person", "pseudonym", "host", "address", "device"} & set(DIMENSIONS)


def test_retention_keeps_counts_two_school_years_by_default_and_purges_them(
    tmp_path: Path,
) -> None:
    from monitor.incidents.access import SYSTEM, AccessLog
    from monitor.incidents.retention import Retention, load_retention, purge
    from monitor.yamlfile import ConfigError

    assert Retention().aggregates.days == 730
    (tmp_path / "retention.yaml").write_text("retention:\n  aggregates: 400d\n")
    assert load_retention(tmp_path).aggregates.days == 400
    (tmp_path / "retention.yaml").write_text("retention:\n  aggregates: soon\n")
    with pytest.raises(ConfigError, match="aggregates"):
        load_retention(tmp_path)

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    store = open_store(url)
    key = ("hs", "teen", "10", "tiktok", "view", "block", "r", "proxy")
    merge_counts(store.engine, {(date(2024, 3, 1), *key): (1, 0), (date(2026, 3, 1), *key): (2, 0)})
    now = datetime(2026, 6, 1, tzinfo=UTC)
    result = purge(store.engine, AccessLog(store.engine), Retention(), now=now, actor=SYSTEM)
    assert result.aggregates == 1  # 2024-03-01 is more than 730 days before now
    assert "1 daily activity count rows" in result.describe()
    assert set(_rows(url)) == {(date(2026, 3, 1), *key)}
    store.close()


def test_each_process_has_its_own_pending_file() -> None:
    from monitor.flow.aggregates import pending_file

    assert pending_file(Path("/s"), "w1") == Path("/s/activity-pending-w1.json")
    assert pending_file(Path("/s")) == Path("/s/activity-pending.json")
    with pytest.raises(ValueError, match="instance name"):
        pending_file(Path("/s"), "../x")
