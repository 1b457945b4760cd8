"""Activity on real API traffic: endpoints of public client libraries and API docs, sent as apps
send them (no Fetch Metadata), classified with the shipped catalogue; and the strict default."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor.platforms.activity import request_activity
from monitor.platforms.catalogue import ACTIVITIES, METHODS, WRITE_METHODS, Catalogue, Platform
from monitor.platforms.classify import Classifier

DATA = Path(__file__).parent / "data" / "api_endpoints.yaml"
# what a request that changes something is; a write may never come out as a view
WRITES = frozenset({"post", "upload", "message", "login", "live"})
PLATFORMS_REQUIRED = {
    "discord", "reddit", "instagram", "facebook", "twitter", "youtube", "mastodon", "bluesky",
    "pinterest", "tumblr", "tiktok",
}  # fmt: skip


class Endpoint(NamedTuple):
    platform: str
    method: str
    host: str
    path: str
    activity: str
    source: str
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.host}{self.path}"


def load_endpoints() -> list[Endpoint]:
    rows = yaml.safe_load(DATA.read_text())["endpoints"]
    out = []
    for i, row in enumerate(rows):
        assert isinstance(row, list) and len(row) in (6, 7), f"row {i}: {row!r}"
        headers = row[6] if len(row) == 7 else {}
        assert isinstance(headers, dict), f"row {i}: headers must be a mapping"
        pid, method, host, path, activity, source = (str(x) for x in row[:6])
        out.append(Endpoint(pid, method, host, path, activity, source, headers))
    return out


ENDPOINTS = load_endpoints()


def classify(classifier: Classifier, e: Endpoint) -> str:
    p = classifier.platform_of(e.host)
    assert p is not None, f"{e.host} is in no catalogue entry"
    return request_activity(p, e.method, e.host, e.path, e.headers, classifier.platform_of)


def test_the_table_is_broad_and_well_formed() -> None:
    assert len(ENDPOINTS) >= 200
    platforms = Counter(e.platform for e in ENDPOINTS)
    assert PLATFORMS_REQUIRED <= set(platforms)
    assert sum(1 for n in platforms.values() if n >= 10) >= 10
    kinds = Counter(e.activity for e in ENDPOINTS)
    assert set(kinds) == set(ACTIVITIES) - {"stream", "embed"}  # API traffic, not video or embeds
    seen: set[tuple[str, str, str, str]] = set()
    for e in ENDPOINTS:
        assert e.method in METHODS - {"*"}, e
        assert e.activity in ACTIVITIES, e
        assert e.path.startswith("/") and "?" not in e.path, e
        assert len(e.source) > 10, e
        assert not any(h.lower().startswith("sec-fetch-") for h in e.headers), e
        key = (e.method, e.host, e.path, repr(sorted(e.headers.items())))
        assert key not in seen, f"duplicate row {e}"
        seen.add(key)


@pytest.mark.parametrize("e", ENDPOINTS, ids=str)
def test_hosts_belong_to_the_platform_named(classifier: Classifier, e: Endpoint) -> None:
    p = classifier.platform_of(e.host)
    assert p is not None and p.id == e.platform


def test_activity_on_real_endpoints(
    classifier: Classifier, capsys: pytest.CaptureFixture[str]
) -> None:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    writes_as_view = []
    for e in ENDPOINTS:
        got = classify(classifier, e)
        total[e.platform] += 1
        right[e.platform] += got == e.activity
        if got != e.activity:
            misses.append(f"{e}: {got}, expected {e.activity}")
        if e.activity in WRITES and got == "view":
            writes_as_view.append(str(e))
    overall = sum(right.values()) / sum(total.values())
    with capsys.disabled():
        print(f"\nactivity on {sum(total.values())} real API requests: {overall:.3f}")
        for pid in sorted(total):
            print(f"  {pid:<10} {right[pid]:>3}/{total[pid]:<3} {right[pid] / total[pid]:.2f}")
    assert not writes_as_view
    assert overall >= 0.95, "\n".join(misses)


def test_every_read_only_entry_is_a_documented_read(catalogue: Catalogue) -> None:
    """Each read-only entry of the shipped catalogue lets through a read of the table, and no
    write of the table is one of them."""
    used: set[tuple[str, int]] = set()
    for e in ENDPOINTS:
        if e.method not in WRITE_METHODS:
            continue
        p = catalogue[e.platform]
        op = e.headers.get("X-FB-Friendly-Name", "")
        ct = e.headers.get("Content-Type", "")
        for i, rule in enumerate(p.read_only):
            if rule.matches(e.method, e.host, e.path, ct, op):
                assert e.activity == "view", f"{e} is a write listed as read-only"
                used.add((p.id, i))
    unused = [
        (p.id, i) for p in catalogue for i in range(len(p.read_only)) if (p.id, i) not in used
    ]
    assert not unused


def test_read_only_hosts_belong_to_their_platform(
    catalogue: Catalogue, classifier: Classifier
) -> None:
    for p in catalogue:
        for rule in p.read_only:
            for h in rule.hosts:
                owner = classifier.platform_of(h)
                assert owner is not None and owner.id == p.id, (p.id, h)


def test_shipped_platforms_default_to_post(catalogue: Catalogue) -> None:
    assert {p.unknown_write for p in catalogue} == {"post"}


# ---------------------------------------------------------------- the strict default, as a property

_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
_SEGMENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:%", max_size=16
)
_HEADERS = st.one_of(
    st.just({}),
    st.sampled_from(
        [
            {"Content-Type": "application/json"},
            {"Content-Type": "application/x-www-form-urlencoded"},
            {"Content-Type": "multipart/form-data; boundary=x"},
        ]
    ),
    st.builds(lambda op: {"X-FB-Friendly-Name": op}, _SEGMENT),
)


def _names(catalogue: Catalogue) -> list[str]:
    return sorted(
        {h for p in catalogue if not p.is_bypass for h in (*p.hosts, *p.suffixes)}
        | {"www." + s for p in catalogue if not p.is_bypass for s in p.suffixes}
    )


@given(data=st.data())
def test_an_unknown_write_is_never_a_view(classifier: Classifier, data: st.DataObject) -> None:
    """A write to any platform host with any path is a view only when the platform lists it as
    read-only, whatever rules the catalogue has."""
    name = data.draw(st.sampled_from(_names(classifier.catalogue)), label="name")
    host = data.draw(st.one_of(st.just(name), _LABEL.map(lambda x: f"{x}.{name}")), label="host")
    p: Platform | None = classifier.platform_of(host)
    if p is None or p.is_bypass:
        return  # a host under a shared CDN suffix that only an exact name claims
    method = data.draw(st.sampled_from(sorted(WRITE_METHODS)), label="method")
    path = "/" + "/".join(data.draw(st.lists(_SEGMENT, max_size=6), label="segments"))
    headers = data.draw(_HEADERS, label="headers")
    got = request_activity(p, method, host, path, headers, classifier.platform_of)
    if got == "view":
        ct = headers.get("Content-Type", "")
        op = headers.get("X-FB-Friendly-Name", "")
        assert any(r.matches(method, host, path, ct, op) for r in p.read_only), (host, path)
    else:
        assert got in WRITES


_PATHS = st.one_of(
    st.sampled_from([e.path for e in ENDPOINTS]),
    st.lists(_SEGMENT, max_size=6).map(lambda s: "/" + "/".join(s)),
    st.sampled_from([e.path for e in ENDPOINTS]).flatmap(
        lambda p: _SEGMENT.map(lambda x: p + x)  # a known path with something after it
    ),
)


@given(data=st.data())
def test_the_joined_regex_finds_the_rule_the_rules_in_order_find(
    classifier: Classifier, data: st.DataObject
) -> None:
    """Each (method, host)'s rules are joined into one regex; the rule it finds is the first
    one that matches when the rules are tried one by one."""
    e = data.draw(st.sampled_from(ENDPOINTS), label="endpoint")
    method = data.draw(st.sampled_from(sorted(METHODS - {"*"})), label="method")
    path = data.draw(_PATHS, label="path")
    headers = data.draw(_HEADERS, label="headers")
    ct = headers.get("Content-Type", "")
    op = headers.get("X-FB-Friendly-Name", "")
    p = classifier.catalogue[e.platform]
    for rules in p.rules_for(method, e.host):
        expected = next((r for r in rules.rules if r.matches_request(path, ct, op)), None)
        assert rules.first(path, ct, op) is expected


def test_every_rule_set_of_the_table_is_joined(catalogue: Catalogue) -> None:
    joined = [
        rules.combined is not None
        for e in ENDPOINTS
        for rules in catalogue[e.platform].rules_for(e.method, e.host)
        if len(rules.rules) > 1
    ]
    assert joined and all(joined)
