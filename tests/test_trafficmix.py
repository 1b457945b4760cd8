"""bench/trafficmix.py, the school-day traffic mix of the capacity benchmark: what it generates,
not how fast. Deterministic for a seed, shares that add up, personas that are the example
district's demo people, valid host names, and catalogue membership that agrees with the
catalogue's own Classifier (which is what a PAC file or DNS-driven redirect follows)."""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path

import pytest

from monitor.district import DistrictLoader
from monitor.platforms.classify import Classifier, normalise_host
from monitor.rules.decide import group_band

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import trafficmix as tm  # noqa: E402

EXAMPLE = ROOT / "examples" / "district"
# what each persona must be in the district (group, band) on the example's generation date
EXPECTED = {
    "under13": ("student", "under13"),
    "teen": ("student", "teen"),
    "staff": ("staff", None),
    "unknown": ("unknown", "under13"),
}


@pytest.fixture(scope="module")
def mixes() -> dict[bool, list[tm.Connection]]:
    return {h: tm.generate(2000, seed=7, in_hours=h) for h in (True, False)}


def test_the_same_seed_gives_the_same_mix() -> None:
    assert tm.generate(800, seed=3) == tm.generate(800, seed=3)
    assert tm.generate(800, seed=3, in_hours=False) == tm.generate(800, seed=3, in_hours=False)
    assert tm.generate(800, seed=3) != tm.generate(800, seed=4)
    assert tm.generate(800, seed=3) != tm.generate(800, seed=3, in_hours=False)
    # a longer mix starts like a shorter one of the same seed
    assert tm.generate(1000, seed=3)[:800] == tm.generate(800, seed=3)


def test_connections_are_numbered_in_order(mixes: dict[bool, list[tm.Connection]]) -> None:
    for mix in mixes.values():
        assert [c.index for c in mix] == list(range(len(mix)))


def test_weight_tables_add_up() -> None:
    for hours, weights in tm.PERSONA_WEIGHTS.items():
        assert math.isclose(sum(weights.values()), 100), hours
        assert set(weights) == {p.name for p in tm.PERSONAS}
    for key, weights in tm.CATEGORY_WEIGHTS.items():
        assert math.isclose(sum(weights.values()), 100), key
        assert all(w >= 0 for w in weights.values()), key
        for category in weights:
            assert category == "social" or tm.CATEGORY_HOSTS[category], category
    assert {(p.name, h) for p in tm.PERSONAS for h in (True, False)} == set(tm.CATEGORY_WEIGHTS)
    for pid, (weight, entries) in tm.SOCIAL.items():
        assert weight > 0 and entries, pid
        assert all(e.platform == pid for e in entries), pid


def test_shares_add_up(mixes: dict[bool, list[tm.Connection]], classifier: Classifier) -> None:
    for mix in mixes.values():
        shares = tm.shares(mix, classifier)
        assert set(shares) == {"persona", "category", "role", "pac"}
        for group, values in shares.items():
            assert math.isclose(sum(values.values()), 1.0), group
            assert all(0 <= v <= 1 for v in values.values()), group


def test_the_mix_follows_its_weights(mixes: dict[bool, list[tm.Connection]]) -> None:
    """2000 draws land near the persona weights (binomial sd ~1.1 points; 5 points slack)."""
    for hours, mix in mixes.items():
        got = tm.shares(mix)["persona"]
        for name, weight in tm.PERSONA_WEIGHTS[hours].items():
            assert abs(got.get(name, 0) - weight / 100) < 0.05, (hours, name)


def test_every_persona_and_category_occurs(mixes: dict[bool, list[tm.Connection]]) -> None:
    for hours, mix in mixes.items():
        assert {c.persona for c in mix} == {p.name for p in tm.PERSONAS}
        wanted = {
            cat for (_, h), w in tm.CATEGORY_WEIGHTS.items() if h == hours for cat in w if w[cat]
        }
        assert {c.category for c in mix} == wanted


def test_personas_are_the_example_districts_demo_people(
    mixes: dict[bool, list[tm.Connection]],
) -> None:
    district = DistrictLoader(str(EXAMPLE)).load()
    day = date.fromisoformat((EXAMPLE / "GENERATED_ON").read_text().strip())
    for persona in tm.PERSONAS:
        assert persona.addresses, persona.name
        for address in persona.addresses:
            assert address.startswith("127."), address
            who = district.resolver.resolve(address, None)
            assert group_band(district.policy, who.person, day) == EXPECTED[persona.name], (
                persona.name,
                address,
            )
    for mix in mixes.values():
        for c in mix:
            assert c.client in tm.PERSONA[c.persona].addresses


def test_hosts_are_valid_names() -> None:
    hosts = tm.all_hosts()
    assert len(hosts) == len(set(hosts)) > 100
    for host in hosts:
        assert tm.valid_hostname(host), host
        assert normalise_host(host) == host, host
    for bad in ("", "localhost", "-a.example", "a-.example", "a..b", "A.example", "x" * 64 + ".e"):
        assert not tm.valid_hostname(bad), bad


def test_paths_are_origin_form() -> None:
    for e in tm.all_entries():
        assert e.path.startswith("/") and " " not in e.path, e


def test_catalogue_membership_agrees_with_the_classifier(
    mixes: dict[bool, list[tm.Connection]], classifier: Classifier
) -> None:
    for e in tm.all_entries():
        assert classifier(e.host) == e.platform, e.host
        assert (e.role == "web") == (e.platform is None), e.host
    for mix in mixes.values():
        for c in mix:
            assert classifier(c.host) == c.platform, c.host
        through = tm.through_pac(mix, classifier)
        assert through == [c for c in mix if c.catalogue]
        assert tm.shares(mix, classifier)["pac"]["proxy"] == len(through) / len(mix)
        # a realistic share of platform hosts: some, and a minority
        assert 0.05 < len(through) / len(mix) < 0.5


def test_page_hosts_are_the_catalogues_page_hosts(classifier: Classifier) -> None:
    """The mix's page, API and media labels agree with the catalogue's page hosts (the hosts
    that get a block page instead of a refusal)."""
    for e in tm.all_entries():
        if e.platform is None:
            continue
        platform = classifier.platform_of(e.host)
        assert platform is not None
        assert platform.is_page_host(e.host) == (e.role == "page"), e.host


def test_media_host_matcher_follows_the_catalogue(catalogue: object) -> None:
    count, is_media = tm.media_host_matcher(catalogue)
    if count == 0:
        assert is_media is None
        return
    assert callable(is_media)
    assert not is_media("docs.google.com")
