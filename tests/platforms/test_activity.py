"""Request → activity: navigations, embeds, catalogue rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.platforms import catalogue as cat
from monitor.platforms.activity import request_activity
from monitor.platforms.classify import Classifier

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
  - id: youtube
    name: YouTube
    owner: Google
    category: video
    min_age: 13
    suffixes: [youtube.com, googlevideo.com]
    page_hosts: [www.youtube.com]
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
        (
            "facebook",
            "POST",
            "www.facebook.com",
            "/api/graphql/",
            {"Content-Type": "application/json"},
            "view",
        ),
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
