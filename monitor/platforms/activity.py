"""Request → activity: what a request does on a platform, from method, path and headers.

Only metadata is read: method, path (the query string is dropped before matching), the
browser's Fetch Metadata and Referer/Origin headers, Content-Type, and the GraphQL operation name
some clients send in a header (``X-FB-Friendly-Name``). Never bodies or cookies.

A top-level navigation (``Sec-Fetch-Mode: navigate`` with ``Sec-Fetch-Dest: document``) is a
visit. A platform resource loaded by a page that is *not* on the same platform (a Like button,
a pixel script, an embedded video on a school's site) is an ``embed``, not a visit.

Writes are strict: a POST, PUT, PATCH or DELETE that no catalogue rule names is the platform's
``unknown_write`` activity (``post`` unless the catalogue says otherwise), never a ``view``,
unless the catalogue lists it among the platform's ``read_only`` requests (a GraphQL query or an
InnerTube browse sent by POST). A multipart write is an ``upload``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from monitor.platforms.catalogue import WRITE_METHODS, Platform

_EMBED_DESTS = frozenset({"iframe", "frame", "embed", "object", "fencedframe"})
_UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
# where clients name the GraphQL operation of a request outside its body (Meta's web and apps,
# Apollo clients)
_OPERATION_HEADERS = ("X-FB-Friendly-Name", "X-Apollo-Operation-Name", "X-GraphQL-Operation")


def _header(headers: Mapping[str, str], name: str) -> str:
    v = headers.get(name)
    if v is None:
        v = headers.get(name.lower(), "")
    return v.strip().lower() if isinstance(v, str) else ""


def _operation(headers: Mapping[str, str]) -> str:
    for name in _OPERATION_HEADERS:
        v = headers.get(name)
        if v is None:
            v = headers.get(name.lower())
        if isinstance(v, str) and v:
            return v.strip()
    return ""


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
    Rules are tried in catalogue order; the first match wins. A write that no rule names is
    a ``view`` only when the platform lists it as read-only, else its ``unknown_write``.
    """
    method = method.upper()
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    mode = _header(headers, "Sec-Fetch-Mode")
    dest = _header(headers, "Sec-Fetch-Dest")
    site = _header(headers, "Sec-Fetch-Site")
    write = method in WRITE_METHODS
    if write or platform.reads_headers:
        content_type = _header(headers, "Content-Type")
        operation = _operation(headers) if platform.reads_headers else ""
    else:
        content_type = operation = ""

    navigate = mode == "navigate"
    embedded = False
    if dest in _EMBED_DESTS or (navigate and dest and dest != "document"):
        # a frame of the platform inside some page: embedded unless the page is the platform's
        embedded = not _same_platform(platform, headers, platform_of, site)
    elif not navigate and site == "cross-site":
        embedded = not _same_platform(platform, headers, platform_of, site)

    if embedded and not write:
        return "embed"
    # a write is never a view or a stream: rules for watching (a video host) do not apply
    rules, read_only = platform.rules_for(method, host)
    rule = rules.first(path, content_type, operation)
    if rule is not None:
        return rule.activity  # from an embedded widget too: a comment is still a comment
    if embedded or not write:
        # another site's page sending to the platform without a rule naming it: a pixel or a
        # beacon of an embed
        return "embed" if embedded else "view"
    if read_only.first(path, content_type, operation) is not None:
        return "view"
    if method in _UPLOAD_METHODS and content_type.startswith("multipart/form-data"):
        return "upload"
    return platform.unknown_write


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
