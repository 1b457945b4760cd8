"""Request → activity: navigations, embeds, catalogue rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.platforms import catalogue as cat
from monitor.platforms.activity import request_activity
from monitor.platforms.classify import Classifier
from monitor.yamlfile import ConfigError

CATALOGUE = """\
platforms:
  - id: facebook
    name: Facebook
    owner: Meta
    category: social
    min_age: 13
    suffixes: [facebook.com, facebook.net]
    page_hosts: [www.facebook.com]
    activities:
      - {activity: login, method: POST, path: '^/login'}
      - {activity: message, method: POST, path: '^/messages/send'}
      - {activity: upload, method: POST, hosts: [upload.facebook.com]}
      - {activity: post, method: POST, path: '^/api/graphql', content_type: application/x-www-form-urlencoded}
      - {activity: live, path: '^/live/', hosts: ['*.facebook.com']}
      - {activity: stream, hosts: [video.facebook.net]}
    read_only:
      - {path: '^/api/graphql/$', operation: 'Query$'}
      - {path: '^/feed/read$'}
  - id: youtube
    name: YouTube
    owner: Google
    category: video
    min_age: 13
    suffixes: [youtube.com, googlevideo.com]
    page_hosts: [www.youtube.com]
    unknown_write: upload
    activities:
      - {activity: stream, hosts: ['*.googlevideo.com'], path: '^/videoplayback'}
"""

NAV = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}


@pytest.fixture(scope="module")
def cls(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    p: Path = tmp_path_factory.mktemp("cat") / "c.yaml"
    p.write_text(CATALOGUE)
    return Classifier(cat.load(shipped=p))


@pytest.mark.parametrize(
    ("platform", "method", "host", "path", "headers", "activity"),
    [
        # a person typing the address or following a link: a visit
        ("facebook", "GET", "www.facebook.com", "/", NAV, "view"),
        (
            "facebook",
            "GET",
            "www.facebook.com",
            "/",
            {**NAV, "Sec-Fetch-Site": "cross-site", "Referer": "https://school.example/"},
            "view",
        ),
        # the Like button iframe on a school's page
        (
            "facebook",
            "GET",
            "www.facebook.com",
            "/plugins/like.php",
            {
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "iframe",
                "Sec-Fetch-Site": "cross-site",
                "Referer": "https://school.example/news",
            },
            "embed",
        ),
        # the pixel script on a school's page
        (
            "facebook",
            "GET",
            "connect.facebook.net",
            "/en_US/fbevents.js",
            {
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "script",
                "Sec-Fetch-Site": "cross-site",
                "Referer": "https://school.example/",
            },
            "embed",
        ),
        # a script loaded by facebook's own page is part of the visit
        (
            "facebook",
            "GET",
            "connect.facebook.net",
            "/en_US/sdk.js",
            {
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "script",
                "Sec-Fetch-Site": "cross-site",
                "Referer": "https://www.facebook.com/",
            },
            "view",
        ),
        # cross-site without any referrer: embed (not the platform's own page)
        (
            "facebook",
            "GET",
            "connect.facebook.net",
            "/x.js",
            {
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "script",
                "Sec-Fetch-Site": "cross-site",
            },
            "embed",
        ),
        # an iframe of the platform inside its own page is not an embed
        (
            "facebook",
            "GET",
            "www.facebook.com",
            "/frame",
            {
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "iframe",
                "Sec-Fetch-Site": "same-origin",
                "Referer": "https://www.facebook.com/",
            },
            "view",
        ),
        # catalogue rules
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/login/device-based/regular/login/?q=secret",
            {},
            "login",
        ),
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/messages/send/",
            {"Sec-Fetch-Site": "same-origin"},
            "message",
        ),
        ("facebook", "POST", "upload.facebook.com", "/ajax/x", {}, "upload"),
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/api/graphql/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
            "post",
        ),
        # the strict default: a write no rule names is a post, not a view (it was a view)
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/api/graphql/",
            {"Content-Type": "application/json"},
            "post",
        ),
        # ... unless the platform lists it as read-only: by path, or by the GraphQL operation
        # the client names in its headers
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/api/graphql/",
            {"Content-Type": "application/json", "X-FB-Friendly-Name": "CometFeedQuery"},
            "view",
        ),
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/api/graphql/",
            {"x-fb-friendly-name": "CometUFIFeedbackReactMutation"},
            "post",
        ),
        ("facebook", "POST", "www.facebook.com", "/feed/read", {}, "view"),
        ("facebook", "PUT", "www.facebook.com", "/feed/read", {}, "post"),  # read-only: POST
        ("facebook", "DELETE", "www.facebook.com", "/some/thing", {}, "post"),
        ("facebook", "PATCH", "www.facebook.com", "/some/thing", {}, "post"),
        ("facebook", "OPTIONS", "www.facebook.com", "/some/thing", {}, "view"),
        # a write to a video host is not a stream
        ("facebook", "GET", "video.facebook.net", "/v/1.mp4", {}, "stream"),
        ("facebook", "POST", "video.facebook.net", "/v/1.mp4", {}, "post"),
        # a platform's own default
        ("youtube", "POST", "www.youtube.com", "/unknown", {}, "upload"),
        ("youtube", "GET", "www.youtube.com", "/unknown", {}, "view"),
        ("facebook", "GET", "live.facebook.com", "/live/123", {}, "live"),
        ("facebook", "GET", "www.facebook.com", "/messages/send/", {}, "view"),  # method matters
        # an unmatched multipart upload
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/other",
            {"Content-Type": "multipart/form-data; boundary=x"},
            "upload",
        ),
        # embedded: a write that a rule names keeps its activity (a comment sent from a
        # widget); one that none names is the embed's beacon
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/messages/send/",
            {
                "Sec-Fetch-Mode": "cors",
                "Sec-Fetch-Site": "cross-site",
                "Origin": "https://s.example",
            },
            "message",
        ),
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/tr/",
            {
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Site": "cross-site",
                "Origin": "https://s.example",
            },
            "embed",
        ),
        (
            "facebook",
            "GET",
            "live.facebook.com",
            "/live/123",
            {
                "Sec-Fetch-Dest": "iframe",
                "Sec-Fetch-Site": "cross-site",
                "Referer": "https://s.example/",
            },
            "embed",
        ),
        ("youtube", "GET", "rr3---sn-abc.googlevideo.com", "/videoplayback", {}, "stream"),
        (
            "youtube",
            "GET",
            "www.youtube.com",
            "/videoplayback",
            {},
            "view",
        ),  # rule limited to hosts
        # lowercase header names (HTTP/2)
        (
            "facebook",
            "GET",
            "www.facebook.com",
            "/plugins/like.php",
            {
                "sec-fetch-mode": "navigate",
                "sec-fetch-dest": "iframe",
                "sec-fetch-site": "cross-site",
                "referer": "https://school.example/",
            },
            "embed",
        ),
    ],
)
def test_request_activity(
    cls: Classifier,
    platform: str,
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    activity: str,
) -> None:
    p = cls.catalogue[platform]
    assert request_activity(p, method, host, path, headers, cls.platform_of) == activity


def test_bad_referer_does_not_raise(cls: Classifier) -> None:
    p = cls.catalogue["facebook"]
    h = {"Sec-Fetch-Dest": "script", "Sec-Fetch-Site": "cross-site", "Referer": "http://[::1"}
    assert request_activity(p, "GET", "connect.facebook.net", "/", h, cls.platform_of) == "embed"


def test_a_district_sets_the_default_and_adds_read_only_requests(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(CATALOGUE)
    extra = tmp_path / "district.yaml"
    extra.write_text(
        "platforms:\n"
        "  - id: facebook\n"
        "    unknown_write: message\n"
        "    read_only:\n"
        "      - {path: '^/ajax/bz$', note: telemetry}\n"
    )
    c = Classifier(cat.load([extra], shipped=shipped))
    p = c.catalogue["facebook"]
    assert p.unknown_write == "message"
    assert len(p.read_only) == 3
    assert request_activity(p, "POST", "www.facebook.com", "/ajax/bz", {}) == "view"
    assert request_activity(p, "POST", "www.facebook.com", "/feed/read", {}) == "view"
    assert request_activity(p, "POST", "www.facebook.com", "/ajax/other", {}) == "message"
    # a platform the district does not touch keeps its own
    assert c.catalogue["youtube"].unknown_write == "upload"


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("unknown_write: view", "unknown_write", "'post'"),
        ("unknown_write: stream", "unknown_write", "'post'"),
        ("read_only: [{note: everything}]", "read_only[0]", "needs a 'path' or an 'operation'"),
        ("read_only: [{path: '^/(x'}]", "read_only[0].path", "bad regular expression"),
        ("read_only: [{path: '^/x', operation: '(('}]", "read_only[0].operation", "bad regular"),
        ("read_only: [{path: '^/x', method: FETCH}]", "read_only[0].method", "unknown HTTP"),
        ("read_only: [{path: '^/x', activity: view}]", "read_only[0].activity", "unknown key"),
    ],
)
def test_bad_activity_defaults_are_refused_naming_the_field(
    tmp_path: Path, entry: str, field: str, words: str
) -> None:
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(CATALOGUE)
    extra = tmp_path / "district.yaml"
    extra.write_text(f"platforms:\n  - id: facebook\n    {entry}\n")
    with pytest.raises(ConfigError) as e:
        cat.load([extra], shipped=shipped)
    msg = str(e.value)
    assert str(extra) in msg and ":3" in msg and field in msg and words in msg, msg
