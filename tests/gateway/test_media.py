"""Media hosts pass through where decrypting would change nothing (monitor.flow.engine
``_plan_media``, the catalogue's ``media_hosts``): a restricted YouTube session needs its
``YouTube-Restrict`` header on the page and API hosts only, so its video and image hosts are
not decrypted; a blocked platform's media hosts are still refused; a media host whose
activities are decided differently is still intercepted."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.district import District, DistrictLoader
from monitor.flow.engine import plan_connection
from monitor.platforms import catalogue as catalogue_mod

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("America/New_York")
SCHOOL = datetime(2026, 12, 2, 10, 30, tzinfo=TZ).timestamp()  # a Wednesday, in school hours
EVENING = datetime(2026, 12, 2, 19, 0, tzinfo=TZ).timestamp()  # the same day, after school

KID, TEEN, HS_TEEN, TEACHER = "127.0.0.11", "127.0.0.15", "127.0.0.17", "127.0.0.50"
PAGE, API = "www.youtube.com", "youtubei.googleapis.com"
VIDEO, THUMBS, PLAYER = "rr3---sn-ab5l6n7s.googlevideo.com", "i.ytimg.com", "s.ytimg.com"
AVATARS = "yt3.ggpht.com"


def _copy_example(dst: Path, policy_extra: str = "") -> District:
    shutil.copytree(ROOT / "examples" / "district", dst)
    text = (dst / "district.yaml").read_text()
    (dst / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    if policy_extra:
        policy = (dst / "policy.yaml").read_text()
        # a rule of the test's own, tried first
        (dst / "policy.yaml").write_text(policy.replace("rules:\n", "rules:\n" + policy_extra, 1))
    return DistrictLoader(dst).load()


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    return _copy_example(tmp_path_factory.mktemp("media") / "district")


def plan(district: District, client: str, host: str, when: float = SCHOOL) -> tuple[str, str]:
    p = plan_connection(district, district.resolver.resolve(client), (host,), when)
    rule = p.ruling.decision.rule_id if p.ruling else ""
    return p.outcome, rule


@pytest.mark.parametrize(
    ("client", "host", "when", "outcome", "rule"),
    [
        # a teen in school hours: YouTube restricted (the header goes on page and API hosts)
        (TEEN, PAGE, SCHOOL, "intercept", ""),
        (TEEN, API, SCHOOL, "intercept", ""),
        (TEEN, VIDEO, SCHOOL, "passthrough", ""),
        (TEEN, THUMBS, SCHOOL, "passthrough", ""),
        (TEEN, PLAYER, SCHOOL, "passthrough", ""),
        (TEEN, AVATARS, SCHOOL, "passthrough", ""),
        (HS_TEEN, VIDEO, SCHOOL, "passthrough", ""),
        # the same teen after school: YouTube blocked, media refused without decrypting
        (TEEN, VIDEO, EVENING, "refuse", "student-social"),
        (TEEN, PAGE, EVENING, "intercept", "student-social"),  # the block page
        # an 11-year-old: blocked (COPPA) at any hour, media refused, the page shows why
        (KID, VIDEO, SCHOOL, "refuse", "under13"),
        (KID, THUMBS, SCHOOL, "refuse", "under13"),
        (KID, PAGE, SCHOOL, "intercept", "under13"),
        (KID, API, SCHOOL, "refuse", "under13"),
        # a teacher: allowed, nothing decrypted anywhere
        (TEACHER, VIDEO, SCHOOL, "passthrough", ""),
        (TEACHER, PAGE, SCHOOL, "passthrough", ""),
        # other platforms' media: TikTok's video CDN for a teen (blocked) and a teacher
        ("127.0.0.15", "v16-webapp-prime.tiktokcdn-us.com", SCHOOL, "refuse", "student-social"),
        (TEACHER, "v16-webapp-prime.tiktokcdn-us.com", SCHOOL, "passthrough", ""),
        # Pinterest is approved in school hours (allowed outright): media passes, like its pages
        (TEEN, "i.pinimg.com", SCHOOL, "passthrough", ""),
        (TEEN, "i.pinimg.com", EVENING, "refuse", "student-social"),
    ],
)
def test_media_hosts_pass_through_unless_blocked(
    district: District, client: str, host: str, when: float, outcome: str, rule: str
) -> None:
    assert plan(district, client, host, when) == (outcome, rule)


def test_a_media_name_never_opens_a_page_name_of_the_same_connection(district: District) -> None:
    # CONNECT to the page host with the SNI of a video host (or the other way round): the
    # strictest name decides, so the restricted page is still decrypted for its header
    for names in ((PAGE, VIDEO), (VIDEO, PAGE), (THUMBS, API)):
        p = plan_connection(district, district.resolver.resolve(TEEN), names, SCHOOL)
        assert p.outcome == "intercept", names


def test_media_decided_by_activity_is_intercepted(tmp_path: Path) -> None:
    """A policy that lets high-school students view LinkedIn in school hours but not stream
    (hs-career-pages allows view and embed only): LinkedIn's image host carries both, so it is
    decided per request; for a middle-school teen every media activity is blocked → refused."""
    district = _copy_example(tmp_path / "district")
    assert plan(district, HS_TEEN, "media.licdn.com") == ("intercept", "")
    assert plan(district, TEEN, "static.licdn.com") == ("intercept", "")  # also high school
    # a middle-school teen (127.0.0.13): every media activity blocked → refused
    assert plan(district, "127.0.0.13", "media.licdn.com") == ("refuse", "student-social")
    assert plan(district, HS_TEEN, "media.licdn.com", EVENING) == ("refuse", "student-social")


def test_a_rule_naming_a_media_host_counts_among_its_activities(tmp_path: Path) -> None:
    """WhatsApp's media host also takes uploads (its upload rule names '*.whatsapp.net'): a
    policy that allows WhatsApp but blocks uploads must still see those requests."""
    no_uploads = (
        "  - id: teen-whatsapp-no-uploads\n"
        "    match: {who: student, bands: teen, platforms: [whatsapp], activities: [upload]}\n"
        "    action: block\n"
        "    reason: No uploads.\n"
    )
    allow = (
        "  - id: teen-whatsapp\n"
        "    match: {who: student, bands: teen, platforms: [whatsapp]}\n"
        "    action: allow\n"
        "    reason: Allowed.\n"
    )
    district = _copy_example(tmp_path / "district", no_uploads + allow)
    assert district.catalogue["whatsapp"].media_activities("mmg.whatsapp.net") >= {"upload"}
    assert plan(district, TEEN, "mmg.whatsapp.net") == ("intercept", "")
    # without the upload rule the same host passes through for that teen
    allowed = _copy_example(tmp_path / "allowed", allow)
    assert plan(allowed, TEEN, "mmg.whatsapp.net") == ("passthrough", "")
    assert plan(allowed, KID, "mmg.whatsapp.net") == ("refuse", "under13")


def test_every_media_host_is_its_platform_s_own(catalogue: catalogue_mod.Catalogue) -> None:
    from monitor.platforms.classify import Classifier

    classify = Classifier(catalogue)
    with_media = [p for p in catalogue if p.media_hosts or p.media_suffixes]
    assert len(with_media) >= 30
    for p in with_media:
        names = set(p.media_hosts) | {"x1" + s for s in p.media_suffixes}
        for host in names:
            got = classify.platform_of(host)
            assert got is not None and got.id == p.id, host
            assert p.is_media_host(host) and not p.is_page_host(host), host
    for pid in ("youtube", "tiktok", "instagram", "facebook", "snapchat", "twitter", "reddit",
                "twitch", "pinterest", "discord"):  # fmt: skip
        assert catalogue[pid].media_hosts or catalogue[pid].media_suffixes, pid
