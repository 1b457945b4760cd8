"""Host → platform. Pure and fast: one dict lookup for the exact name, then a walk over the
host's label suffixes from the longest to the shortest (never substrings).

Hosts under a shared CDN suffix (akamaized.net, cloudfront.net, googleapis.com, …) only match
as exact names: the walk stops at the CDN's suffix.
"""

from __future__ import annotations

import re

from .catalogue import Catalogue, Platform

_MAX_HOST = 253
_CDN = ""  # sentinel in the suffix table: a shared CDN suffix, stop walking
# after lowercasing: only letters, digits, '-', '_' and dots between non-empty labels
_BAD = re.compile(r"[^a-z0-9._-]|\.\.|^\.|\.$")


def normalise_host(host: object) -> str | None:
    """Return the canonical form of a host name, or None when it is not one.

    Lowercase, no trailing dot, no port, IDNA (A-labels) for non-ASCII names; IP literals,
    empty strings, over-long names and undecodable bytes give None. Never raises.
    """
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
        h = _to_ascii(h)
        if h is None:
            return None
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

    __slots__ = ("catalogue", "_exact", "_suffix")

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._exact: dict[str, Platform] = {}
        self._suffix: dict[str, Platform | str] = {}
        for cdn in catalogue.shared_cdn_suffixes:
            self._suffix[cdn] = _CDN
        for p in catalogue:
            for s in p.suffixes:
                self._suffix[s] = p
            for h in p.hosts:
                self._exact[h] = p

    def platform_of_normalised(self, h: str) -> Platform | None:
        """Classify a host already passed through normalise_host."""
        p = self._exact.get(h)
        if p is not None:
            return p
        suffix = self._suffix
        i = 0
        while True:
            hit = suffix.get(h[i:] if i else h)
            if hit is not None:
                return None if isinstance(hit, str) else hit
            i = h.find(".", i) + 1
            if i == 0:
                return None

    def platform_of(self, host: object) -> Platform | None:
        """The platform a host belongs to, or None. Never raises."""
        h = normalise_host(host)
        if h is None:
            return None
        return self.platform_of_normalised(h)

    def __call__(self, host: object) -> str | None:
        p = self.platform_of(host)
        return p.id if p is not None else None
