"""Import of platform host lists from v2fly/domain-list-community (MIT) into a pinned snapshot,
``monitor/platforms/data/v2fly.yaml``, which the catalogue merges under its own curation.

The import reads the list files of a checkout (``data/<name>``: ``domain:``, ``full:``,
``regexp:``, ``keyword:``, ``include:`` lines, ``@attr`` attributes, ``&list`` affiliations),
keeps the lists named in :data:`LISTS`, and leaves out what :data:`EXCLUDED` and
:data:`RULE_EXCLUSIONS` name, each with its reason. The snapshot records the source commit.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from monitor.yamlfile import ConfigError, LineDict, load_yaml, validate

REPO = "https://github.com/v2fly/domain-list-community"
LICENCE = "MIT"
COPYRIGHT = "Copyright (c) 2018-2019 V2Ray"

# Our platform id → the v2fly lists it takes, each with an optional filter (a regex the domain
# must contain) for lists that mix the platform with its owner's unrelated services.
LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "tiktok": (("tiktok", ""),),
    "capcut": (("bytedance", "capcut"),),
    "youtube": (("youtube", ""),),
    "facebook": (("facebook", ""),),
    "messenger": (("messenger", ""),),
    "instagram": (("instagram", ""),),
    "threads": (("threads", ""),),
    "whatsapp": (("whatsapp", ""),),
    "twitter": (("twitter", ""),),  # not "x": it includes xAI
    "bluesky": (("bluesky", ""),),
    "mastodon": (("category-social-media-!cn", "mastodon"),),
    "pinterest": (("pinterest", ""),),
    "tumblr": (("tumblr", ""),),
    "linkedin": (("linkedin", ""),),
    "reddit": (("reddit", ""),),
    "quora": (("quora", ""),),
    "4chan": (("4chan", ""),),
    "deviantart": (("deviantart", ""),),
    "snapchat": (("snap", ""),),
    "discord": (("discord", ""),),
    "telegram": (("telegram", ""),),
    "signal": (("signal", ""),),
    "wechat": (("tencent", r"wechat|weixin"),),
    "line": (("line", ""),),
    "viber": (("viber", ""),),
    "clubhouse": (("clubhouse", ""),),
    "likee": (("likee", ""),),
    "vk": (("vk", ""),),
    "weibo": (("sina", r"weibo|wbimg"),),
    "rednote": (("xiaohongshu", ""),),
    "twitch": (("twitch", ""),),
    "kick": (("kick", ""),),
    "roblox": (("roblox", ""),),
    "steam": (("steam", ""),),
    "vrchat": (("vrchat", ""),),
    "poe": (("poe", ""),),
}

# Lists deliberately not imported (the platform's curated entry covers it).
NOT_IMPORTED: dict[str, str] = {
    "kakao": "Kakao's list is the whole group (Daum portal, KakaoBank, Melon, its film and music "
    "companies); KakaoTalk's own hosts are curated",
    "x": "includes xAI (Grok), a different service; the twitter list holds x.com",
    "meta": "the union of Meta's lists plus Oculus and developer sites; the platform lists are "
    "imported one by one",
}

# Rule kinds and attributes left out, with the reason.
RULE_EXCLUSIONS: dict[str, str] = {
    "@ads": "ad and analytics hosts are loaded by other sites' pages: counting them as a visit "
    "to the platform would flag non-social sites",
    "keyword": "substring rules: this catalogue matches on label boundaries only",
    "regexp": "regular expressions are reviewed by hand; the ones needed are curated as "
    "label patterns (catalogue 'patterns')",
}

# Entries of the imported lists that are left out, with the reason.
EXCLUDED: dict[str, str] = {
    "ggpht.com": "Google's user-content CDN (Blogger, Photos, Play); a shared CDN suffix here, "
    "YouTube's own names under it (yt3.ggpht.com) are curated",
    "ggpht.cn": "the China mirror of Google's shared user-content CDN ggpht.com",
    "google.com": "Google's own domain; Classroom, Docs, Drive and Meet are never YouTube",
    "googleapis.com": "Google's shared API domain: only the YouTube API names under it count",
    "workplace.com": "Workplace from Meta, a separate work product, not Facebook",
    "workplaceusecases.com": "Workplace from Meta, a separate work product, not Facebook",
    "redkix.com": "Meta's e-mail product for Workplace, not Facebook",
    "atdmt2.com": "Atlas, Meta's ad server, loaded by other sites",
    "atlasdmt.com": "Atlas, Meta's ad server, loaded by other sites",
    "atlasonepoint.com": "Atlas, Meta's ad server, loaded by other sites",
    "liverail.com": "LiveRail, Meta's video ad exchange, loaded by other sites",
    "liverail.tv": "LiveRail, Meta's video ad exchange, loaded by other sites",
    "expresswifi.com": "Meta's Wi-Fi programme for carriers: connectivity, not Facebook",
    "terragraph.com": "Meta's wireless backhaul technology: connectivity, not Facebook",
    "tellapart.com": "Twitter's former retargeting ads, loaded by shops' pages",
    "bizographics.com": "LinkedIn's ad targeting, loaded by other sites",
    "s-bid.rmp.rakuten.com": "Rakuten's ad bidding host, used by many apps, not only Viber",
    "nhncorp.jp": "the site of LINE's former parent company NHN, not LINE",
    "live-video.net": "Amazon IVS, the live video service of every IVS customer (Twitch and Kick "
    "among them); the platforms' own names under it are curated",
    "valvesoftware.com": "Valve's company site (jobs, hardware), not Steam's community",
    "dota2.com": "a Valve game's site, not Steam's community",
    "dota2.com.cn": "a Valve game's site, not Steam's community",
    "csgo.com.cn": "a Valve game's site, not Steam's community",
    "underlords.com": "a Valve game's site, not Steam's community",
    "playartifact.com": "a Valve game's site, not Steam's community",
    "wechatpay.cn": "WeChat Pay, Tencent's payment service, not the chat",
    "instanttelegram.com": "not Instagram's: a name in the list by its substring",
    "whatsapp-plus.info": "WhatsApp Plus, an unofficial modified client's site, not WhatsApp",
    "whatsapp-plus.me": "WhatsApp Plus, an unofficial modified client's site, not WhatsApp",
    "whatsapp-plus.net": "WhatsApp Plus, an unofficial modified client's site, not WhatsApp",
}

_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+[a-z0-9-]*[a-z-][a-z0-9-]*$"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a v2fly list."""

    kind: str  # domain | full | keyword | regexp
    value: str
    attrs: frozenset[str]
    source: str  # the list file it is written in
    line: int


@dataclass
class ListFile:
    rules: list[Rule] = field(default_factory=list)
    includes: list[tuple[str, frozenset[str], frozenset[str], int]] = field(default_factory=list)


class V2flyImportError(Exception):
    """A checkout that cannot be imported (named file and line)."""


def parse_list(name: str, text: str, lists: dict[str, ListFile]) -> None:
    """Add the rules of list ``name`` (and its ``&list`` affiliations) to ``lists``."""
    own = lists.setdefault(name, ListFile())
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        head, rest = words[0], words[1:]
        attrs = frozenset(w[1:] for w in rest if w.startswith("@"))
        affil = [w[1:] for w in rest if w.startswith("&")]
        if head.startswith("include:"):
            want = frozenset(a for a in attrs if not a.startswith("-"))
            deny = frozenset(a[1:] for a in attrs if a.startswith("-"))
            own.includes.append((head[len("include:") :], want, deny, n))
            continue
        kind, sep, value = head.partition(":")
        if not sep:
            kind, value = "domain", head
        if kind not in ("domain", "full", "keyword", "regexp"):
            raise V2flyImportError(f"data/{name}:{n}: unknown rule type '{kind}'")
        if kind in ("domain", "full"):
            value = value.lower()
        rule = Rule(kind, value, attrs, name, n)
        own.rules.append(rule)
        for target in affil:
            lists.setdefault(target, ListFile()).rules.append(rule)


def read_dir(data_dir: Path) -> dict[str, ListFile]:
    lists: dict[str, ListFile] = {}
    for path in sorted(data_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            parse_list(path.name, path.read_text(encoding="utf-8"), lists)
    return lists


def resolve(lists: dict[str, ListFile], name: str, _seen: tuple[str, ...] = ()) -> list[Rule]:
    """Every rule of list ``name``, its inclusions followed (with their attribute filters)."""
    if name in _seen:
        raise V2flyImportError(f"data/{name}: include cycle {' → '.join((*_seen, name))}")
    if name not in lists:
        raise V2flyImportError(f"data/{_seen[-1] if _seen else name}: no list named '{name}'")
    out = list(lists[name].rules)
    for inc, want, deny, _n in lists[name].includes:
        for r in resolve(lists, inc, (*_seen, name)):
            if want <= r.attrs and not (deny & r.attrs):
                out.append(r)
    return out


@dataclass
class Imported:
    platforms: dict[str, dict[str, list[str]]]
    excluded: list[dict[str, str]]


def build(lists: dict[str, ListFile]) -> Imported:
    """Apply :data:`LISTS` and the exclusions. A domain claimed by two platforms goes to the
    one whose list writes it directly (not through an inclusion); otherwise it is left out."""
    claims: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    excluded: dict[tuple[str, str, str], str] = {}
    for pid, sources in LISTS.items():
        for list_name, only in sources:
            keep = re.compile(only) if only else None
            for r in resolve(lists, list_name):
                entry = f"{r.kind}:{r.value}"
                if keep is not None and keep.search(r.value) is None:
                    continue
                if r.kind in ("keyword", "regexp"):
                    excluded[(list_name, entry, r.kind)] = RULE_EXCLUSIONS[r.kind]
                    continue
                if "ads" in r.attrs:
                    excluded[(list_name, entry, "@ads")] = RULE_EXCLUSIONS["@ads"]
                    continue
                if r.value in EXCLUDED:
                    excluded[(list_name, entry, "entry")] = EXCLUDED[r.value]
                    continue
                if _DOMAIN_RE.match(r.value) is None or "." not in r.value:
                    excluded[(list_name, entry, "entry")] = (
                        "a top-level domain or not a host name: the catalogue claims names of "
                        "two labels or more"
                    )
                    continue
                claims.setdefault((r.kind, r.value), []).append((pid, r.source == list_name))
    out: dict[str, dict[str, list[str]]] = {
        pid: {"lists": [s for s, _ in LISTS[pid]], "suffixes": [], "hosts": []} for pid in LISTS
    }
    for (kind, value), who in sorted(claims.items()):
        pids = {p for p, _ in who}
        if len(pids) > 1:
            direct = {p for p, d in who if d}
            if len(direct) != 1:
                excluded[("*", f"{kind}:{value}", "entry")] = (
                    f"claimed by the lists of {', '.join(sorted(pids))}"
                )
                continue
            pids = direct
        (pid,) = pids
        out[pid]["suffixes" if kind == "domain" else "hosts"].append(value)
    rows = [
        {"list": k[0], "entry": k[1], "reason": reason} for k, reason in sorted(excluded.items())
    ]
    return Imported(platforms=out, excluded=rows)


def checkout_info(root: Path) -> tuple[str, str]:
    """The commit hash and commit date (YYYY-MM-DD) of a git checkout, or ('', '')."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%H %cs"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "", ""
    return (out[0], out[1]) if len(out) == 2 else ("", "")


HEADER = """\
# Generated by `monitor catalog import-v2fly DIR` from v2fly/domain-list-community: do not edit
# by hand; change the lists, filters and exclusions in monitor/platforms/v2fly.py and run the
# import again. The catalogue merges these names under its own curation (catalogue.yaml wins:
# a name it gives to another platform, a shared CDN suffix, or a name it already has is skipped).
#
# Source data: {repo} at commit {commit} ({date}), {licence} licence, {copyright}.
"""


def snapshot_text(imported: Imported, commit: str, date: str, today: str | None = None) -> str:
    """The snapshot file for ``imported``: attribution, then per platform its names."""
    doc: dict[str, Any] = {
        "source": {
            "repo": REPO,
            "commit": commit,
            "date": date,
            "licence": LICENCE,
            "copyright": COPYRIGHT,
            "imported": today or dt.date.today().isoformat(),
        },
        "not_imported": dict(sorted(NOT_IMPORTED.items())),
        "platforms": {
            pid: {k: v for k, v in entry.items() if v}
            for pid, entry in sorted(imported.platforms.items())
        },
        "excluded": imported.excluded,
    }
    body = yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=False)
    return (
        HEADER.format(repo=REPO, commit=commit, date=date, licence=LICENCE, copyright=COPYRIGHT)
        + body
    )


def import_dir(root: Path, commit: str = "", date: str = "") -> tuple[str, Imported]:
    """Read a checkout (or its ``data/`` directory) and return the snapshot text."""
    data = root / "data" if (root / "data").is_dir() else root
    if not data.is_dir():
        raise V2flyImportError(f"{root}: not a directory")
    if not commit or not date:
        c, d = checkout_info(root)
        commit, date = commit or c, date or d
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise V2flyImportError(f"{root}: not a git checkout; give the commit hash with --commit")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise V2flyImportError(f"{root}: give the commit date with --date YYYY-MM-DD")
    missing = sorted({s for v in LISTS.values() for s, _ in v} - {p.name for p in data.iterdir()})
    if missing:
        raise V2flyImportError(f"{data}: lists missing: {', '.join(missing)}")
    imported = build(read_dir(data))
    return snapshot_text(imported, commit, date), imported


# ---------------------------------------------------------------- the snapshot, as read


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repo: str
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    date: str
    licence: str
    copyright: str
    imported: str


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lists: list[str] = Field(default_factory=list)
    suffixes: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


class _Excluded(BaseModel):
    model_config = ConfigDict(extra="forbid")
    list: str
    entry: str
    reason: str


class SnapshotModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: _Source
    not_imported: dict[str, str] = Field(default_factory=dict)
    platforms: dict[str, _Entry]
    excluded: list[_Excluded] = Field(default_factory=list)


def shipped_snapshot() -> Path:
    return Path(str(resources.files("monitor.platforms") / "data" / "v2fly.yaml"))


def load_snapshot(path: str | Path | None = None) -> SnapshotModel:
    """Read and validate a snapshot file (ConfigError names file, line and field)."""
    p = str(path or shipped_snapshot())
    raw = load_yaml(p)
    if not isinstance(raw, LineDict):
        raise ConfigError(p, 1, "", "the v2fly snapshot must be a YAML mapping")
    model = validate(SnapshotModel, raw, p)
    for pid, entry in model.platforms.items():
        for name in (*entry.suffixes, *entry.hosts):
            if _DOMAIN_RE.match(name) is None:
                raise ConfigError(p, None, f"platform '{pid}'", f"'{name}' is not a host name")
    return model
