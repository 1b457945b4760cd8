"""monitor.rules.decide: decisions of the example district policy, table-driven.

All people are synthetic. Times are given in UTC; the district is in America/New_York, so
school hours 08:00-15:00 are 13:00-20:00 UTC in winter (EST) and 12:00-19:00 UTC in summer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.model import Decision, Device, Identity, Person
from monitor.platforms.catalogue import Catalogue, Platform
from monitor.rules.decide import (
    NOT_IN_CATALOGUE,
    connection_decision,
    decide,
    needs_request,
)
from monitor.rules.explain import explain
from monitor.rules.loader import load_policy
from monitor.rules.overrides import Override, OverrideSet
from monitor.rules.policy import Policy

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "policy_example.yaml"


def platform(pid: str, category: str, *, kids: bool = False, bypass: str | None = None) -> Platform:
    return Platform(
        id=pid, name=pid.title(), owner="Example Owner", category=category,
        min_age=None if kids else 13, designed_for_children=kids, bypass_kind=bypass,
        suffixes=(f"{pid}.example",), hosts=(), page_hosts=frozenset(), page_suffixes=(),
    )  # fmt: skip


CAT = Catalogue(
    platforms={
        p.id: p
        for p in (
            platform("tiktok", "video"),
            platform("youtube", "video"),
            platform("chatter", "messaging"),
            platform("kidsclub", "kids", kids=True),
            platform("tunnelvpn", "bypass", bypass="vpn"),
        )
    },
    shared_cdn_suffixes=frozenset(),
)
TIKTOK, YOUTUBE, CHATTER = CAT["tiktok"], CAT["youtube"], CAT["chatter"]
KIDS, VPN = CAT["kidsclub"], CAT["tunnelvpn"]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(EXAMPLE, CAT, ["es", "ms", "hs"])


def student(
    sid: str, birth: date | None, school: str = "hs", classes: tuple[str, ...] = ()
) -> Person:
    return Person(sid, f"user-{sid}", "student", (school,), birth_date=birth, classes=classes)


KID = student("s-kid", date(2014, 1, 10), "es")  # 11 in March 2025
TEEN = student("s-teen", date(2010, 1, 10), "hs", ("c-bio",))  # 15
GROWN = student("s-grown", date(2006, 1, 1), "hs")  # 19: an adult student
NO_BIRTH = student("s-nobirth", None, "hs")
NO_SCHOOL = Person("s-noschool", "user-noschool", "student", (), birth_date=date(2010, 1, 10))
STAFF = Person("t-0001", "teacher1", "teacher", ("hs",))
GUARDIAN = Person("g-0001", "guardian1", "guardian", ())
HS_DEVICE = Device("dev-hs-1", "02:00:00:00:00:01", None, "hs")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


MON_10 = utc(2025, 3, 3, 15, 0)  # Monday 10:00 EST
MON_0759 = utc(2025, 3, 3, 12, 59)
MON_1459 = utc(2025, 3, 3, 19, 59)
MON_1500 = utc(2025, 3, 3, 20, 0)  # hours end at 15:00: not included
SAT_10 = utc(2025, 3, 8, 15, 0)
THANKSGIVING_10 = utc(2025, 11, 27, 15, 0)  # a Thursday, closed district-wide
DST_MON_0830 = utc(2025, 3, 10, 12, 30)  # 08:30 EDT; in EST it would be 07:30
STRICT = (("YouTube-Restrict", "Strict"),)

APP, SOC, SOCA = "approved-school-hours", "student-social", "student-social-activity"
U13, U13A, KIDP, BYP = "under13", "under13-activity", "kids-platforms", "bypass-student"
NOBODY_ON_HS = Identity(None, HS_DEVICE, "device")
TEEN_ID = Identity(TEEN, None, "proxy_auth")
MON_0730 = utc(2025, 3, 3, 12, 30)

# (case, who, device, platform, activity, when, action, rule, incident)
CASES = [
    ("kid tiktok view", KID, None, TIKTOK, "view", MON_10, "block", U13, None),
    ("kid tiktok upload", KID, None, TIKTOK, "upload", MON_10, "block", U13A, "medium"),
    ("kid tiktok login", KID, None, TIKTOK, "login", MON_10, "block", U13A, "medium"),
    ("kid youtube in school", KID, None, YOUTUBE, "view", MON_10, "block", U13, None),
    ("kid kids platform", KID, None, KIDS, "view", MON_10, "allow", KIDP, None),
    ("kid kids platform post", KID, None, KIDS, "post", SAT_10, "allow", KIDP, None),
    ("kid vpn", KID, None, VPN, "view", MON_10, "block", BYP, "high"),
    ("teen youtube in school", TEEN, None, YOUTUBE, "view", MON_10, "restrict", APP, None),
    ("teen youtube 14:59", TEEN, None, YOUTUBE, "stream", MON_1459, "restrict", APP, None),
    ("teen youtube 07:59", TEEN, None, YOUTUBE, "view", MON_0759, "block", SOC, None),
    ("teen youtube 15:00", TEEN, None, YOUTUBE, "view", MON_1500, "block", SOC, None),
    ("teen youtube saturday", TEEN, None, YOUTUBE, "view", SAT_10, "block", SOC, None),
    ("teen youtube closed day", TEEN, None, YOUTUBE, "view", THANKSGIVING_10, "block", SOC, None),
    ("teen youtube after DST", TEEN, None, YOUTUBE, "view", DST_MON_0830, "restrict", APP, None),
    ("teen youtube 07:30 EST", TEEN, None, YOUTUBE, "view", MON_0730, "block", SOC, None),
    ("teen youtube post in school", TEEN, None, YOUTUBE, "post", MON_10, "restrict", APP, None),
    ("teen tiktok view", TEEN, None, TIKTOK, "view", MON_10, "block", SOC, None),
    ("teen tiktok post", TEEN, None, TIKTOK, "post", MON_10, "block", SOCA, "low"),
    ("teen chatter message", TEEN, None, CHATTER, "message", SAT_10, "block", SOCA, "low"),
    ("teen tiktok no request yet", TEEN, None, TIKTOK, None, MON_10, "block", SOC, None),
    ("teen vpn", TEEN, None, VPN, "view", MON_10, "block", BYP, "high"),
    ("teen kids platform", TEEN, None, KIDS, "view", MON_10, "allow", KIDP, None),
    ("adult student youtube", GROWN, None, YOUTUBE, "view", MON_10, "restrict", APP, None),
    ("adult student tiktok", GROWN, None, TIKTOK, "view", MON_10, "block", SOC, None),
    ("no birthDate youtube", NO_BIRTH, None, YOUTUBE, "view", MON_10, "block", U13, None),
    ("no birthDate tiktok post", NO_BIRTH, None, TIKTOK, "post", MON_10, "block", U13A, "medium"),
    ("no school, device's", NO_SCHOOL, HS_DEVICE, YOUTUBE, "view", MON_10, "restrict", APP, None),
    ("no school, no device", NO_SCHOOL, None, YOUTUBE, "view", MON_10, "block", SOC, None),
    ("staff tiktok", STAFF, None, TIKTOK, "post", MON_10, "allow", "staff", None),
    ("staff at night", STAFF, None, CHATTER, "message", SAT_10, "allow", "staff", None),
    ("staff vpn", STAFF, None, VPN, "view", MON_10, "block", "bypass", None),
    ("unknown youtube", None, None, YOUTUBE, "view", MON_10, "block", U13, None),
    ("unknown tiktok post", None, None, TIKTOK, "post", MON_10, "block", U13A, "medium"),
    ("unknown kids platform", None, None, KIDS, "view", MON_10, "allow", KIDP, None),
    ("unknown vpn", None, None, VPN, "view", MON_10, "block", BYP, "high"),
    ("device without user", NOBODY_ON_HS, None, YOUTUBE, "view", MON_10, "block", U13, None),
    ("guardian account", GUARDIAN, None, TIKTOK, "view", MON_10, "block", U13, None),
    ("identity of a teen", TEEN_ID, None, YOUTUBE, "view", MON_10, "restrict", APP, None),
    ("not in catalogue", TEEN, None, None, "view", MON_10, "allow", "not-in-catalogue", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "who", "device", "plat", "activity", "when", "action", "rule", "incident"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decisions(
    policy: Policy, case: str, who: Identity | Person | None, device: Device | None,
    plat: Platform | None, activity: str | None, when: datetime, action: str, rule: str,
    incident: str | None,
) -> None:  # fmt: skip
    d = decide(policy, who, device, plat, activity, when)
    assert (d.action, d.rule_id, d.incident) == (action, rule, incident), case
    assert d.reason  # every decision explains itself
    if action == "restrict":
        assert d.headers == STRICT and d.safe_search
    else:
        assert d.headers == () and not d.safe_search
    # the same instant as a POSIX timestamp, and in another zone, decides the same
    assert decide(policy, who, device, plat, activity, when.timestamp()) is d
    tokyo = when.astimezone(timezone(timedelta(hours=9)))
    assert decide(policy, who, device, plat, activity, tokyo) is d
    # explain evaluates the rules without the compiled table and must agree
    assert explain(policy, who, device, plat, activity, when).decision == d


def test_reasons_come_from_the_policy(policy: Policy) -> None:
    d = decide(policy, KID, None, TIKTOK, "view", MON_10)
    assert "12 and under" in d.reason and "COPPA" in d.reason
    assert decide(policy, TEEN, None, None, "view", MON_10) is NOT_IN_CATALOGUE


# A synthetic student born 15 June 2012 turns 13 on Sunday 15 June 2025 at local midnight
# (EDT, UTC-4), which is 04:00 UTC.
BIRTHDAY = student("s-bday", date(2012, 6, 15), "ms")


@pytest.mark.parametrize(
    ("when", "rule"),
    [(utc(2025, 6, 15, 3, 59), "under13"),  # 23:59 on the 14th in New York: still 12
     (utc(2025, 6, 15, 0, 30), "under13"),  # already the 15th in UTC, not in New York
     (utc(2025, 6, 15, 4, 0), "student-social"),  # 00:00 on the 15th: 13, not COPPA's rule
     (utc(2025, 6, 16, 14, 0), "student-social")],  # Monday 10:00: a teen, TikTok blocked
)  # fmt: skip
def test_birthday_changes_band_at_local_midnight(policy: Policy, when: datetime, rule: str) -> None:
    d = decide(policy, BIRTHDAY, None, TIKTOK, "view", when)
    assert (d.action, d.rule_id) == ("block", rule)
    band = explain(policy, BIRTHDAY, None, TIKTOK, "view", when).band
    assert band == ("under13" if rule == "under13" else "teen")


def test_birthday_lets_the_new_teen_use_approved_platforms(policy: Policy) -> None:
    # Monday 16 June 2025 10:00 EDT; the day before the birthday the same hour was blocked
    assert (
        decide(policy, BIRTHDAY, None, YOUTUBE, "view", utc(2025, 6, 16, 14)).action == "restrict"
    )
    assert (
        decide(policy, BIRTHDAY, None, YOUTUBE, "view", utc(2025, 6, 13, 14)).rule_id == "under13"
    )


def test_naive_datetime_is_refused(policy: Policy) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        decide(policy, TEEN, None, YOUTUBE, "view", datetime(2025, 3, 3, 10))


# ---------------------------------------------------------------- overrides


def grant(target: str, plat: str, starts: datetime, ends: datetime, oid: str = "ov-1") -> Override:
    cls = target if target.startswith("c-") else None
    return Override(
        id=oid, platform=plat, granted_by="t-0001", class_id=cls,
        students=() if cls else (target,), starts=starts, ends=ends, reason="fake lesson",
    )  # fmt: skip


WINDOW = (utc(2025, 3, 3, 14, 0), utc(2025, 3, 3, 16, 0))  # 09:00-11:00 EST


@pytest.mark.parametrize(
    ("when", "action", "rule"),
    [(utc(2025, 3, 3, 13, 59), "block", "student-social"),  # before it starts
     (utc(2025, 3, 3, 14, 0), "allow", "override:ov-1"),  # starts inclusive
     (MON_10, "allow", "override:ov-1"),
     (utc(2025, 3, 3, 15, 59, 59), "allow", "override:ov-1"),
     (utc(2025, 3, 3, 16, 0), "block", "student-social")],  # expired by itself
)  # fmt: skip
def test_override_allows_then_expires(
    policy: Policy, when: datetime, action: str, rule: str
) -> None:
    ovs = OverrideSet([grant("s-teen", "tiktok", *WINDOW)])
    d = decide(policy, TEEN, None, TIKTOK, "view", when, ovs)
    assert (d.action, d.rule_id) == (action, rule)
    assert explain(policy, TEEN, None, TIKTOK, "view", when, ovs).decision == d


def test_override_reason_names_role_and_window_not_the_teacher(policy: Policy) -> None:
    ovs = OverrideSet([grant("s-teen", "tiktok", *WINDOW)])
    d = decide(policy, TEEN, None, TIKTOK, "post", MON_10, ovs)
    assert d == Decision("allow", "override:ov-1", d.reason)  # no incident on an allowed post
    assert "a teacher's override" in d.reason
    assert "09:00–11:00 on Mon 03 Mar 2025" in d.reason and "America/New_York" in d.reason
    assert "t-0001" not in d.reason and "fake lesson" not in d.reason


def test_class_override_applies_to_class_members_only(policy: Policy) -> None:
    ovs = OverrideSet([grant("c-bio", "chatter", *WINDOW)])
    assert decide(policy, TEEN, None, CHATTER, "message", MON_10, ovs).rule_id == "override:ov-1"
    assert decide(policy, GROWN, None, CHATTER, "message", MON_10, ovs).rule_id == (
        "student-social-activity"
    )
    # another platform is not covered
    assert decide(policy, TEEN, None, TIKTOK, "view", MON_10, ovs).rule_id == "student-social"


@pytest.mark.parametrize(
    ("who", "plat", "rule"),
    [(KID, TIKTOK, "under13"),  # COPPA: a teacher cannot lift a platform's own age limit
     (NO_BIRTH, TIKTOK, "under13"),  # no birthDate counts as under13
     (TEEN, VPN, "bypass-student"),  # monitoring is not negotiable
     (None, TIKTOK, "under13")],  # unknown people are nobody's class
)  # fmt: skip
def test_override_does_not_apply(
    policy: Policy, who: Person | None, plat: Platform, rule: str
) -> None:
    ovs = OverrideSet(
        [grant("c-bio", plat.id, *WINDOW, oid="ov-c")]
        + [
            grant(p.sourced_id, plat.id, *WINDOW, oid=f"ov-{p.sourced_id}")
            for p in (KID, NO_BIRTH, TEEN)
        ]
    )
    d = decide(policy, who, None, plat, "view", MON_10, ovs)
    assert (d.action, d.rule_id) == ("block", rule)
    ex = explain(policy, who, None, plat, "view", MON_10, ovs)
    assert ex.decision == d and ex.override is None
    if who is not None:
        assert "not applied" in ex.override_note


def test_override_does_not_replace_a_restriction(policy: Policy) -> None:
    ovs = OverrideSet([grant("s-teen", "youtube", *WINDOW)])
    d = decide(policy, TEEN, None, YOUTUBE, "view", MON_10, ovs)
    assert (d.action, d.rule_id) == ("restrict", "approved-school-hours")
    assert (
        "does not block" in explain(policy, TEEN, None, YOUTUBE, "view", MON_10, ovs).override_note
    )


KIDS_POLICY = """\
version: 1
district: Test District
contact: help@district.example
timezone: America/New_York
schools:
  - id: es
    hours: [{days: [mon-fri], start: "08:00", end: "15:00"}]
rules:
  - id: kids-out-of-school
    match: {who: student, designed_for_children: true, in_school_hours: false}
    action: block
    reason: Kids platforms are for school time.
  - id: kids
    match: {designed_for_children: true}
    action: allow
    reason: Made for children.
default: {action: block, reason: Not approved.}
"""


def test_override_applies_to_under13_on_a_platform_designed_for_children(tmp_path: Path) -> None:
    path = tmp_path / "kids.yaml"
    path.write_text(KIDS_POLICY, encoding="utf-8")
    pol = load_policy(path, CAT, ["es"])
    evening = utc(2025, 3, 3, 23, 0)  # 18:00 EST
    ovs = OverrideSet([grant("s-kid", "kidsclub", utc(2025, 3, 3, 22), utc(2025, 3, 4, 1))])
    assert decide(pol, KID, None, KIDS, "view", evening).rule_id == "kids-out-of-school"
    d = decide(pol, KID, None, KIDS, "view", evening, ovs)
    assert (d.action, d.rule_id) == ("allow", "override:ov-1")
    # but not on TikTok, even with the same kind of grant
    ovs2 = OverrideSet([grant("s-kid", "tiktok", utc(2025, 3, 3, 22), utc(2025, 3, 4, 1))])
    assert decide(pol, KID, None, TIKTOK, "view", evening, ovs2).rule_id == "default"


def test_revoked_override_stops_applying(policy: Policy) -> None:
    from dataclasses import replace

    ov = replace(
        grant("s-teen", "tiktok", *WINDOW), revoked_at=utc(2025, 3, 3, 14, 30), revoked_by="t-0002"
    )
    ovs = OverrideSet([ov])
    assert (
        decide(policy, TEEN, None, TIKTOK, "view", utc(2025, 3, 3, 14, 15), ovs).action == "allow"
    )
    assert (
        decide(policy, TEEN, None, TIKTOK, "view", utc(2025, 3, 3, 14, 30), ovs).action == "block"
    )


# ---------------------------------------------------------------- needs_request / explain


@pytest.mark.parametrize(
    ("who", "plat", "when", "needs", "same"),
    [(TEEN, TIKTOK, MON_10, True, None),  # posting raises an incident, viewing does not
     (TEEN, YOUTUBE, MON_10, True, None),  # restricted: headers must be injected
     (STAFF, TIKTOK, MON_10, False, "staff"),
     (KID, KIDS, MON_10, False, "kids-platforms"),
     (TEEN, VPN, MON_10, False, "bypass-student"),
     (STAFF, VPN, MON_10, False, "bypass"),
     (TEEN, None, MON_10, False, "not-in-catalogue")],
)  # fmt: skip
def test_needs_request(
    policy: Policy,
    who: Person,
    plat: Platform | None,
    when: datetime,
    needs: bool,
    same: str | None,
) -> None:
    assert needs_request(policy, who, None, plat, when) is needs
    d = connection_decision(policy, who, None, plat, when)
    assert (d.rule_id if d else None) == same


def test_needs_request_with_an_active_override(policy: Policy) -> None:
    ovs = OverrideSet([grant("s-teen", "tiktok", *WINDOW)])
    # every activity is allowed by the override: no need to look at requests
    assert needs_request(policy, TEEN, None, TIKTOK, MON_10, ovs) is False
    assert connection_decision(policy, TEEN, None, TIKTOK, MON_10, ovs).rule_id == "override:ov-1"  # type: ignore[union-attr]


def test_explain_lists_rules_considered(policy: Policy) -> None:
    ex = explain(policy, TEEN, None, YOUTUBE, "view", MON_0759)
    assert ex.decision.rule_id == "student-social"
    ids = [c.rule_id for c in ex.checks]
    assert ids == ["bypass-student", "bypass", "staff", KIDP, U13A, U13, APP, SOCA, SOC]
    assert [c.matched for c in ex.checks] == [False] * 8 + [True]
    hours = ex.checks[6]
    assert hours.failed == ("outside school hours",)
    assert "band is under13, not teen" in ex.checks[5].failed
    assert "who is staff, not student" in ex.checks[2].failed
    assert ex.band == "teen" and ex.band_basis.startswith("age 15 on 2025-03-03")
    assert ex.local_time.hour == 7 and ex.local_time.minute == 59
    assert ex.schools == ("hs",) and ex.in_school_hours is False and ex.approved
    data = ex.to_dict()
    assert data["decision"]["rule_id"] == "student-social" and data["checks"][-1]["matched"]
    assert all(c["line"] > 0 for c in data["checks"])


@pytest.mark.parametrize(
    ("who", "basis"),
    [(None, "no identified person: treated as a student, band under13"),
     (GUARDIAN, "role 'guardian' is not known: treated as a student"),
     (NO_BIRTH, "no birthDate: band under13"),
     (STAFF, "staff: no age band")],
)  # fmt: skip
def test_explain_band_basis(policy: Policy, who: Person | None, basis: str) -> None:
    ex = explain(policy, who, None, TIKTOK, "view", MON_10)
    assert ex.band_basis.startswith(basis)
    assert ex.person == (who.sourced_id if who else None)


def test_explain_default_and_activity_unknown(tmp_path: Path) -> None:
    path = tmp_path / "kids.yaml"
    path.write_text(KIDS_POLICY, encoding="utf-8")
    pol = load_policy(path, CAT)
    ex = explain(pol, TEEN, None, TIKTOK, None, MON_10)
    assert ex.decision.rule_id == "default"
    assert ex.checks[-1].rule_id == "default" and ex.checks[-1].matched
    assert ex.checks[0].failed == ("tiktok is not designed for children",)


def test_unknown_treated_as_staff_when_configured(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("role: student", "role: staff")
    path = tmp_path / "staffish.yaml"
    path.write_text(text, encoding="utf-8")
    pol = load_policy(path, CAT)
    d = decide(pol, None, None, TIKTOK, "post", MON_10)
    assert (d.action, d.rule_id) == ("allow", "staff")
