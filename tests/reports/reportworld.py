"""A generated district with known events for the report tests: the example district copied,
a store with daily activity counts, incidents, their review history in the record of access,
and teacher overrides, all written through the real store, with hand-computed expectations.

The period is Monday 2 to Sunday 15 November 2026 (two weeks, America/New_York); some rows
fall just outside it and must not count.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pg
from reviewharness import copy_district
from sqlalchemy import Engine, insert

from monitor.district import District, DistrictLoader
from monitor.incidents.access import AccessLog, Actor
from monitor.incidents.aggregates import Key, merge_counts
from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.incidents.store import SqlIncidentStore, open_store
from monitor.incidents.store.migrations import upgrade
from monitor.incidents.store.sharedschema import overrides
from monitor.reports import Period

NY = ZoneInfo("America/New_York")
PERIOD = Period(date(2026, 11, 2), date(2026, 11, 15))
WEEKS = ("2026-11-02", "2026-11-09")


def _k(day: int, school: str, band: str, grade: str, platform: str, decision: str, rule: str,
       activity: str = "view", source: str = "proxy", month: int = 11) -> Key:  # fmt: skip
    return (date(2026, month, day), school, band, grade, platform, activity, decision, rule, source)


# key → (requests, refused)
COUNTS: dict[Key, tuple[int, int]] = {
    _k(3, "ms", "under13", "06", "tiktok", "block", "under13.social"): (10, 4),
    _k(4, "ms", "under13", "06", "instagram", "block", "under13.social"): (5, 0),
    _k(5, "hs", "teen", "10", "tiktok", "block", "hs.post", activity="post"): (3, 0),
    _k(5, "hs", "teen", "10", "youtube", "allow", "default"): (100, 0),
    _k(6, "es", "under13", "04", "youtube", "restrict", "es.youtube"): (20, 0),
    _k(6, "es", "under13", "04", "youtube-kids", "allow", "default"): (8, 0),
    _k(6, "hs", "teen", "11", "nordvpn", "block", "bypass", source="sensor"): (7, 7),
    _k(10, "ms", "under13", "06", "tiktok", "block", "under13.social"): (4, 1),
    _k(11, "es", "under13", "05", "doh-google", "block", "bypass", source="sensor"): (2, 2),
    _k(12, "hs", "teen", "10", "instagram", "allow", "override:ov-class"): (6, 0),
    _k(13, "ms", "teen", "08", "croxyproxy", "allow", "default"): (1, 0),
    # outside the period: the day after, and the Sunday before
    _k(16, "ms", "under13", "06", "tiktok", "block", "under13.social"): (50, 0),
    _k(1, "hs", "teen", "10", "tiktok", "block", "hs.post"): (30, 0),
}

# Hand-computed from the rows above (in the period only).
BLOCKED_BY_PLATFORM = {"tiktok": 17, "nordvpn": 7, "instagram": 5, "doh-google": 2}
BLOCKED_BY_WEEK = {"2026-11-02": 25, "2026-11-09": 6}
# under 13 on platforms not made for children (youtube is not; youtube-kids is; bypass left out)
UNDER13_BY_WEEK = {
    "2026-11-02": (35, 15, 20),
    "2026-11-09": (4, 4, 0),
}  # attempts, blocked, allowed
BYPASS = {"hs": {"vpn": 7, "doh": 0, "proxy": 0, "tor": 0, "total": 7},
          "es": {"vpn": 0, "doh": 2, "proxy": 0, "tor": 0, "total": 2},
          "ms": {"vpn": 0, "doh": 0, "proxy": 1, "tor": 0, "total": 1}}  # fmt: skip
OVERVIEW_REQUESTS = {"es": 30, "hs": 116, "ms": 20}


@dataclass
class World:
    district: District
    loader: DistrictLoader
    store: SqlIncidentStore
    url: str
    people: dict[str, str]  # name in the test → pseudonym


def _t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY).astimezone(UTC)


def build_world(tmp: Path, url: str | None = None) -> World:
    """The district under ``tmp`` and its store (SQLite there, or ``url``), filled."""
    config = copy_district(tmp / "district")
    loader = DistrictLoader(config)
    district = loader.load()
    url = url or f"sqlite:///{tmp / 'store.sqlite'}"
    upgrade(url)
    store = open_store(url, create=False, window=district.policy.dedupe_window)
    from monitor.district import pseudonym_key

    key = pseudonym_key(district)
    roster = district.roster
    by_school: dict[str, list[str]] = {}
    for p in sorted(roster.people.values(), key=lambda p: p.sourced_id):
        if p.is_student:
            by_school.setdefault(district.school_label(p.school), []).append(p.sourced_id)
    names = {
        "ana": by_school["ms"][0], "ben": by_school["hs"][0], "cy": by_school["ms"][1],
        "dee": by_school["es"][0],
    }  # fmt: skip
    people = {n: pseudonym(key, sid) for n, sid in names.items()}
    fill(store.engine, store, district, people, names)
    return World(district, loader, store, url, people)


def _event(person: str, school: str, when: datetime, rule: str, severity: str,
           platform: str = "tiktok") -> IncidentEvent:  # fmt: skip
    return IncidentEvent(
        time=when, person=person, school=school, grade="06", age_band="under13", role="student",
        platform=platform, activity="view", action="block", rule_id=rule,
        reason="Blocked.", host=f"www.{platform}.com", source="proxy", severity=severity,
    )  # fmt: skip


INCIDENTS = {  # hand-computed: severity → status → incidents (in the period)
    "high": {"new": 1, "acknowledged": 0, "resolved": 1, "total": 2},
    "medium": {"new": 1, "acknowledged": 1, "resolved": 1, "total": 3},
    "low": {"new": 1, "acknowledged": 0, "resolved": 0, "total": 1},
}
TOP = [
    ("ana", 3, 5),
    ("ben", 2, 2),
    ("cy", 1, 1),
]  # name, incidents, events (dee: unknown school? no: 0 in period)


def fill(engine: Engine, store: SqlIncidentStore, district: District,
         people: dict[str, str], names: dict[str, str]) -> None:  # fmt: skip
    merge_counts(engine, COUNTS)
    ana, ben, cy, dee = (people[n] for n in ("ana", "ben", "cy", "dee"))
    events = [
        _event(ana, "ms", _t(3, 9), "under13.social", "high"),
        _event(ana, "ms", _t(3, 9, 5), "under13.social", "high"),  # same window: one incident
        _event(ana, "ms", _t(3, 9, 7), "under13.social", "high"),
        _event(ana, "ms", _t(4, 10), "under13.social", "medium", "instagram"),
        _event(ana, "ms", _t(10, 11), "under13.social", "low"),
        _event(ben, "hs", _t(5, 13), "hs.post", "medium"),
        _event(ben, "hs", _t(6, 14), "bypass", "high", "nordvpn"),
        _event(cy, "ms", _t(12, 8), "under13.social", "medium"),
        _event(dee, "es", _t(16, 9), "under13.social", "high"),  # after the period
        _event(dee, "es", _t(1, 22), "under13.social", "high"),  # before it
    ]
    store.write_batch(events)
    ids = {(i.person, i.platform, i.first_seen): i.id for i in store.list(limit=100)}

    def inc(person: str, when: datetime, platform: str = "tiktok") -> int:
        return ids[(person, platform, when)]

    log = AccessLog(engine)
    alice = Actor("alice", "counselor", "Counselor")
    bob = Actor("bob", "counselor", "Counselor")
    reviews = [
        # (incident, status, actor, at, detail)
        (inc(ana, _t(3, 9)), "acknowledged", alice, _t(3, 11), "acknowledge: status new → acknowledged"),
        (inc(ana, _t(3, 9)), "resolved", alice, _t(3, 14), "resolve: status acknowledged → resolved"),
        (inc(ana, _t(4, 10), "instagram"), "acknowledged", alice, _t(4, 14), "acknowledge: status new → acknowledged"),
        (inc(ben, _t(5, 13)), "resolved", bob, _t(5, 16), "resolve: status new → resolved"),
    ]  # fmt: skip
    for incident, status, who, at, detail in reviews:
        store.update(incident, status=status)
        AccessLog(engine, clock=lambda at=at: at).record(
            who, "review", person=None, incident_id=incident, detail=detail
        )
    del log
    hs_class = next(
        c.sourced_id for c in district.roster.classes.values()
        if district.school_label(c.school) == "hs"
    )  # fmt: skip
    rows = [
        dict(id="ov-class", platform="instagram", granted_by="t.teacher", granted_by_role="teacher",
             class_id=hs_class, students="[]", starts=_t(12, 8), ends=_t(12, 16), reason="project",
             created=_t(12, 7), revoked_at=None, position=1, version=1),
        dict(id="ov-ms", platform="youtube", granted_by="t.teacher2", granted_by_role="teacher",
             class_id=None, students=json.dumps([names["cy"]]), starts=_t(9, 8), ends=_t(9, 9),
             reason="video", created=_t(9, 7), revoked_at=_t(9, 8, 30), position=2, version=2),
        dict(id="ov-old", platform="youtube", granted_by="t.teacher2", granted_by_role="teacher",
             class_id=None, students=json.dumps([names["cy"]]), starts=_t(1, 8) - timedelta(days=20),
             ends=_t(1, 9) - timedelta(days=20), reason="old", created=None, revoked_at=None,
             position=3, version=3),
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(overrides), rows)


def new_database(pg_dsn: str) -> AbstractContextManager[str]:
    """A new, empty database on the test cluster (dropped afterwards); yields its URL."""
    return pg.new_database(pg_dsn, "reports")
