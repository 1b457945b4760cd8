"""The v2fly import: list syntax, inclusions, exclusions, the snapshot, and its merge under the
curated catalogue (curation wins; shared CDN suffixes and Google's school services never match)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.platforms import catalogue as cat
from monitor.platforms import v2fly
from monitor.platforms.classify import Classifier
from monitor.yamlfile import ConfigError

SHA = "0123456789abcdef0123456789abcdef01234567"


def lists_of(files: dict[str, str]) -> dict[str, v2fly.ListFile]:
    out: dict[str, v2fly.ListFile] = {}
    for name, text in files.items():
        v2fly.parse_list(name, text, out)
    return out


def test_list_syntax() -> None:
    lists = lists_of(
        {
            "alpha": "# a comment\n"
            "alpha.example\n"
            "domain:alpha-cdn.example  # trailing comment\n"
            "full:edge.alpha.example @cn\n"
            "keyword:alpha\n"
            "regexp:^alpha[0-9]+\\.example$\n"
            "ads.alpha.example @ads\n"
            "include:beta @!cn\n"
            "include:gamma @-ads\n",
            "beta": "beta.example @!cn\nbeta-cn.example @cn\n",
            "gamma": "gamma.example\ngamma-ads.example @ads\nshared.example &alpha\n",
        }
    )
    rules = {(r.kind, r.value): r for r in v2fly.resolve(lists, "alpha")}
    assert ("domain", "alpha.example") in rules
    assert rules[("full", "edge.alpha.example")].attrs == frozenset({"cn"})
    assert ("keyword", "alpha") in rules and ("regexp", "^alpha[0-9]+\\.example$") in rules
    # selective inclusion: with the attribute, and without the denied one
    assert ("domain", "beta.example") in rules and ("domain", "beta-cn.example") not in rules
    assert ("domain", "gamma.example") in rules and ("domain", "gamma-ads.example") not in rules
    # an affiliation adds the rule to the named list too
    assert rules[("domain", "shared.example")].source == "gamma"


def test_include_cycle_and_unknown_list_are_refused() -> None:
    lists = lists_of({"a": "include:b\n", "b": "include:a\n"})
    with pytest.raises(v2fly.V2flyImportError, match="include cycle"):
        v2fly.resolve(lists, "a")
    with pytest.raises(v2fly.V2flyImportError, match="no list named 'c'"):
        v2fly.resolve(lists_of({"a": "include:c\n"}), "a")
    with pytest.raises(v2fly.V2flyImportError, match=r"data/a:2: unknown rule type 'suffix'"):
        lists_of({"a": "a.example\nsuffix:b.example\n"})


def test_build_applies_exclusions_and_resolves_double_claims(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(v2fly, "LISTS", {"alpha": (("alpha", ""),), "beta": (("beta", "beta"),)})
    monkeypatch.setattr(v2fly, "EXCLUDED", {"generic.example": "a generic name"})
    lists = lists_of(
        {
            "alpha": "alpha.example\nfull:edge.alpha.example\nkeyword:alpha\nregexp:^a$\n"
            "ads.alpha.example @ads\ngeneric.example\nalpha\ninclude:beta\n",
            "beta": "beta.example\nbetacdn.example\nunrelated.example\n",
        }
    )
    got = v2fly.build(lists)
    # alpha includes beta: what beta's filter leaves out stays alpha's
    assert got.platforms["alpha"]["suffixes"] == ["alpha.example", "unrelated.example"]
    assert got.platforms["alpha"]["hosts"] == ["edge.alpha.example"]
    # names both claim are written in beta's own list: beta keeps them
    assert got.platforms["beta"]["suffixes"] == ["beta.example", "betacdn.example"]
    reasons = {row["entry"]: row["reason"] for row in got.excluded}
    assert "substring" in reasons["keyword:alpha"]
    assert "reviewed by hand" in reasons["regexp:^a$"]
    assert "ad and analytics" in reasons["domain:ads.alpha.example"]
    assert reasons["domain:generic.example"] == "a generic name"
    assert "two labels" in reasons["domain:alpha"]


def write_checkout(root: Path, files: dict[str, str]) -> Path:
    (root / "data").mkdir(parents=True)
    for name, text in files.items():
        (root / "data" / name).write_text(text)
    return root


def test_import_dir_writes_a_snapshot_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(v2fly, "LISTS", {"alpha": (("alpha", ""),)})
    root = write_checkout(tmp_path / "dlc", {"alpha": "alpha.example\nfull:x.alpha.example\n"})
    text, _ = v2fly.import_dir(root, SHA, "2026-08-19")
    assert f"at commit {SHA} (2026-08-19), MIT licence" in text
    snap = tmp_path / "v2fly.yaml"
    snap.write_text(text)
    model = v2fly.load_snapshot(snap)
    assert model.source.commit == SHA and model.source.licence == "MIT"
    assert model.platforms["alpha"].suffixes == ["alpha.example"]
    # without git and without --commit the import refuses rather than guess
    with pytest.raises(v2fly.V2flyImportError, match="--commit"):
        v2fly.import_dir(root)
    with pytest.raises(v2fly.V2flyImportError, match="lists missing: alpha"):
        v2fly.import_dir(
            write_checkout(tmp_path / "empty", {"other": "o.example\n"}), SHA, "2026-08-19"
        )


def test_a_bad_snapshot_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "v2fly.yaml"
    p.write_text(
        "source: {repo: r, commit: nothex, date: d, licence: MIT, copyright: c, imported: i}\n"
        "platforms: {}\n"
    )
    with pytest.raises(ConfigError, match=r"v2fly.yaml:1.*commit"):
        v2fly.load_snapshot(p)
    p.write_text(
        f"source: {{repo: r, commit: {SHA}, date: d, licence: MIT, copyright: c, imported: i}}\n"
        "platforms: {alpha: {suffixes: ['bad name']}}\n"
    )
    with pytest.raises(ConfigError, match="platform 'alpha'.*'bad name' is not a host name"):
        v2fly.load_snapshot(p)


CURATED = """\
shared_cdn_suffixes: [cdn-shared.example]
platforms:
  - {id: alpha, name: Alpha, owner: A, category: social, min_age: 13,
     suffixes: [alpha.example], hosts: [edge.cdn-shared.example]}
  - {id: beta, name: Beta, owner: B, category: social, min_age: 13,
     suffixes: [beta.example], hosts: [beta.alpha-cdn.example]}
"""

SNAPSHOT = f"""\
source: {{repo: r, commit: {SHA}, date: '2026-08-19', licence: MIT, copyright: c, imported: i}}
platforms:
  alpha:
    suffixes: [alpha.example, alpha-cdn.example, cdn-shared.example, beta.example,
               edge.cdn-shared.example, alpha.cdn-shared.example]
    hosts: [one.alpha-two.example]
  gamma:
    suffixes: [gamma.example]
"""


def test_merge_keeps_the_curation(tmp_path: Path) -> None:
    shipped = tmp_path / "c.yaml"
    shipped.write_text(CURATED)
    snap = tmp_path / "v.yaml"
    snap.write_text(SNAPSHOT)
    c = cat.load(shipped=shipped, imported=snap)
    cls = Classifier(c)
    assert c.imported == {
        "alpha-cdn.example": "alpha",
        "alpha.cdn-shared.example": "alpha",
        "one.alpha-two.example": "alpha",
    }
    assert c.imported_commit == SHA and str(snap) in c.sources
    assert cls("x.alpha-cdn.example") == "alpha"
    assert cls("beta.alpha-cdn.example") == "beta"  # the curated exact host wins
    assert cls("www.beta.example") == "beta"  # a curated suffix of another platform
    assert cls("x.cdn-shared.example") is None  # the shared CDN suffix itself: never
    assert cls("a.edge.cdn-shared.example") is None  # a curated exact host stays exact
    assert cls("a.alpha.cdn-shared.example") == "alpha"  # its own name under the CDN suffix
    assert c.get("gamma") is None  # not a curated platform: not added
    # without the snapshot
    assert Classifier(cat.load(shipped=shipped, imported=False))("x.alpha-cdn.example") is None


# ---------------------------------------------------------------- the shipped snapshot


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier(cat.load())


def test_shipped_snapshot_is_attributed_and_merged() -> None:
    model = v2fly.load_snapshot()
    assert re.fullmatch(r"[0-9a-f]{40}", model.source.commit)
    assert model.source.repo == "https://github.com/v2fly/domain-list-community"
    assert model.source.licence == "MIT" and "V2Ray" in model.source.copyright
    text = v2fly.shipped_snapshot().read_text()
    assert model.source.commit in text.split("\n", 8)[5]  # in the header comment too
    c = cat.load()
    assert c.imported_commit == model.source.commit
    assert len(c.imported) > 500
    # every exclusion has a reason
    assert all(row.reason for row in model.excluded)
    assert set(v2fly.EXCLUDED) >= {"ggpht.com", "google.com", "live-video.net"}


@pytest.mark.parametrize(
    ("host", "platform"),
    [
        # regional and country domains
        ("youtube.kr", "youtube"),
        ("www.youtube.co.jp", "youtube"),
        ("youtube.com.tr", "youtube"),
        ("pinterest.jp", "pinterest"),
        ("roblox.co.uk", "roblox"),
        # alternate brands and defensive domains
        ("facebok.com", "facebook"),
        ("instagram-brand.com", "instagram"),
        ("youtubego.com", "youtube"),
        ("discord.gift", "discord"),
        ("telegram.dog", "telegram"),
        # infrastructure and ingest
        ("cdn.discordapp.net", "discord"),
        ("video-edge-abc.jtvnw.net", "twitch"),
        ("d1g1f25tn8m2e6.cloudfront.net", "twitch"),
        ("twitter.map.fastly.net", "twitter"),
        ("www.pinterest.com.edgekey.net", "pinterest"),
        # Instagram's and WhatsApp's names on Facebook's CDN
        ("instagram.fxyz1-1.fna.fbcdn.net", "instagram"),
        ("instagram-shv-01-ams2.fbcdn.net", "instagram"),
        ("whatsapp-cdn-shv-01-arn2.fbcdn.net", "whatsapp"),
        ("scontent.fxyz1-1.fna.fbcdn.net", "facebook"),
        ("fbcdn-video-a-a.akamaihd.net", "facebook"),
        # the curation wins over the lists
        ("youtubekids.com", "youtube-kids"),
        ("edge-chat.facebook.com", "messenger"),
        ("poe.com", "poe"),
    ],
)
def test_shipped_catalogue_attributes(shipped: Classifier, host: str, platform: str) -> None:
    assert shipped(host) == platform


@pytest.mark.parametrize(
    "host",
    [
        "classroom.google.com",
        "docs.google.com",
        "drive.google.com",
        "meet.google.com",
        "accounts.google.com",
        "google.com",
        "lh3.ggpht.com",
        "storage.googleapis.com",
        "workplace.com",
        "analytics-partner.example",
        "someapp.appspot.com",
        "random-name.akamaized.net",
        "other.live-video.net",
        "instanttelegram.com",
        "telegram.org.evil.example",
        "facebook.com.evil.example",
        "x.youtube.com.example",
    ],
)
def test_shipped_catalogue_never_attributes(shipped: Classifier, host: str) -> None:
    assert shipped(host) is None


def test_no_shared_cdn_suffix_matches(shipped: Classifier) -> None:
    c = shipped.catalogue
    assert [s for s in sorted(c.shared_cdn_suffixes) if shipped(s)] == []
    assert [s for s in sorted(c.shared_cdn_suffixes) if shipped("www." + s)] == []
