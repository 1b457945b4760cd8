from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.incidents.events import (
    DEFAULT_WINDOW,
    UNKNOWN_PERSON,
    Incident,
    IncidentEvent,
    aggregate,
    dedupe_key,
    event_id_floor,
    more_severe,
    new_event_id,
    pseudonym,
    window_start,
)

KEY = b"test-key-0123456789abcdef"
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
P1 = "p-00000000000000a1"
P2 = "p-00000000000000b2"


def event(**over: Any) -> IncidentEvent:
    base: dict[str, Any] = dict(
        time=T0, person=P1, school="ES-TEST", grade="5", age_band="under13", role="student",
        platform="tiktok", activity="view", action="block", rule_id="age.under13",
        reason="Students 12 and under may only use platforms made for children.",
        host="www.tiktok.com", source="proxy", severity="medium",
    )  # fmt: skip
    base.update(over)
    return IncidentEvent(**base)


# -- pseudonyms --------------------------------------------------------------------------------


def test_pseudonym_golden_value_stays_stable() -> None:
    # Pseudonyms are stored in incidents for years: the algorithm must never drift.
    assert pseudonym(KEY, "fake-student-001") == "p-0f763aaeeff57d0a"
    expected = hmac.new(KEY, b"fake-student-001", hashlib.sha256).hexdigest()[:16]
    assert pseudonym(KEY, "fake-student-001") == "p-" + expected


@pytest.mark.parametrize(
    ("key_a", "id_a", "key_b", "id_b", "same"),
    [
        (KEY, "fake-student-001", KEY, "fake-student-001", True),
        (KEY, "fake-student-001", KEY, "fake-student-002", False),
        (KEY, "fake-student-001", b"another-key-0123456789", "fake-student-001", False),
    ],
)
def test_pseudonym_depends_on_key_and_id(
    key_a: bytes, id_a: str, key_b: bytes, id_b: str, same: bool
) -> None:
    assert (pseudonym(key_a, id_a) == pseudonym(key_b, id_b)) is same


@pytest.mark.parametrize(
    ("key", "sourced_id", "message"),
    [(b"short", "fake-1", "at least 16 bytes"), (KEY, "", "empty sourcedId")],
)
def test_pseudonym_rejects_weak_key_and_empty_id(key: bytes, sourced_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pseudonym(key, sourced_id)


def test_pseudonym_is_accepted_as_event_person() -> None:
    assert event(person=pseudonym(KEY, "fake-student-009")).person.startswith("p-")


# -- event validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time", datetime(2025, 3, 3, 10, 0), "'time' must be an aware datetime"),
        ("person", "Fake Student", "'person' must be a pseudonym"),
        ("person", "p-123", "'person' must be a pseudonym"),
        ("platform", "", "'platform' is empty"),
        ("rule_id", "", "'rule_id' is empty"),
        ("host", "www.tiktok.com/search?q=secret", "'host' must be a bare host name"),
        ("host", "user@www.tiktok.com", "'host' must be a bare host name"),
        ("host", "www.tiktok.com#frag", "'host' must be a bare host name"),
        ("host", "x" * 254, "'host' longer than 253"),
        ("reason", "line\nbreak", "'reason' contains control characters"),
        ("school", 7, "'school' must be text"),
        ("age_band", "toddler", "'age_band': unknown band"),
        ("action", "explode", "'action': unknown action"),
        ("source", "browser", "'source': unknown source"),
        ("severity", "critical", "'severity': unknown severity"),
        ("event_id", "not-hex", "'event_id' must be 32 hex digits"),
    ],
)
def test_event_rejects_bad_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("host", "www.tiktok.com/search?q=secret-term"), ("person", "Fake Student Name")],
)
def test_event_errors_do_not_echo_private_values(field: str, value: str) -> None:
    with pytest.raises(ValueError) as info:
        event(**{field: value})
    assert "secret-term" not in str(info.value)
    assert "Fake Student" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("person", UNKNOWN_PERSON),
        ("age_band", ""),
        ("school", ""),
        ("grade", ""),
        ("host", "[2001:db8::1]"),
    ],
)
def test_event_accepts_unknowns(field: str, value: str) -> None:
    assert getattr(event(**{field: value}), field) == value


def test_event_time_is_normalised_to_utc() -> None:
    local = datetime(2025, 3, 3, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    ev = event(time=local)
    assert ev.time == T0
    assert ev.time.tzinfo is UTC


def test_event_ids_are_unique_and_hex() -> None:
    ids = {event().event_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize(
    ("at", "prefix"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), "000000000000"),
        (datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "0000000003e8"),  # 1000 ms
        (T0, "01955b72b900"),  # 1_740_996_000_000 ms
    ],
)
def test_event_ids_start_with_their_creation_time(at: datetime, prefix: str) -> None:
    assert new_event_id(at).startswith(prefix)
    assert event_id_floor(at) == prefix


def test_event_ids_sort_by_creation_time() -> None:
    ids = [new_event_id(T0 + timedelta(milliseconds=ms)) for ms in (0, 1, 999, 10**9)]
    assert ids == sorted(ids)
    assert event_id_floor(T0 + timedelta(milliseconds=1)) > ids[0]
    assert event_id_floor(T0 + timedelta(milliseconds=1)) <= ids[1]
    before = new_event_id()
    assert event_id_floor(datetime.now(UTC) + timedelta(seconds=1)) > before


def test_event_dict_round_trip() -> None:
    ev = event(time=T0 + timedelta(microseconds=17), severity="high")
    data = ev.to_dict()
    assert data["time"] == "2025-03-03T10:00:00.000017+00:00"
    assert IncidentEvent.from_dict(data) == ev


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "https://x"}, "unknown fields \\['url'\\]"),
        ({"time": None}, "missing fields \\['time'\\]"),
        ({"time": "yesterday"}, "field 'time'"),
        ({"time": "2025-03-03T10:00:00"}, "aware datetime"),
    ],
)
def test_event_from_dict_rejects_bad_data(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = event().to_dict()
    for k, v in change.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    with pytest.raises(ValueError, match=message):
        IncidentEvent.from_dict(data)


def test_event_from_dict_creates_an_event_id_when_absent() -> None:
    data = event().to_dict()
    del data["event_id"]
    assert len(IncidentEvent.from_dict(data).event_id) == 32


# -- dedupe key and window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ((P1, "tiktok", "r1"), (P1, "tiktok", "r1"), True),
        ((P1, "tiktok", "r1"), (P2, "tiktok", "r1"), False),
        ((P1, "tiktok", "r1"), (P1, "instagram", "r1"), False),
        ((P1, "tiktok", "r1"), (P1, "tiktok", "r2"), False),
        # the separator keeps field boundaries: no collisions by shifting text across fields
        ((P1, "a|b", "c"), (P1, "a", "b|c"), False),
        ((P1, "ab", "c"), (P1, "a", "bc"), False),
    ],
)
def test_dedupe_key(a: tuple[str, str, str], b: tuple[str, str, str], same: bool) -> None:
    assert (dedupe_key(*a) == dedupe_key(*b)) is same
    assert len(dedupe_key(*a)) == 32


def test_event_dedupe_key_ignores_everything_but_person_platform_rule() -> None:
    a = event(activity="view", host="www.tiktok.com", severity="low", time=T0)
    b = event(activity="post", host="m.tiktok.com", severity="high", time=T0 + timedelta(days=3))
    assert a.dedupe_key == b.dedupe_key == dedupe_key(P1, "tiktok", "age.under13")


@pytest.mark.parametrize(
    ("t", "window", "start"),
    [
        (T0, DEFAULT_WINDOW, T0),
        (T0 + timedelta(minutes=59, seconds=59, microseconds=999999), DEFAULT_WINDOW, T0),
        (T0 + timedelta(hours=1), DEFAULT_WINDOW, T0 + timedelta(hours=1)),
        (T0 - timedelta(microseconds=1), DEFAULT_WINDOW, T0 - timedelta(hours=1)),
        (T0 + timedelta(minutes=29), timedelta(minutes=15), T0 + timedelta(minutes=15)),
        (T0 + timedelta(hours=13), timedelta(days=1), datetime(2025, 3, 3, tzinfo=UTC)),
        # the same instant in another offset falls in the same bucket
        (datetime(2025, 3, 3, 5, 30, tzinfo=timezone(timedelta(hours=-5))), DEFAULT_WINDOW,
         datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_window_start(t: datetime, window: timedelta, start: datetime) -> None:
    assert window_start(t, window) == start


@pytest.mark.parametrize(
    ("t", "window", "message"),
    [
        (T0, timedelta(0), "must be positive"),
        (T0, timedelta(seconds=-1), "must be positive"),
        (datetime(2025, 3, 3), DEFAULT_WINDOW, "naive"),
    ],
)
def test_window_start_rejects(t: datetime, window: timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        window_start(t, window)


@pytest.mark.parametrize(
    ("a", "b", "most"),
    [("low", "high", "high"), ("high", "low", "high"), ("medium", "low", "medium"),
     ("medium", "medium", "medium"), ("low", "low", "low")],
)  # fmt: skip
def test_more_severe(a: Any, b: Any, most: str) -> None:
    assert more_severe(a, b) == most


def test_aggregate_folds_one_bucket() -> None:
    evs = [
        event(time=T0 + timedelta(minutes=30), severity="low", activity="post"),
        event(time=T0 + timedelta(minutes=5), severity="medium", activity="view"),
        event(time=T0 + timedelta(minutes=50), severity="high", activity="upload"),
    ]
    (b,) = aggregate(evs)
    assert (b.count, b.first_seen, b.last_seen, b.severity) == (
        3, T0 + timedelta(minutes=5), T0 + timedelta(minutes=50), "high",
    )  # fmt: skip
    assert b.window_start == T0
    assert b.first is evs[1]  # descriptive fields come from the earliest event
    assert b.dedupe_key == evs[0].dedupe_key


def test_aggregate_splits_windows_and_keys_and_sorts() -> None:
    evs = [
        event(time=T0 + timedelta(minutes=59)),
        event(time=T0 + timedelta(minutes=61)),  # next window
        event(time=T0, person=P2),
        event(time=T0, rule_id="other.rule"),
        event(time=T0 + timedelta(minutes=1)),
    ]
    buckets = aggregate(evs)
    counts = {(b.first.person, b.first.rule_id, b.window_start): b.count for b in buckets}
    assert counts == {
        (P1, "age.under13", T0): 2,
        (P1, "age.under13", T0 + timedelta(hours=1)): 1,
        (P2, "age.under13", T0): 1,
        (P1, "other.rule", T0): 1,
    }
    # the order of the store's unique index (window_start, dedupe_key)
    keys = [(b.window_start, b.dedupe_key) for b in buckets]
    assert keys == sorted(keys)
    assert keys[-1][0] == T0 + timedelta(hours=1)
    assert aggregate([]) == []
    with pytest.raises(ValueError, match="must be positive"):
        aggregate(evs, timedelta(0))


def test_aggregate_window_is_a_parameter() -> None:
    evs = [event(time=T0), event(time=T0 + timedelta(minutes=20))]
    assert len(aggregate(evs, timedelta(minutes=15))) == 2
    assert len(aggregate(evs, timedelta(hours=1))) == 1


def test_incident_to_dict_uses_iso_times() -> None:
    inc = Incident(
        id=1, first_seen=T0, last_seen=T0 + timedelta(minutes=3), count=2, school="ES-TEST",
        grade="5", age_band="under13", role="student", person=P1, platform="tiktok",
        activity="view", decision="block", rule_id="r", reason="why", host="www.tiktok.com",
        source="proxy", severity="low", status="new", assignee=None, notes="", window_start=T0,
        dedupe_key="0" * 32,
    )  # fmt: skip
    d = inc.to_dict()
    assert d["last_seen"] == "2025-03-03T10:03:00+00:00"
    assert d["window_start"] == "2025-03-03T10:00:00+00:00"
    assert set(d) == {f.name for f in dataclasses.fields(Incident)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * 3600),
            st.sampled_from([P1, P2]),
            st.sampled_from(["r1", "r2"]),
            st.sampled_from(["low", "medium", "high"]),
        ),
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_aggregate_merges_commute(rows: list[tuple[int, str, str, str]], rnd: Any) -> None:
    # What the store does across batches (sum, min, max, most severe) gives the same
    # incidents however the events are split into batches and ordered: writers agree.
    evs = [
        event(time=T0 + timedelta(seconds=s), person=p, rule_id=r, severity=sev)
        for s, p, r, sev in rows
    ]
    whole = {(b.window_start, b.dedupe_key): (b.count, b.first_seen, b.last_seen, b.severity)
             for b in aggregate(evs)}  # fmt: skip
    shuffled = list(evs)
    rnd.shuffle(shuffled)
    cut = rnd.randint(0, len(shuffled))
    merged: dict[Any, tuple[Any, ...]] = {}
    for part in (shuffled[:cut], shuffled[cut:]):
        for b in aggregate(part):
            k = (b.window_start, b.dedupe_key)
            if k not in merged:
                merged[k] = (b.count, b.first_seen, b.last_seen, b.severity)
                continue
            c, f, la, sv = merged[k]
            merged[k] = (c + b.count, min(f, b.first_seen), max(la, b.last_seen),
                         more_severe(sv, b.severity))  # fmt: skip
    assert merged == whole
    assert sum(c for c, *_ in whole.values()) == len(evs)
