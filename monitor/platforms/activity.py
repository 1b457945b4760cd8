"""Request → activity: what a request does on a platform, from method, path and headers.

Only metadata is read: method, path (the query string is dropped before matching), and the
browser's Fetch Metadata and Referer/Origin headers. Never bodies or cookies.

A top-level navigation (``Sec-Fetch-Mode: navigate`` with ``Sec-Fetch-Dest: document``) is a
visit. A platform resource loaded by a page that is *not* on the same platform (a Like button,
a pixel script, an embedded video on a school's site) is an ``embed``, not a visit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from monitor.platforms.catalogue import Platform

_EMBED_DESTS = frozenset({"iframe", "frame", "embed", "object", "fencedframe"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(headers: Mapping[str, str], name: str) -> str:
    v = headers.get(name)
    if v is None:
        v = headers.get(name.lower(), "")
    return v.strip().lower() if isinstance(v, str) else ""


def _referring_host(headers: Mapping[str, str]) -> str | None:
    for name in ("Origin", "Referer"):
        v = _header(headers, name)
        if v and v != "null":
            try:
                host = urlsplit(v).hostname
            except ValueError:
                return None
            return host
    return None


def request_activity(
    platform: Platform,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    platform_of: Callable[[str], Platform | None] | None = None,
) -> str:
    """Classify one request to ``platform`` into an activity.

    ``host`` is the normalised request host; ``platform_of`` classifies the referring page's
    host (Origin or Referer) so that a request made by another site's page becomes ``embed``.
    Rules are tried in catalogue order; the first match wins.
    """
    method = method.upper()
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    mode = _header(headers, "Sec-Fetch-Mode")
    dest = _header(headers, "Sec-Fetch-Dest")
    site = _header(headers, "Sec-Fetch-Site")

    navigate = mode == "navigate"
    if dest in _EMBED_DESTS or (navigate and dest and dest != "document"):
        # a frame of the platform inside some page: embedded unless the page is the platform's
        if not _same_platform(platform, headers, platform_of, site):
            return "embed"
    elif not navigate and site == "cross-site":
        if not _same_platform(platform, headers, platform_of, site):
            return "embed"

    content_type = _header(headers, "Content-Type")
    for rule in platform.activities:
        if rule.matches(method, host, path, content_type):
            return rule.activity

    if method in _WRITE_METHODS and content_type.startswith("multipart/form-data"):
        return "upload"
    return "view"


def _same_platform(
    platform: Platform,
    headers: Mapping[str, str],
    platform_of: Callable[[str], Platform | None] | None,
    site: str,
) -> bool:
    ref = _referring_host(headers)
    if ref is None:
        # no referrer: only same-origin/same-site fetches are trusted to be the platform's own
        return site in ("same-origin", "same-site", "none")
    if platform_of is None:
        return False
    other = platform_of(ref)
    return other is not None and other.id == platform.id
