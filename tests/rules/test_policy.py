"""monitor.rules.policy: the policy file's schema, its errors (file:line: field) and compilation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from monitor.model import Decision, School
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue, Platform
from monitor.rules.loader import load_policy
from monitor.rules.policy import (
    Match,
    Policy,
    Rule,
)
from monitor.rules.schema import format_duration, parse_duration
from monitor.yamlfile import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "policy_example.yaml"


def platform(
    pid: str, category: str = "social", *, kids: bool = False, bypass: str | None = None
) -> Platform:
    return Platform(
        id=pid, name=pid.title(), owner="Example Owner", category=category,
        min_age=None if kids else 13, designed_for_children=kids, bypass_kind=bypass,
        suffixes=(f"{pid}.example",), hosts=(), page_hosts=frozenset(), page_suffixes=(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    ps = [
        platform("tiktok", "video"),
        platform("youtube", "video"),
        platform("chatter", "messaging"),
        platform("kidsclub", "kids", kids=True),
        platform("tunnelvpn", "bypass", bypass="vpn"),
    ]
    return Catalogue(platforms={p.id: p for p in ps}, shared_cdn_suffixes=frozenset())


BASE = """\
version: 1
district: Test District
contact: help@district.example
timezone: America/New_York
dedupe_window: 15m
override_max_length: 2h
unknown: {role: student, band: under13}
missing_birthdate_band: under13
closed: [2025-11-27, {from: 2025-12-22, to: 2025-12-24}]
schools:
  - id: es
    hours:
      - {days: [mon-fri], start: "08:00", end: "15:00"}
    closed: [2025-10-13]
approved: [youtube]
rules:
  - id: r1
    match:
      who: student
      bands: [under13]
      platforms: [tiktok, youtube]
      activities: [post]
    action: block
    incident: medium
    reason: Under-13s may not post.
  - id: r2
    match: {categories: [video], schools: [es], in_school_hours: true}
    action: restrict
    restrict: {youtube_restrict: strict, safe_search: true}
    reason: Restricted during school.
default:
  action: block
  reason: Not approved.
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_containing(text: str, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return n
    raise AssertionError(f"{needle!r} not in text")


def test_base_loads_and_compiles(tmp_path: Path, cat: Catalogue) -> None:
    pol = load_policy(write(tmp_path, BASE), cat, ["es"])
    assert pol.district == "Test District"
    assert pol.timezone == "America/New_York"
    assert pol.dedupe_window == timedelta(minutes=15)
    assert pol.override_max_length == timedelta(hours=2)
    assert [r.id for r in pol.rules] == ["r1", "r2"]
    assert pol.approved == frozenset({"youtube"})
    r1 = pol.rules[0]
    assert r1.match.who == frozenset({"student"})  # a single value becomes a list
    assert r1.decision == Decision("block", "r1", "Under-13s may not post.", "medium")
    r2 = pol.rules[1].decision
    assert r2.headers == (("YouTube-Restrict", "Strict"),) and r2.safe_search
    assert pol.rules[0].line == line_containing(BASE, "- id: r1")
    hours = pol.schools["es"]
    # district-wide and school closed days are merged, ranges expanded
    assert {date(2025, 11, 27), date(2025, 10, 13), date(2025, 12, 23)} <= hours.closed
    assert hours.week[0] == ((480, 900),) and hours.week[5] == ()
    assert pol.default.decision.action == "block"


def test_example_policy_loads_against_shipped_catalogue() -> None:
    pol = load_policy(EXAMPLE, catalogue_mod.load(), ["es", "ms", "hs"])
    assert pol.unknown_role == "student" and pol.unknown_band == "under13"
    assert pol.missing_birthdate_band == "under13"
    assert set(pol.schools) == {"es", "ms", "hs"}
    ids = [r.id for r in pol.rules]
    assert ids.index("bypass-student") < ids.index("staff") < ids.index("under13")
    assert any(r.decision.headers == (("YouTube-Restrict", "Strict"),) for r in pol.rules)
    assert any(r.match.bypass and r.decision.incident == "high" for r in pol.rules)


def test_school_objects_alias_identifier_to_sourced_id(tmp_path: Path, cat: Catalogue) -> None:
    schools = [School("org-0001", "Elm Elementary (fake)", identifier="es")]
    pol = load_policy(write(tmp_path, BASE), cat, schools)
    # people carry sourcedIds; the policy was written with the identifier
    assert pol.schools["org-0001"] is pol.schools["es"]
    assert pol.rules[1].match.schools == frozenset({"es", "org-0001"})


def test_unquoted_yaml_times_are_sexagesimal_minutes(tmp_path: Path, cat: Catalogue) -> None:
    text = BASE.replace('start: "08:00", end: "15:00"', "start: 08:00, end: 15:00")
    pol = load_policy(write(tmp_path, text), cat)
    assert pol.schools["es"].week[2] == ((480, 900),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("15m", timedelta(minutes=15)), ("1h30m", timedelta(minutes=90)), ("1d", timedelta(days=1)),
     ("90s", timedelta(seconds=90)), ("2d3h", timedelta(days=2, hours=3))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


# (description, old text, new text, line marker in the new text, where/field, message part)
ERRORS = [
    ("unknown platform id", "platforms: [tiktok, youtube]", "platforms: [tiktok, youtub]",
     "platforms: [tiktok, youtub]", "rule 'r1': field 'match.platforms[1]'",
     "unknown platform 'youtub': not in the catalogue (did you mean 'youtube'?)"),
    ("unknown approved platform", "approved: [youtube]", "approved: [youtube, snapface]",
     "approved:", "field 'approved[1]'", "unknown platform 'snapface'"),
    ("unknown category", "categories: [video]", "categories: [videos]", "categories: [videos]",
     "rule 'r2': field 'match.categories[0]'", "unknown category 'videos'"),
    ("unknown school in a rule", "schools: [es]", "schools: [es, xs]", "schools: [es, xs]",
     "rule 'r2': field 'match.schools[1]'", "unknown school 'xs'"),
    ("unknown school entry", "  - id: es\n", "  - id: zz\n", "- id: zz",
     "school 'zz': field 'id'", "unknown school 'zz'"),
    ("unknown band", "bands: [under13]", "bands: [under13, tween]", "bands: [under13, tween]",
     "rule 'r1': field 'match.bands[1]'", "Input should be 'under13', 'teen' or 'adult'"),
    ("unknown activity", "activities: [post]", "activities: [posting]", "activities: [posting]",
     "rule 'r1': field 'match.activities[0]'", "Input should be 'view'"),
    ("unknown who", "who: student", "who: teacher", "who: teacher",
     "rule 'r1': field 'match.who[0]'", "Input should be 'student', 'staff' or 'unknown'"),
    ("bad time zone", "timezone: America/New_York", "timezone: America/Springfield",
     "timezone:", "field 'timezone'", "unknown time zone 'America/Springfield'"),
    ("end before start", 'start: "08:00", end: "15:00"', 'start: "15:00", end: "08:00"',
     'start: "15:00"', "school 'es': field 'hours[0].end'",
     "school hours end (08:00) before they start (15:00)"),
    ("bad time", 'end: "15:00"', 'end: "3pm"', 'end: "3pm"', "school 'es': field 'hours[0].end'",
     "'3pm' is not a time of day"),
    ("bad day", "days: [mon-fri]", "days: [mon-fry]", "days: [mon-fry]",
     "school 'es': field 'hours[0].days'", "'mon-fry' is not a day"),
    ("overlapping hours", '      - {days: [mon-fri], start: "08:00", end: "15:00"}\n',
     '      - {days: [mon-fri], start: "08:00", end: "15:00"}\n'
     '      - {days: [fri], start: "14:00", end: "16:00"}\n',
     "days: [fri]", "school 'es': field 'hours[1]'", "hours on fri overlap 08:00–15:00"),
    ("unknown key in a rule", "    action: block\n    incident: medium",
     "    action: block\n    severity: medium", "severity:", "rule 'r1': field 'severity'",
     "unknown key"),
    ("unknown top-level key", "dedupe_window: 15m", "dedupe_window: 15m\nretention: 30d",
     "retention:", "field 'retention'", "unknown key"),
    ("bad duration", "dedupe_window: 15m", "dedupe_window: fifteen", "dedupe_window:",
     "field 'dedupe_window'", "'fifteen' is not a duration"),
    ("bad unknown band", "band: under13}", "band: toddler}", "unknown:",
     "field 'unknown.band'", "Input should be"),
    ("bad missing_birthdate_band", "missing_birthdate_band: under13",
     "missing_birthdate_band: baby", "missing_birthdate_band:", "field 'missing_birthdate_band'",
     "Input should be"),
    ("restrict without headers", "restrict: {youtube_restrict: strict, safe_search: true}",
     "restrict: {safe_search: false}", "restrict: {safe_search: false}",
     "rule 'r2': field 'restrict'", "needs youtube_restrict and/or safe_search"),
    ("restrict on a block rule", "    incident: medium\n",
     "    incident: medium\n    restrict: {safe_search: true}\n", "restrict: {safe_search: true}",
     "rule 'r1': field 'restrict'", "only restrict rules inject headers"),
    ("bad youtube_restrict", "youtube_restrict: strict", "youtube_restrict: severe",
     "youtube_restrict: severe", "rule 'r2': field 'restrict.youtube_restrict'",
     "Input should be 'strict' or 'moderate'"),
    ("duplicate rule id", "  - id: r2\n", "  - id: r1\n", "- id: r1@2", "rule 'r1': field 'id'",
     "duplicate rule id (first at line"),
    ("reserved rule id", "  - id: r2\n", "  - id: default\n", "- id: default",
     "rule 'default': field 'id'", "'default' is reserved"),
    ("bad rule id", "  - id: r2\n", "  - id: 'Rule Two'\n", "- id: 'Rule Two'",
     "rule 'Rule Two': field 'id'", "rule ids are"),
    ("bad action", "    action: block\n    incident", "    action: deny\n    incident",
     "action: deny", "rule 'r1': field 'action'", "Input should be 'allow', 'restrict' or 'block'"),
    ("bad incident", "incident: medium", "incident: severe", "incident: severe",
     "rule 'r1': field 'incident'", "Input should be 'low', 'medium' or 'high'"),
    ("empty list", "bands: [under13]", "bands: []", "bands: []", "rule 'r1': field 'match.bands'",
     "at least 1 item"),
    ("missing reason", "    reason: Under-13s may not post.\n", "", "- id: r1",
     "rule 'r1': field 'reason'", "required field is missing"),
    ("missing default", "default:\n  action: block\n  reason: Not approved.\n", "", "version: 1",
     "field 'default'", "required field is missing"),
    ("closed range backwards", "{from: 2025-12-22, to: 2025-12-24}",
     "{from: 2025-12-22, to: 2025-12-20}", "closed:", "field 'closed[1].to'",
     "closed range ends (2025-12-20) before it starts (2025-12-22)"),
    ("non-boolean flag", "in_school_hours: true", "in_school_hours: yes please",
     "in_school_hours:", "rule 'r2': field 'match.in_school_hours'", "valid boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "old", "new", "marker", "where", "message"), ERRORS,
                         ids=[e[0] for e in ERRORS])  # fmt: skip
def test_policy_errors_name_file_line_field(
    tmp_path: Path, cat: Catalogue, desc: str, old: str, new: str, marker: str, where: str,
    message: str,
) -> None:  # fmt: skip
    assert old in BASE, desc
    text = BASE.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy(path, cat, ["es"])
    err = info.value
    needle, _, nth = marker.partition("@")  # "text@2": the second line containing text
    line = line_containing(text, needle, int(nth or 1))
    assert str(err).startswith(f"{path}:{line}: {where}: "), str(err)
    assert message in str(err)
    assert err.line == line


def test_school_listed_twice(tmp_path: Path, cat: Catalogue) -> None:
    text = BASE.replace("approved:", "  - id: es\n    hours: []\napproved:")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"school 'es': field 'id': school listed twice"):
        load_policy(path, cat)


def test_school_alias_listed_twice(tmp_path: Path, cat: Catalogue) -> None:
    # the sourcedId and the identifier of one school are the same school
    text = BASE.replace("approved:", "  - id: org-0001\n    hours: []\napproved:")
    path = write(tmp_path, text)
    schools = [School("org-0001", "Elm Elementary (fake)", identifier="es")]
    with pytest.raises(ConfigError) as info:
        load_policy(path, cat, schools)
    assert f"{path}:{line_containing(text, '- id: org-0001')}:" in str(info.value)
    assert "also as 'es'" in str(info.value)


def test_unknown_schools_are_accepted_without_a_known_list(tmp_path: Path, cat: Catalogue) -> None:
    text = BASE.replace("schools: [es]", "schools: [es, xs]")
    pol = load_policy(write(tmp_path, text), cat, None)
    assert pol.rules[1].match.schools == frozenset({"es", "xs"})


@pytest.mark.parametrize(
    ("text", "message"),
    [("- just\n- a list\n", "the policy must be a YAML mapping"),
     ("district: [unclosed\n", "invalid YAML"),
     ("rules: []\n", "field 'district': required field is missing")],
)  # fmt: skip
def test_whole_file_errors(tmp_path: Path, cat: Catalogue, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy(path, cat)
    assert str(info.value).startswith(f"{path}:")
    assert message in str(info.value)


def test_missing_file(tmp_path: Path, cat: Catalogue) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_policy(tmp_path / "nope.yaml", cat)


def test_summary_lists_rules_in_order(tmp_path: Path, cat: Catalogue) -> None:
    lines = load_policy(write(tmp_path, BASE), cat).summary()
    text = "\n".join(lines)
    assert (
        "1. r1: who=student bands=under13 platforms=tiktok,youtube activities=post → block" in text
    )
    assert "2. r2:" in text and "YouTube-Restrict: Strict, SafeSearch" in text
    assert lines[-1].strip() == "default: block"
    assert "longest override: 2h" in text


def test_compiled_table_skips_rules_that_cannot_match(tmp_path: Path, cat: Catalogue) -> None:
    pol = load_policy(write(tmp_path, BASE), cat)
    # a teen viewing TikTok: r1 (under13, post) is out; r2 (video, school hours) remains
    cands = pol.candidates("student", "teen", cat["tiktok"], "view")
    assert [c[2].rule_id for c in cands] == ["r2", "default"]
    cands = pol.candidates("student", "under13", cat["tiktok"], "post")
    assert [c[2].rule_id for c in cands] == ["r1"]  # unconditional: nothing after it
    cands = pol.candidates("staff", None, cat["chatter"], "view")
    assert [c[2].rule_id for c in cands] == ["default"]


def test_candidates_recompile_for_a_new_platform_object(tmp_path: Path, cat: Catalogue) -> None:
    pol = load_policy(write(tmp_path, BASE), cat)
    assert [c[2].rule_id for c in pol.candidates("student", "teen", cat["chatter"], "view")] == [
        "default"
    ]
    # the catalogue was reloaded and 'chatter' is now a video platform: not a stale answer
    moved = platform("chatter", "video")
    assert [c[2].rule_id for c in pol.candidates("student", "teen", moved, "view")] == [
        "r2",
        "default",
    ]


def _bare_policy(tz: str) -> Policy:
    default = Rule("default", Match(), Decision("block", "default", "Not approved."))
    return Policy(district="T", contact="c", timezone=tz, rules=(), default=default)


@pytest.mark.parametrize(
    ("tz", "start"),
    [("America/New_York", datetime(2025, 3, 8, tzinfo=UTC)),
     ("America/New_York", datetime(2025, 10, 31, tzinfo=UTC)),
     ("Asia/Kathmandu", datetime(2025, 1, 1, tzinfo=UTC)),
     ("Australia/Lord_Howe", datetime(2025, 4, 5, tzinfo=UTC)),  # a 30-minute DST shift
     ("Australia/Lord_Howe", datetime(2025, 10, 4, tzinfo=UTC)),
     ("America/New_York", datetime(1880, 1, 1, tzinfo=UTC))],  # LMT: -4:56:02
)  # fmt: skip
def test_local_clock_cache_matches_zoneinfo(tz: str, start: datetime) -> None:
    pol = _bare_policy(tz)
    base = start.timestamp()
    for step in range(0, 3 * 86400, 7 * 60 + 13):  # three days, odd steps to hit every bucket
        ts = base + step
        dt = datetime.fromtimestamp(ts, pol.tz)
        expected = (dt.date(), dt.weekday(), dt.hour * 60 + dt.minute)
        assert pol.local(ts) == expected, datetime.fromtimestamp(ts, UTC)
        assert pol.local(ts) == expected  # from the cache this time
