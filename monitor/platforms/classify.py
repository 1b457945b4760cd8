"""Host → platform. Pure and fast: one dict lookup for the exact name, then one walk over the
host's labels from the top-level domain inwards (never substrings), where the deepest suffix
or label pattern wins.

Under a shared CDN suffix (akamaized.net, cloudfront.net, googleapis.com, …) nothing above it
counts: a host there belongs to a platform only as an exact name, or under a platform's own
name below the CDN suffix (``x.appspot.com``, which owns its subdomains), or by a pattern.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.platforms.catalogue import Catalogue, Platform, pattern_regex

_MAX_HOST = 253
_HIT = ""  # trie key (never a label): what ends at this node (a Platform or a _Mark)
_BAD = re.compile(r"[^a-z0-9._-]|\.\.|^\.|\.$")


# An already-canonical name: lowercase labels, and a last label that is not all digits.
_CANONICAL = re.compile(r"(?:[a-z0-9_-]+\.)*[a-z0-9_-]*[a-z_-][a-z0-9_-]*").fullmatch


def normalise_host(host: object) -> str | None:
    """Return the canonical form of a host name, or None when it is not one.

    Lowercase, no trailing dot, no port, IDNA (A-labels) for non-ASCII names; IP literals,
    empty strings, over-long names and undecodable bytes give None. Never raises.
    """
    if type(host) is str and len(host) <= _MAX_HOST and _CANONICAL(host) is not None:
        return host  # the common case: one regex, no copies
    return _normalise_slow(host)


def _normalise_slow(host: object) -> str | None:
    if isinstance(host, bytes | bytearray | memoryview):
        try:
            host = bytes(host).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(host, str):
        return None
    h = host.strip()
    if not h:
        return None
    if h[0] == "[":  # [IPv6] or [IPv6]:port
        return None
    if ":" in h:
        name, _, port = h.rpartition(":")
        if ":" in name or not port.isdigit():
            return None  # bare IPv6 literal or garbage
        h = name
    if h.endswith("."):
        h = h[:-1]
    if not h or len(h) > _MAX_HOST:
        return None
    if not h.isascii():
        converted = _to_ascii(h)
        if converted is None:
            return None
        h = converted
    else:
        h = h.lower()
    if _BAD.search(h) is not None:
        return None
    last = h[h.rfind(".") + 1 :]
    if last.isdigit():
        return None  # IPv4 literal (no top-level domain is all digits)
    return h


def _to_ascii(h: str) -> str | None:
    import idna

    try:
        out = idna.encode(h, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return out if len(out) <= _MAX_HOST else None


class _Mark:
    """A trie node that is more than a platform's suffix: a shared CDN suffix (nothing above it
    counts), one that embeds its customers' host names (``www.example.com.edgekey.net``), or
    the anchor of label patterns."""

    __slots__ = ("cdn", "embed", "platform", "patterns")

    def __init__(self) -> None:
        self.cdn = False
        self.embed = False
        self.platform: Platform | None = None
        # (fullmatch of the labels left of the anchor, the pattern's labels, platform)
        self.patterns: list[tuple[Any, int, Platform]] = []


class Classifier:
    """Maps host names to catalogue platforms. Thread-safe once built (read-only)."""

    __slots__ = ("catalogue", "_exact", "_trie")

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._exact: dict[str, Platform] = {}
        # A trie of labels from the top-level domain inwards; the key "" (never a label) holds
        # the platform whose suffix ends at that node, or a _Mark.
        self._trie: dict[str, Any] = {}
        for cdn in catalogue.shared_cdn_suffixes:
            mark = self._mark(cdn)
            mark.cdn = True
            mark.embed = cdn in catalogue.embedding_cdn_suffixes
        for p in catalogue:
            for s in p.suffixes:
                node = self._node(s)
                if type(node.get(_HIT)) is _Mark:
                    node[_HIT].platform = p
                else:
                    node[_HIT] = p
            for h in p.hosts:
                self._exact[h] = p
            for pat in p.patterns:
                anchor, regex, depth = pattern_regex(pat)
                self._mark(anchor).patterns.append((re.compile(regex).fullmatch, depth, p))

    def _node(self, suffix: str) -> dict[str, Any]:
        node = self._trie
        for label in reversed(suffix.split(".")):
            node = node.setdefault(label, {})
        return node

    def _mark(self, suffix: str) -> _Mark:
        node = self._node(suffix)
        hit = node.get(_HIT)
        if type(hit) is _Mark:
            return hit
        mark = _Mark()
        mark.platform = hit
        node[_HIT] = mark
        return mark

    def platform_of_normalised(self, h: str) -> Platform | None:
        """Classify a host already passed through normalise_host: the exact name, else the
        deepest suffix or pattern (under a shared CDN suffix, only what lies below it)."""
        p = self._exact.get(h)
        if p is not None:
            return p
        # the common case: plain suffixes only (a platform's suffix is deeper than the last)
        labels = h.split(".")
        node = self._trie
        best: Platform | None = None
        for label in reversed(labels):
            node = node.get(label)  # type: ignore[assignment]
            if node is None:
                return best
            hit = node.get(_HIT)
            if hit is not None:
                if type(hit) is _Mark:
                    return self._walk(labels)
                best = hit
        return best

    def _walk(self, labels: list[str]) -> Platform | None:
        """The walk for names that meet a shared CDN suffix or a pattern anchor on the way."""
        node = self._trie
        best: Platform | None = None
        best_depth = 0
        embed = 0  # the depth of the deepest shared CDN suffix passed, if it embeds names
        for depth, label in enumerate(reversed(labels), 1):
            node = node.get(label)  # type: ignore[assignment]
            if node is None:
                break
            hit = node.get(_HIT)
            if hit is None:
                continue
            if type(hit) is not _Mark:
                if depth > best_depth:
                    best, best_depth = hit, depth
                continue
            if hit.cdn:
                best, best_depth = None, depth  # nothing above a shared CDN counts
                embed = depth if hit.embed else 0
            elif hit.platform is not None and depth > best_depth:
                best, best_depth = hit.platform, depth
            if hit.patterns and depth < len(labels):
                left = ".".join(labels[: len(labels) - depth])
                for match, pdepth, pp in hit.patterns:
                    if pdepth >= best_depth and match(left) is not None:
                        best, best_depth = pp, pdepth
        if best is None and embed and len(labels) - embed >= 2:
            # the customer's host name inside the CDN's name: classify it on its own
            return self.platform_of_normalised(".".join(labels[: len(labels) - embed]))
        return best

    def platform_of(self, host: object) -> Platform | None:
        """The platform a host belongs to, or None. Never raises."""
        if type(host) is str and len(host) <= _MAX_HOST and _CANONICAL(host) is not None:
            return self.platform_of_normalised(host)  # normalise_host's common case, inlined
        h = _normalise_slow(host)
        return None if h is None else self.platform_of_normalised(h)

    def __call__(self, host: object) -> str | None:
        p = self.platform_of(host)
        return p.id if p is not None else None
