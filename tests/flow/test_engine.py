"""monitor.flow.engine: connection plans and request decisions over every name a connection
and a request carry (CONNECT host, SNI, destination, Host header): the strictest wins, in
whatever order the names come, so domain fronting is no way out."""

from __future__ import annotations

import shutil
from datetime import datetime
from itertools import permutations
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.district import District, DistrictLoader
from monitor.flow.engine import catalogue_names, decide_request, plan_connection
from monitor.model import Identity

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("America/New_York")
# A school day at 10:30 (the example policy's hours; the decision for these people and
# platforms is the same at any hour)
WHEN = datetime(2026, 12, 2, 10, 30, tzinfo=TZ).timestamp()

KID, TEEN, TEACHER = "127.0.0.11", "127.0.0.15", "127.0.0.50"
TIKTOK = "www.tiktok.com"  # page host: blocked for students
TIKTOK_API = "api16-normal-c-useast1a.tiktokv.com"  # API host: refused without decrypting
KIDS = "www.youtubekids.com"  # made for children: allowed for everyone
YOUTUBE = "www.youtube.com"  # restricted for teens in school hours
ELSEWHERE = "www.school-site.example"  # not in the catalogue


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    d = tmp_path_factory.mktemp("engine") / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return DistrictLoader(d).load()


def who(district: District, address: str) -> Identity:
    return district.resolver.resolve(address)


@pytest.mark.parametrize(
    ("client", "names", "outcome", "platform", "rule"),
    [
        # the strict name decides, whichever of CONNECT host and SNI it is
        (KID, (TIKTOK, KIDS), "intercept", "tiktok", "under13"),
        (KID, (TIKTOK_API, KIDS), "refuse", "tiktok", "under13"),
        (KID, (TIKTOK, TIKTOK_API, KIDS), "refuse", "tiktok", "under13"),
        (KID, (TIKTOK, ELSEWHERE), "intercept", "tiktok", "under13"),
        (KID, (YOUTUBE, KIDS), "intercept", "youtube", "under13"),
        (TEEN, (YOUTUBE, TIKTOK_API), "refuse", "tiktok", "student-social"),
        # agreeing names, and names that are all allowed, pass through
        (KID, (KIDS, KIDS), "passthrough", "youtube-kids", None),
        (KID, (KIDS, ELSEWHERE), "passthrough", "youtube-kids", None),
        (TEACHER, (TIKTOK, KIDS), "passthrough", "tiktok", None),
        (KID, (ELSEWHERE,), "passthrough", None, None),
    ],
)
def test_the_strictest_name_of_a_connection_decides_in_every_order(
    district: District,
    client: str,
    names: tuple[str, ...],
    outcome: str,
    platform: str | None,
    rule: str | None,
) -> None:
    for order in permutations((*names, None)):  # None: a name the hook did not have
        plan = plan_connection(district, who(district, client), order, WHEN)
        assert plan.outcome == outcome, order
        if outcome != "passthrough":
            assert plan.platform is not None and plan.platform.id == platform, order
        assert (plan.ruling.decision.rule_id if plan.ruling else None) == rule, order
        # every catalogue name is kept for the requests on the connection
        assert {h for _, h in plan.names} == {
            n for n in names if n != ELSEWHERE
        } or outcome == "passthrough"


def test_a_fronted_refusal_records_the_blocked_platform(district: District) -> None:
    plan = plan_connection(district, who(district, KID), (KIDS, TIKTOK_API), WHEN)
    assert plan.outcome == "refuse" and plan.host == TIKTOK_API
    assert plan.platform is not None and plan.platform.id == "tiktok"
    assert plan.ruling is not None and plan.ruling.decision.rule_id == "under13"
    assert plan.ruling.band == "under13" and plan.ruling.school is not None


def decide(district: District, client: str, *hosts: str, method: str = "GET", path: str = "/"):  # type: ignore[no-untyped-def]
    names = catalogue_names(district, hosts)
    return decide_request(district, who(district, client), names, method, path, {}, WHEN)


@pytest.mark.parametrize(
    ("client", "hosts", "action", "platform"),
    [
        # destination (URL or connection) vs Host header: both count, either order
        (KID, (TIKTOK, KIDS), "block", "tiktok"),
        (KID, (KIDS, TIKTOK), "block", "tiktok"),
        (KID, (TIKTOK, ELSEWHERE), "block", "tiktok"),
        (KID, (ELSEWHERE, TIKTOK), "block", "tiktok"),
        (KID, (KIDS, KIDS), "allow", "youtube-kids"),
        # restrict beats allow: the YouTube-Restrict header is not lost behind another name
        (TEEN, (KIDS, YOUTUBE), "restrict", "youtube"),
        (TEEN, (YOUTUBE, TIKTOK), "block", "tiktok"),
        (TEACHER, (TIKTOK, KIDS), "allow", "tiktok"),
    ],
)
def test_a_request_is_decided_on_the_strictest_of_its_names(
    district: District, client: str, hosts: tuple[str, ...], action: str, platform: str
) -> None:
    rr = decide(district, client, *hosts)
    assert rr is not None
    assert (rr.ruling.decision.action, rr.platform.id) == (action, platform)


def test_a_request_without_catalogue_names_is_not_decided(district: District) -> None:
    assert decide(district, KID, ELSEWHERE, "198.51.100.7") is None
    assert catalogue_names(district, ("WWW.TikTok.com.", "www.tiktok.com:443", None)) == (
        (district.catalogue["tiktok"], TIKTOK),
    )


def test_the_activity_is_that_of_the_name_decided(district: District) -> None:
    # a post to TikTok's API path, fronted through a Host of YouTube Kids: TikTok's rules apply
    rr = decide(district, TEEN, KIDS, TIKTOK, method="POST", path="/api/commit/item/post/")
    assert rr is not None and rr.platform.id == "tiktok"
    assert rr.activity == "post" and rr.ruling.decision.action == "block"
