"""Host → platform. Pure and fast: one dict lookup for the exact name, then a walk over the
host's label suffixes from the longest to the shortest (never substrings).

Hosts under a shared CDN suffix (akamaized.net, cloudfront.net, googleapis.com, …) only match
as exact names: the walk stops at the CDN's suffix.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.platforms.catalogue import Catalogue, Platform

_MAX_HOST = 253
_CDN = ""  # sentinel in the suffix table: a shared CDN suffix, stop walking
# after lowercasing: only letters, digits, '-', '_' and dots between non-empty labels
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


class Classifier:
    """Maps host names to catalogue platforms. Thread-safe once built (read-only)."""

    __slots__ = ("catalogue", "_exact", "_trie")

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._exact: dict[str, Platform] = {}
        # A trie of labels from the top-level domain inwards; the key "" (never a label) holds
        # the platform whose suffix ends at that node, or _CDN for a shared CDN suffix.
        self._trie: dict[str, Any] = {}
        for cdn in catalogue.shared_cdn_suffixes:
            self._node(cdn)[""] = _CDN
        for p in catalogue:
            for s in p.suffixes:
                self._node(s)[""] = p
            for h in p.hosts:
                self._exact[h] = p

    def _node(self, suffix: str) -> dict[str, Any]:
        node = self._trie
        for label in reversed(suffix.split(".")):
            node = node.setdefault(label, {})
        return node

    def platform_of_normalised(self, h: str) -> Platform | None:
        """Classify a host already passed through normalise_host."""
        p = self._exact.get(h)
        if p is not None:
            return p
        node = self._trie
        best: Platform | None = None
        for label in reversed(h.split(".")):
            node = node.get(label)  # type: ignore[assignment]
            if node is None:
                break
            hit = node.get("")
            if hit is not None:
                if hit is _CDN:
                    return None  # under a shared CDN only exact names count
                best = hit
        return best

    def platform_of(self, host: object) -> Platform | None:
        """The platform a host belongs to, or None. Never raises."""
        h = normalise_host(host)
        if h is None:
            return None
        return self.platform_of_normalised(h)

    def __call__(self, host: object) -> str | None:
        p = self.platform_of(host)
        return p.id if p is not None else None
