"""Review app benchmark: the first page of the filtered incident list, through the whole app.

    /tmp/v/bin/python bench/bench_review.py [--rows 1000000] [--repeats 30]

Target: with 1,000,000 incidents in SQLite, the first page (50) of a filtered list renders in
under 200 ms median. Each request goes through the real app in process (Starlette TestClient):
session lookup, scoped query, capped count (1,000), the access record with the 50 students it
showed, and the Jinja2 page. The incidents are written through the store's batch path into a
temporary copy of the example district's store (3 schools, 90 days).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import machine  # noqa: E402
from reviewharness import FAST_HASHER, copy_district  # noqa: E402

from monitor.district import DistrictLoader  # noqa: E402
from monitor.incidents.events import IncidentEvent, pseudonym  # noqa: E402
from monitor.incidents.store import open_store  # noqa: E402
from monitor.incidents.store.migrations import upgrade  # noqa: E402
from monitor.incidents.store.schema import incidents  # noqa: E402
from monitor.model import SEVERITIES  # noqa: E402
from monitor.web import Review, ReviewSettings, create_app  # noqa: E402

SCHOOLS = ["es", "ms", "hs"]
PLATFORMS = ["tiktok", "instagram", "snapchat", "youtube", "discord", "reddit", "x", "facebook",
             "twitch", "roblox"]  # fmt: skip
KEY = b"bench-key-not-a-secret"
T_END = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "bench password long enough"


def populate(url: str, rows: int, batch: int = 5000) -> float:
    rnd = random.Random(7)
    people = [pseudonym(KEY, f"fake-student-{i}") for i in range(20_000)]
    span = 90 * 24 * 3600
    start = T_END - timedelta(seconds=span)
    store = open_store(url, create=False)
    t = time.perf_counter()
    for first in range(0, rows, batch):
        store.write_batch([
            IncidentEvent(
                time=start + timedelta(seconds=(i * span) // rows), person=people[i % len(people)],
                school=rnd.choice(SCHOOLS), grade="7", age_band="under13", role="student",
                platform=rnd.choice(PLATFORMS), activity="view", action="block",
                rule_id=f"rule.{i % 7}", reason="Under 13: platforms for children only.",
                host="www.example.com", source="proxy", severity=rnd.choice(SEVERITIES),
            )
            for i in range(first, min(rows, first + batch))
        ])  # fmt: skip
    dt = time.perf_counter() - t
    with store.engine.begin() as conn:  # most past incidents are resolved
        conn.execute(update(incidents).where(incidents.c.id % 10 < 8).values(status="resolved"))
        conn.execute(
            update(incidents).where(incidents.c.id % 10 == 8).values(status="acknowledged")
        )
        conn.exec_driver_sql("ANALYZE")
    store.close()
    return dt


def sign_in(client: TestClient, username: str) -> None:
    page = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = client.post("/signin", data={"csrf": token, "username": username, "password": PASSWORD},
                       follow_redirects=False)  # fmt: skip
    assert resp.status_code == 303, resp.text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        config = copy_district(Path(tmp) / "district")
        loader = DistrictLoader(config)
        district = loader.load()
        url = district.store_url
        Path(tmp, "district", "var").mkdir(exist_ok=True)
        upgrade(url)
        dt = populate(url, args.rows)
        print(f"store: SQLite (WAL, synchronous=FULL), {args.rows:,} incidents written in "
              f"{dt:.1f} s ({args.rows / dt:,.0f}/s)")  # fmt: skip
        store = open_store(url, create=False, window=district.policy.dedupe_window)
        review = Review(loader, store, ReviewSettings(purge_every=None, reload_every=None),
                        hasher=FAST_HASHER)  # fmt: skip
        review.accounts.add("admin", PASSWORD, "administrator")
        review.accounts.add("hs", PASSWORD, "counselor", schools=["hs"])
        review.accounts.add("mshs", PASSWORD, "counselor", schools=["ms", "hs"])
        since = (T_END - timedelta(days=7)).astimezone(review.tz).date().isoformat()
        some = pseudonym(KEY, "fake-student-4242")
        cases = [
            ("admin", "no filter", ""),
            ("admin", "school", "school=hs"),
            ("admin", "platform", "platform=snapchat"),
            ("admin", "status=new", "status=new"),
            ("admin", "severity+status", "severity=high&status=new"),
            ("admin", "school+platform+severity", "school=ms&platform=tiktok&severity=high"),
            ("admin", "last 7 days", f"since={since}"),
            ("admin", "student", f"person={some}"),
            ("hs", "counselor, 1 school", ""),
            ("hs", "counselor, platform+status", "platform=discord&status=new"),
            ("mshs", "counselor, 2 schools", ""),
            ("mshs", "counselor, 2 schools, high", "severity=high"),
        ]
        medians = []
        with TestClient(create_app(review), base_url="http://127.0.0.1") as client:
            signed_in = ""
            for user, label, query in cases:
                if user != signed_in:
                    client.cookies.clear()
                    sign_in(client, user)
                    signed_in = user
                for _ in range(2):  # warm the page cache and the template
                    client.get(f"/incidents?{query}")
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    resp = client.get(f"/incidents?{query}")
                    times.append(time.perf_counter() - t)
                    assert resp.status_code == 200
                shown = len(re.findall(r'<td><a href="/incidents/\d+">', resp.text))
                m = re.search(r"of ([\d,]+\+?) incidents", resp.text)
                total = m.group(1) if m else "0"
                times.sort()
                med = statistics.median(times) * 1000
                medians.append(med)
                p95 = times[max(0, int(len(times) * 0.95) - 1)] * 1000
                print(f"page  {user:<5} {label:<30} {shown:>3} rows of {total:>7}: "
                      f"median {med:6.1f} ms, p95 {p95:6.1f} ms")  # fmt: skip
        print(f"worst median {max(medians):.1f} ms (target < 200 ms)")
        review.close()


if __name__ == "__main__":
    main()
