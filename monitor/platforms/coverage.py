"""What the catalogue makes of the host names of a DNS log or a list: per platform how many it
attributes, and the unknown names that look like a platform's infrastructure.

Reads one host name per line, dnsmasq query logs (``query[A] name from …``, ``reply name is
<CNAME>`` chains), BIND query logs (``query: name IN A``) and CNAME records (``name CNAME
target``). The tables are pandas DataFrames.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from monitor.platforms.catalogue import Catalogue
from monitor.platforms.classify import Classifier, normalise_host

_DNSMASQ = re.compile(r"\b(query\[\w+\]|reply|cached|forwarded)\s+(\S+)\s+(?:from|is|to)\s+(\S+)")
_BIND = re.compile(r"\bquery:\s+(\S+)\s+IN\s")
_CNAME = re.compile(r"^(\S+)\s+(?:\d+\s+)?(?:IN\s+)?CNAME\s+(\S+)\s*$", re.I)
_DIGITS = re.compile(r"[0-9]+")
_WORDS = re.compile(r"[.-]")

# Words too common to say a name is a platform's ("signal", "threads", "line", …): a platform
# token must be at least _TOKEN_MIN characters and not one of these.
_TOKEN_MIN = 6
_GENERIC_TOKENS = frozenset(
    {"signal", "threads", "messenger", "clubhouse", "musical", "monkey", "groups", "internet"}
)
# Parents whose other names are never a platform's (Google's school services live there).
_NOT_SIBLINGS = ("google.com",)


@dataclass
class Observed:
    """The names a file gave: how often each was asked, and the CNAME chains it shows."""

    counts: Counter[str] = field(default_factory=Counter)
    cnames: dict[str, set[str]] = field(default_factory=dict)
    lines: int = 0
    unread: int = 0  # lines that carried no host name

    def add_cname(self, name: str, target: str) -> None:
        if name != target:
            self.cnames.setdefault(name, set()).add(target)


def read_names(lines: Iterable[str]) -> Observed:
    """Host names (and CNAME links) from the lines of a list or a DNS query log."""
    out = Observed()
    pending: str | None = None  # dnsmasq: the name whose CNAME the next reply line answers
    for raw in lines:
        out.lines += 1
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            continue
        m = _DNSMASQ.search(line)
        if m is not None:
            kind, name, value = m.group(1), normalise_host(m.group(2)), m.group(3)
            if name is None:
                out.unread += 1
            elif kind.startswith("query"):
                out.counts[name] += 1
            elif kind in ("reply", "cached"):
                if pending is not None:
                    out.add_cname(pending, name)
                    out.counts[name] += 0  # seen, as a CNAME target
                pending = name if value == "<CNAME>" else None
            continue
        m = _BIND.search(line)
        if m is not None:
            name = normalise_host(m.group(1))
            if name is None:
                out.unread += 1
            else:
                out.counts[name] += 1
            continue
        m = _CNAME.match(line)
        if m is not None:
            name, target = normalise_host(m.group(1)), normalise_host(m.group(2))
            if name is None or target is None:
                out.unread += 1
                continue
            out.counts[name] += 1
            out.counts[target] += 0
            out.add_cname(name, target)
            continue
        # one name a line, "name count", or "rank,name" (a top-sites list)
        words = line.split()
        if len(words) == 2 and words[1].isdigit():
            times = int(words[1])
        elif len(words) == 1:
            times = 1
        else:
            out.unread += 1
            continue
        name = normalise_host(words[0].rsplit(",", 1)[-1])
        if name is None:
            out.unread += 1
        else:
            out.counts[name] += times
    return out


def _shape(host: str) -> str:
    return _DIGITS.sub("#", host)


def _parent(host: str) -> str:
    return host.partition(".")[2]


class _Lookalikes:
    """Why an unknown name looks like a platform's: it shares a parent or a shape (digits
    aside) with a known name, or one of its words starts with a platform's own token."""

    def __init__(
        self, catalogue: Catalogue, attributed: dict[str, str], curated: Catalogue | None
    ) -> None:
        cdn = catalogue.shared_cdn_suffixes
        known: dict[str, str] = {h: p.id for p in catalogue for h in p.hosts}
        known.update(attributed)
        self.parents: dict[str, tuple[str, str]] = {}
        self.shapes: dict[str, tuple[str, str]] = {}
        for host, pid in sorted(known.items()):
            parent = _parent(host)
            # a parent at or under a shared CDN suffix holds other customers' names
            if parent.count(".") >= 1 and not _under(parent, (*cdn, *_NOT_SIBLINGS)):
                self.parents.setdefault(parent, (pid, host))
            if _DIGITS.search(host):
                self.shapes.setdefault(_shape(host), (pid, host))
        tokens: dict[str, str] = {}
        for p in curated or catalogue:  # the curated names: the imported ones hold typos
            if p.is_bypass:
                continue
            for s in p.suffixes:
                word = s.split(".")[0]
                if len(word) >= _TOKEN_MIN and word not in _GENERIC_TOKENS and "-" not in word:
                    tokens.setdefault(word, p.id)
        self.tokens = tokens
        alternation = "|".join(sorted(map(re.escape, tokens), key=len, reverse=True))
        self.token_re = re.compile(rf"(?:^|[.-])({alternation})") if tokens else None

    def why(self, host: str) -> tuple[str, str, str] | None:
        hit = self.parents.get(_parent(host))
        if hit is not None:
            return hit[0], "sibling", f"same parent as {hit[1]}"
        hit = self.shapes.get(_shape(host))
        if hit is not None and hit[1] != host:
            return hit[0], "pattern", f"same shape as {hit[1]}"
        if self.token_re is not None:
            m = self.token_re.search(host)
            if m is not None:
                return self.tokens[m.group(1)], "name", f"names '{m.group(1)}'"
        return None


def _under(host: str, suffixes: Iterable[str]) -> bool:
    return any(host == s or host.endswith("." + s) for s in suffixes)


@dataclass
class Coverage:
    platforms: pd.DataFrame  # platform, name, category, hostnames, queries, via_import
    suspects: pd.DataFrame  # host, queries, platform, reason, detail
    totals: dict[str, int]


def coverage(
    observed: Observed, catalogue: Catalogue, curated: Catalogue | None = None
) -> Coverage:
    """Attribute every observed name; ``curated`` (the catalogue without the imported names)
    tells which attributions the import added."""
    cls = Classifier(catalogue)
    base = Classifier(curated) if curated is not None else None
    rows = []
    attributed: dict[str, str] = {}
    for host, n in observed.counts.items():
        p = cls.platform_of_normalised(host)
        if p is None:
            continue
        attributed[host] = p.id
        via = base is not None and base(host) != p.id
        rows.append((p.id, p.name, p.category, host, n, via))
    hosts = pd.DataFrame(
        rows, columns=["platform", "name", "category", "host", "queries", "via_import"]
    )
    per = (
        hosts.groupby(["platform", "name", "category"], as_index=False)
        .agg(
            hostnames=("host", "nunique"),
            queries=("queries", "sum"),
            via_import=("via_import", "sum"),
        )
        .sort_values(["hostnames", "platform"], ascending=[False, True], ignore_index=True)
    )
    per["via_import"] = per["via_import"].astype(int)

    looks = _Lookalikes(catalogue, attributed, curated)
    suspects = []
    targets_of: dict[str, list[str]] = {}
    for name, targets in observed.cnames.items():
        for t in targets:
            targets_of.setdefault(t, []).append(name)
    for host, n in observed.counts.items():
        if host in attributed:
            continue
        found: tuple[str, str, str] | None = None
        for src in sorted(targets_of.get(host, [])):
            if src in attributed:
                found = (attributed[src], "cname-target", f"CNAME target of {src}")
                break
        if found is None:
            for t in sorted(observed.cnames.get(host, ())):
                if t in attributed:
                    found = (attributed[t], "cname-to", f"CNAME to {t}")
                    break
        if found is None:
            found = looks.why(host)
        if found is not None:
            suspects.append((host, n, *found))
    sus = pd.DataFrame(suspects, columns=["host", "queries", "platform", "reason", "detail"])
    sus = sus.sort_values(["queries", "host"], ascending=[False, True], ignore_index=True)
    totals = {
        "lines": observed.lines,
        "unread_lines": observed.unread,
        "hostnames": len(observed.counts),
        "attributed": len(attributed),
        "unknown": len(observed.counts) - len(attributed),
        "suspects": len(sus),
        "queries": int(sum(observed.counts.values())),
    }
    return Coverage(platforms=per, suspects=sus, totals=totals)
