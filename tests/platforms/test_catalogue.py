"""The catalogue loader: validation errors name file, line, entry and field; merging."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.platforms import catalogue as cat
from monitor.yamlfile import ConfigError

BASE = """\
version: 1
shared_cdn_suffixes: [cdn-shared.example]
platforms:
  - id: alpha
    name: Alpha
    owner: Alpha Inc
    category: social
    min_age: 13
    suffixes: [alpha.example]
    hosts: [alpha-media.cdn-shared.example]
    page_hosts: [www.alpha.example, '*.blogs.alpha.example']
    activities:
      - {activity: post, method: POST, path: '^/api/post'}
  - id: kids
    name: Kids
    owner: Kids Co
    category: kids
    min_age: 5
    designed_for_children: true
    suffixes: [kids.example]
    page_hosts: [kids.example]
bypass:
  - id: doh-one
    name: One DoH
    owner: One
    bypass_kind: doh
    hosts: [doh.one.example]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def test_loads_platforms_and_bypass(base: Path) -> None:
    c = cat.load(shipped=base)
    assert sorted(c.ids) == ["alpha", "doh-one", "kids"]
    assert c["doh-one"].category == "bypass" and c["doh-one"].is_bypass
    assert c["kids"].designed_for_children is True
    alpha = c["alpha"]
    assert alpha.is_page_host("www.alpha.example")
    assert alpha.is_page_host("x.blogs.alpha.example")
    assert not alpha.is_page_host("api.alpha.example")
    assert alpha.activities[0].matches("POST", "api.alpha.example", "/api/post/1", "")
    assert not alpha.activities[0].matches("GET", "api.alpha.example", "/api/post/1", "")


def test_shipped_catalogue_loads() -> None:
    c = cat.load()
    assert len(c) > 0
    assert all(p.page_hosts or p.page_suffixes or p.is_bypass for p in c)


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        # unknown key in an entry
        (
            "    min_age: 13\n",
            "    min_age: 13\n    colour: blue\n",
            ["base.yaml:9", "entry 'alpha'", "field 'colour'", "unknown key"],
        ),
        # bad regular expression
        (
            "path: '^/api/post'",
            "path: '^/api/(post'",
            ["base.yaml:13", "entry 'alpha'", "activities[0].path", "bad regular expression"],
        ),
        # unknown activity
        (
            "{activity: post,",
            "{activity: posting,",
            ["base.yaml:13", "entry 'alpha'", "activities[0].activity"],
        ),
        # wrong category
        ("category: kids", "category: toys", ["base.yaml:17", "entry 'kids'", "field 'category'"]),
        # a host claimed by two platforms
        (
            "suffixes: [kids.example]",
            "suffixes: [kids.example]\n    hosts: [alpha-media.cdn-shared.example]",
            ["entry 'kids'", "field 'hosts'", "already claimed by 'alpha'"],
        ),
        # a suffix claimed by two platforms
        (
            "suffixes: [kids.example]",
            "suffixes: [kids.example, alpha.example]",
            ["entry 'kids'", "field 'suffixes'", "'alpha.example' is already claimed by 'alpha'"],
        ),
        # a shared CDN suffix as a platform's suffix (a name below one is the platform's own)
        (
            "suffixes: [kids.example]",
            "suffixes: [kids.example, cdn-shared.example]",
            ["entry 'kids'", "is a shared CDN suffix"],
        ),
        # an IP address as a host
        (
            "hosts: [doh.one.example]",
            "hosts: [192.0.2.1]",
            ["entry 'doh-one'", "field 'hosts'", "'192.0.2.1' is an IP address"],
        ),
        # a non-ASCII host must be in IDNA form
        ("suffixes: [alpha.example]", "suffixes: [alphä.example]", ["entry 'alpha'", "IDNA"]),
        # a duplicate id
        ("  - id: kids\n", "  - id: alpha\n", ["base.yaml:14", "id 'alpha' is already defined at"]),
        # bypass without a kind
        ("    bypass_kind: doh\n", "", ["entry 'doh-one'", "bypass_kind"]),
        # missing required field
        ("    owner: Kids Co\n", "", ["entry 'kids'", "field 'owner'", "required"]),
        # bad YAML
        ("    name: Alpha\n", "    name: [Alpha\n", ["base.yaml:", "invalid YAML"]),
        # duplicate key
        (
            "    min_age: 13\n",
            "    min_age: 13\n    min_age: 14\n",
            ["base.yaml:9", "duplicate key"],
        ),
        # top-level unknown key
        (
            "version: 1\n",
            "version: 1\nplatfroms: []\n",
            ["base.yaml:2", "field 'platfroms'", "unknown key"],
        ),
    ],
)
def test_bad_catalogue_names_file_line_entry_field(
    tmp_path: Path, old: str, new: str, expect: list[str]
) -> None:
    assert old in BASE
    p = write(tmp_path, "base.yaml", BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        cat.load(shipped=p)
    msg = str(info.value)
    for part in expect:
        assert part in msg, (part, msg)
    assert "\n" not in msg  # one message, one line


def test_district_file_extends_and_adds(base: Path, tmp_path: Path) -> None:
    extra = write(
        tmp_path,
        "district.yaml",
        """\
        platforms:
          - id: alpha
            hosts: [alpha-extra.cdn-shared.example]
            min_age: 16
            activities:
              - {activity: upload, method: POST, path: '^/api/post/media'}
          - id: localchat
            name: Local Chat
            owner: Somebody
            category: messaging
            min_age: 13
            suffixes: [localchat.example]
            page_hosts: [localchat.example]
        """,
    )
    c = cat.load([extra], shipped=base)
    alpha = c["alpha"]
    assert alpha.min_age == 16
    assert alpha.hosts == ("alpha-media.cdn-shared.example", "alpha-extra.cdn-shared.example")
    # district rules come first and win
    assert [r.activity for r in alpha.activities] == ["upload", "post"]
    assert alpha.name == "Alpha"  # not named, kept
    assert "localchat" in c.ids
    assert c.sources[-1] == str(extra)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (
            "platforms:\n  - id: alpha\n    colour: red\n",
            ["district.yaml:3", "entry 'alpha'", "field 'colour'"],
        ),
        (
            "platforms:\n  - id: newone\n    name: New\n",
            ["district.yaml:2", "entry 'newone'", "field 'owner'"],
        ),
        (
            "platforms:\n  - id: beta\n    name: B\n    owner: B\n    category: social\n"
            "    suffixes: [alpha.example]\n    page_hosts: [alpha.example]\n",
            ["district.yaml", "entry 'beta'", "already claimed by 'alpha'"],
        ),
        ("platforms: {}\n", ["district.yaml", "platforms"]),
        ("- just a list\n", ["district.yaml:1", "mapping"]),
    ],
)
def test_district_file_errors(base: Path, tmp_path: Path, text: str, expect: list[str]) -> None:
    extra = write(tmp_path, "district.yaml", text)
    with pytest.raises(ConfigError) as info:
        cat.load([extra], shipped=base)
    for part in expect:
        assert part in str(info.value), (part, str(info.value))


def test_missing_and_binary_files(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read file"):
        cat.load([tmp_path / "nope.yaml"], shipped=base)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="bin.yaml: not UTF-8"):
        cat.load([binary], shipped=base)


def test_empty_district_file_is_fine(base: Path, tmp_path: Path) -> None:
    extra = write(tmp_path, "empty.yaml", "")
    assert cat.load([extra], shipped=base).ids == cat.load(shipped=base).ids


def test_media_hosts_load_and_take_their_role(base: Path, tmp_path: Path) -> None:
    text = BASE.replace(
        "    page_hosts: [www.alpha.example, '*.blogs.alpha.example']\n",
        "    page_hosts: [www.alpha.example, '*.blogs.alpha.example']\n"
        "    media_hosts: [alpha-media.cdn-shared.example, '*.img.alpha.example',\n"
        "                  '*.media.blogs.alpha.example']\n",
    )
    alpha = cat.load(shipped=write(tmp_path, "m.yaml", text))["alpha"]
    assert alpha.host_role("alpha-media.cdn-shared.example") == "media"
    assert alpha.host_role("a1.img.alpha.example") == "media"
    assert alpha.host_role("img.alpha.example") == "api"  # '*.x' means the subdomains of x
    assert alpha.host_role("x.blogs.alpha.example") == "page"
    # the longer wildcard wins: a media name inside the page wildcard
    assert alpha.host_role("v.media.blogs.alpha.example") == "media"
    assert not alpha.is_page_host("v.media.blogs.alpha.example")
    assert alpha.host_role("api.alpha.example") == "api"
    assert alpha.media_activities("a1.img.alpha.example") == {"view", "embed", "stream"}
    # a district file adds media hosts to a shipped platform
    extra = write(
        tmp_path,
        "district.yaml",
        "platforms:\n  - id: alpha\n    media_hosts: [static.alpha.example]\n",
    )
    c = cat.load([extra], shipped=base)
    assert c["alpha"].is_media_host("static.alpha.example")


@pytest.mark.parametrize(
    ("media", "expect"),
    [
        # a name of another platform, of none, under a shared CDN, a page host, bad syntax
        ("[www.kids.example]", ["entry 'alpha'", "field 'media_hosts'", "belongs to 'kids'"]),
        ("[cdn.elsewhere.example]", ["field 'media_hosts'", "none of this platform's hosts"]),
        ("[other.cdn-shared.example]", ["none of this platform's hosts"]),
        ("['*.cdn-shared.example']", ["none of this platform's hosts"]),
        ("[www.alpha.example]", ["both as a page host and as a media host"]),
        ("['*.blogs.alpha.example']", ["both as a page host and as a media host"]),
        ("['img..alpha.example']", ["field 'media_hosts'", "invalid label"]),
        ("[198.51.100.7]", ["field 'media_hosts'", "IP address"]),
    ],
)
def test_bad_media_hosts_name_entry_and_field(
    tmp_path: Path, media: str, expect: list[str]
) -> None:
    text = BASE.replace(
        "    page_hosts: [www.alpha.example, '*.blogs.alpha.example']\n",
        f"    page_hosts: [www.alpha.example, '*.blogs.alpha.example']\n    media_hosts: {media}\n",
    )
    with pytest.raises(ConfigError) as info:
        cat.load(shipped=write(tmp_path, "m.yaml", text))
    for part in expect:
        assert part in str(info.value), (part, str(info.value))


def test_a_district_media_host_error_names_the_district_file(base: Path, tmp_path: Path) -> None:
    extra = write(
        tmp_path, "district.yaml", "platforms:\n  - id: alpha\n    media_hosts: [kids.example]\n"
    )
    with pytest.raises(ConfigError) as info:
        cat.load([extra], shipped=base)
    assert "district.yaml:2" in str(info.value) and "belongs to 'kids'" in str(info.value)
