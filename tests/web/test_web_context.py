"""The app's background work: the daily purge at start, roster reload for the reveal."""

from __future__ import annotations

import csv
import time
from datetime import timedelta
from pathlib import Path

from reviewharness import PASSWORD, Browser, World, copy_district, make_review, students
from starlette.testclient import TestClient

from monitor.district import DistrictLoader
from monitor.incidents.retention import Retention
from monitor.web import create_app


def test_automatic_purge_runs_at_start_and_is_recorded(
    loader: DistrictLoader, tmp_path: Path
) -> None:
    retention = Retention(incidents=timedelta(days=30), access_log=timedelta(days=365))
    review = make_review(loader, f"sqlite:///{tmp_path / 's.sqlite'}", retention=retention,
                         purge_every=timedelta(days=1))  # fmt: skip
    w = World(review, "")
    old, new = students(loader, "hs", 2)
    w.incident(old, hours_ago=24 * 31)
    keep = w.incident(new, hours_ago=24 * 29)
    try:
        with TestClient(create_app(review), base_url="http://127.0.0.1"):
            for _ in range(100):  # the purge runs off the event loop, right after start
                if review.store.count() == 1:
                    break
                time.sleep(0.05)
        assert [i.id for i in review.store.list()] == [keep]
        (rec,) = review.access.list()
        assert (rec.account, rec.action) == ("system", "purge")
        assert "deleted 1 incidents of 1 students" in rec.detail
        assert "(retention: incidents 30d, access records 1y)" in rec.detail
        assert review.access.for_person(w.pseudonym(old))[0].id == rec.id
    finally:
        review.close()


def test_roster_change_reaches_the_reveal(tmp_path: Path) -> None:
    config = copy_district(tmp_path / "district")
    loader = DistrictLoader(config)
    loader.load()
    review = make_review(loader, f"sqlite:///{tmp_path / 's.sqlite'}")
    w = World(review, "")
    w.account("hs-counselor", "counselor", "hs")
    person = students(loader, "hs", 1)[0]
    p = w.pseudonym(person)
    w.incident(person)
    users = config / "roster" / "users.csv"
    with users.open(newline="") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("givenName")
    for row in rows:
        if row[0] == person.sourced_id:
            row[col] = "Renamedtestperson"
    with users.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    try:
        with TestClient(create_app(review), base_url="http://127.0.0.1") as client:
            b = Browser(client)
            b.sign_in("hs-counselor", PASSWORD)
            before = b.post(f"/students/{p}/reveal", {"reason": "checking the roster"}).text
            assert person.given_name in before and "Renamedtestperson" not in before
            assert review.reload() is True
            after = b.post(f"/students/{p}/reveal", {"reason": "checking the roster"}).text
            assert "Renamedtestperson" in after
            assert review.reload() is False  # nothing changed since
    finally:
        review.close()
