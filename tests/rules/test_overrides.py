"""monitor.rules.overrides: the override set's lookups and the JSON store's rules and file format."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.model import Person
from monitor.rules.overrides import Override, OverrideSet, OverrideStore, role_words
from monitor.yamlfile import ConfigError

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
H = timedelta(hours=1)
PLATFORMS = frozenset({"youtube", "tiktok", "chatter"})

ALEX = Person("s-0001", "fake.alex", "student", ("hs",), classes=("c-bio", "c-art"))
SAM = Person("s-0002", "fake.sam", "student", ("hs",), classes=("c-art",))


def ov(oid: str, *, cls: str | None = None, students: tuple[str, ...] = (), plat: str = "tiktok",
       starts: datetime = NOW, ends: datetime = NOW + H) -> Override:  # fmt: skip
    return Override(id=oid, platform=plat, granted_by="t-0001", class_id=cls, students=students,
                    starts=starts, ends=ends)  # fmt: skip


# ---------------------------------------------------------------- OverrideSet


@pytest.mark.parametrize(
    ("person", "plat", "when", "expected"),
    [(ALEX, "tiktok", NOW, "ov-alex"),
     (ALEX, "tiktok", NOW - timedelta(seconds=1), None),  # not yet
     (ALEX, "tiktok", NOW + H - timedelta(microseconds=1), "ov-alex"),
     (ALEX, "tiktok", NOW + H, None),  # the end is exclusive
     (ALEX, "youtube", NOW, "ov-bio"),  # through a class
     (SAM, "youtube", NOW, None),  # not in c-bio
     (SAM, "chatter", NOW + 2 * H, "ov-art"),
     (ALEX, "chatter", NOW + 2 * H, "ov-art"),
     (SAM, "tiktok", NOW, None)],
)  # fmt: skip
def test_active_for(person: Person, plat: str, when: datetime, expected: str | None) -> None:
    s = OverrideSet([
        ov("ov-alex", students=("s-0001",)),
        ov("ov-bio", cls="c-bio", plat="youtube"),
        ov("ov-art", cls="c-art", plat="chatter", starts=NOW + H, ends=NOW + 3 * H),
    ])  # fmt: skip
    got = s.active_for(person, plat, when)
    assert (got.id if got else None) == expected
    got_ts = s.active_for(person, plat, when.timestamp())
    assert (got_ts.id if got_ts else None) == expected
    assert len(s) == 3 and bool(s)


def test_active_for_revoked_and_empty() -> None:
    ten = timedelta(minutes=10)
    revoked = replace(ov("ov-r", students=("s-0001",)), revoked_at=NOW + ten, revoked_by="t-0002")
    s = OverrideSet([revoked, replace(ov("ov-never", students=("s-0001",), plat="chatter"),
                                      revoked_at=NOW - H, revoked_by="t-0002")])  # fmt: skip
    assert s.active_for(ALEX, "tiktok", NOW + timedelta(minutes=9)) is revoked
    assert s.active_for(ALEX, "tiktok", NOW + timedelta(minutes=10)) is None
    assert s.active_for(ALEX, "chatter", NOW) is None  # revoked before it started
    assert not OverrideSet() and OverrideSet().active_for(ALEX, "tiktok", NOW) is None


def test_naive_when_is_refused() -> None:
    s = OverrideSet([ov("ov-alex", students=("s-0001",))])
    with pytest.raises(ValueError, match="time zone"):
        s.active_for(ALEX, "tiktok", datetime(2025, 3, 3, 14))


@pytest.mark.parametrize(
    ("role", "words"),
    [("teacher", "a teacher"), ("aide", "an aide"), ("counselor", "a counselor"),
     ("districtAdministrator", "a district administrator")],
)  # fmt: skip
def test_role_words(role: str, words: str) -> None:
    assert role_words(role) == words


# ---------------------------------------------------------------- OverrideStore


def store(tmp_path: Path) -> OverrideStore:
    return OverrideStore(tmp_path / "state" / "overrides.json")


def test_grant_persists_and_reloads(tmp_path: Path) -> None:
    st = store(tmp_path)
    g = st.grant(platform="youtube", granted_by="t-0001", class_id="c-bio", ends=NOW + H,
                 reason="  fake lab  ", now=NOW, known_platforms=PLATFORMS)  # fmt: skip
    assert (
        g.id.startswith("ov-") and g.starts == NOW and g.created == NOW and g.reason == "fake lab"
    )
    assert st.load() == [g]
    data = json.loads(st.path.read_text(encoding="utf-8"))
    assert data["version"] == 1
    rec = data["overrides"][0]
    assert rec["starts"] == "2025-03-03T14:00:00+00:00" and rec["class_id"] == "c-bio"
    assert rec["revoked_at"] is None and rec["granted_by_role"] == "teacher"
    assert stat.S_IMODE(st.path.stat().st_mode) == 0o640
    # the atomic write leaves no temporary files behind
    assert sorted(p.name for p in st.path.parent.iterdir()) == [
        "overrides.json",
        "overrides.json.lock",
    ]


def test_grant_times_in_other_zones_round_trip(tmp_path: Path) -> None:
    st = store(tmp_path)
    est = timezone(timedelta(hours=-5))
    g = st.grant(platform="tiktok", granted_by="t-0001", students=["s-0001", "s-0002", "s-0001"],
                 starts=NOW.astimezone(est), ends=(NOW + H).astimezone(est), now=NOW,
                 override_id="ov-fixed")  # fmt: skip
    assert g.students == ("s-0001", "s-0002")  # duplicates dropped, order kept
    (back,) = st.load()
    assert back.id == "ov-fixed" and back.starts == NOW and back.ends == NOW + H


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ends": NOW + timedelta(days=1, seconds=1)}, "at most 1d; this one lasts 1d"),
     ({"ends": NOW - timedelta(minutes=1)}, "would end in the past"),
     ({"ends": NOW}, "would end in the past"),
     ({"starts": NOW - timedelta(minutes=5)}, "would start in the past"),
     ({"starts": NOW + 2 * H}, "ends before it starts"),
     ({"platform": "myspace"}, "unknown platform 'myspace'"),
     ({"class_id": None}, "name either a class or one or more students"),
     ({"students": ["s-0001"]}, "name either a class or one or more students"),
     ({"ends": datetime(2025, 3, 3, 15)}, "ends must carry a time zone"),
     ({"granted_by": ""}, "granted_by"),
     ({"override_id": "bad id!"}, "not a valid override id"),
     ({"max_length": timedelta(minutes=30)}, "at most 30m; this one lasts 1h")],
)  # fmt: skip
def test_grant_refusals(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    st = store(tmp_path)
    args: dict[str, object] = {"platform": "youtube", "granted_by": "t-0001", "ends": NOW + H}
    args.update(class_id="c-bio", now=NOW, known_platforms=PLATFORMS)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        st.grant(**args)  # type: ignore[arg-type]
    assert st.load() == []  # nothing written


def test_overlapping_grant_names_the_existing_one(tmp_path: Path) -> None:
    st = store(tmp_path)
    first = st.grant(platform="tiktok", granted_by="t-0001", students=["s-0001", "s-0002"],
                     ends=NOW + 2 * H, now=NOW, override_id="ov-first")  # fmt: skip
    with pytest.raises(ValueError) as info:
        st.grant(platform="tiktok", granted_by="t-0009", students=["s-0002"], starts=NOW + H,
                 ends=NOW + 3 * H, now=NOW)  # fmt: skip
    msg = str(info.value)
    assert msg.startswith("overlaps override ov-first (students s-0001, s-0002, tiktok, ")
    assert "2025-03-03T14:00:00+00:00 to 2025-03-03T16:00:00+00:00, granted by t-0001" in msg
    # not overlapping: back to back, another platform, another target
    st.grant(platform="tiktok", granted_by="t-0001", students=["s-0002"], starts=NOW + 2 * H,
             ends=NOW + 3 * H, now=NOW)  # fmt: skip
    st.grant(platform="youtube", granted_by="t-0001", students=["s-0002"], ends=NOW + H, now=NOW)
    st.grant(platform="tiktok", granted_by="t-0001", students=["s-0003"], ends=NOW + H, now=NOW)
    # a class grant and a student grant are different targets
    st.grant(platform="tiktok", granted_by="t-0001", class_id="c-art", ends=NOW + H, now=NOW)
    assert len(st.load()) == 5
    # once revoked, the window is free again
    st.revoke(first.id, "t-0001", now=NOW + timedelta(minutes=30))
    half = NOW + timedelta(minutes=30)
    st.grant(platform="tiktok", granted_by="t-0001", students=["s-0001"], starts=half,
             ends=NOW + H, now=half)  # fmt: skip


def test_revoke_and_list(tmp_path: Path) -> None:
    st = store(tmp_path)
    a = st.grant(platform="tiktok", granted_by="t-0001", class_id="c-bio", ends=NOW + H, now=NOW)
    b = st.grant(platform="youtube", granted_by="t-0001", class_id="c-bio", ends=NOW + H, now=NOW)
    c = st.grant(platform="chatter", granted_by="t-0001", class_id="c-bio", starts=NOW + H,
                 ends=NOW + 2 * H, now=NOW)  # fmt: skip
    r = st.revoke(a.id, "t-0002", now=NOW + timedelta(minutes=20))
    assert r.revoked_by == "t-0002" and r.revoked_at == NOW + timedelta(minutes=20)
    later = NOW + timedelta(minutes=30)
    assert [o.id for o in st.list(active_only=True, now=later)] == [b.id, c.id]
    assert [o.id for o in st.list(active_only=True, now=NOW + 90 * timedelta(minutes=1))] == [c.id]
    everything = st.list()
    assert [o.id for o in everything] == [a.id, b.id, c.id]  # expired and revoked kept
    assert [o.status(later) for o in everything] == ["revoked", "active", "scheduled"]
    assert everything[1].status(NOW + H) == "expired"
    # the proxy's view: only what can still apply
    assert {o.id for o in st.override_set(now=later)} == {b.id, c.id}
    assert len(st.override_set()) == 3
    with pytest.raises(ValueError, match=f"override {a.id} was already revoked by t-0002"):
        st.revoke(a.id, "t-0003", now=later)
    with pytest.raises(ValueError, match="already expired"):
        st.revoke(b.id, "t-0003", now=NOW + 2 * H)
    with pytest.raises(ValueError, match="no override with id 'ov-nope'"):
        st.revoke("ov-nope", "t-0003", now=later)
    with pytest.raises(ValueError, match="revoked_by"):
        st.revoke(b.id, "", now=later)


def test_missing_store_is_empty(tmp_path: Path) -> None:
    assert store(tmp_path).load() == [] and store(tmp_path).list(True, NOW) == []


GOOD_RECORD: dict[str, object] = {
    "id": "ov-0001", "platform": "tiktok", "granted_by": "t-0001", "granted_by_role": "teacher",
    "class_id": "c-bio", "students": [], "starts": "2025-03-03T14:00:00+00:00",
    "ends": "2025-03-03T15:00:00+00:00", "reason": "", "created": None, "revoked_at": None,
    "revoked_by": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [({"ends": "tomorrow"}, "override 'ov-0002': field 'ends'", "valid datetime"),
     ({"ends": "2025-03-03T15:00:00"}, "override 'ov-0002': field 'ends'", "timezone info"),
     ({"colour": "red"}, "override 'ov-0002': field 'colour'", "unknown key"),
     ({"id": "ov-0001"}, "override 'ov-0001'", "duplicate override id"),
     ({"students": ["s-0001"]}, "override 'ov-0002'", "name either class_id or students")],
)  # fmt: skip
def test_damaged_store_names_file_line_field(
    tmp_path: Path, change: dict[str, object], where: str, message: str
) -> None:
    second = {**GOOD_RECORD, "id": "ov-0002", **change}
    text = json.dumps({"version": 1, "overrides": [GOOD_RECORD, second]}, indent=2)
    path = tmp_path / "overrides.json"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    key = next(iter(change))
    if "field" in where:  # the line of the bad key in the second record
        line = max(i for i, ln in enumerate(lines, 1) if ln.strip().startswith(f'"{key}": '))
    else:  # the line where the second record starts
        line = [i for i, ln in enumerate(lines, 1) if ln == "    {"][1]
    with pytest.raises(ConfigError) as info:
        OverrideStore(path).load()
    assert str(info.value).startswith(f"{path}:{line}: {where}"), str(info.value)
    assert message in str(info.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{\n  "version": 1,\n  "overrides": [,]\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:3: invalid JSON"):
        OverrideStore(path).load()
    path.write_text("[]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        OverrideStore(path).load()


def test_grant_refuses_to_write_over_a_damaged_store(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"version": 2}', encoding="utf-8")
    with pytest.raises(ConfigError, match="field 'version'"):
        OverrideStore(path).grant(platform="tiktok", granted_by="t-0001", class_id="c-bio",
                                  ends=NOW + H, now=NOW)  # fmt: skip
    assert path.read_text(encoding="utf-8") == '{"version": 2}'
