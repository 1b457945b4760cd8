"""Host → platform: exact names, longest label suffix, shared CDNs, normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.platforms import catalogue as cat
from monitor.platforms.classify import Classifier, normalise_host

CATALOGUE = """\
shared_cdn_suffixes: [akamaized.net, googleapis.com, googleusercontent.com]
platforms:
  - {id: telegram, name: Telegram, owner: T, category: messaging, min_age: 16,
     suffixes: [telegram.org, t.me], page_hosts: [web.telegram.org]}
  - {id: signal, name: Signal, owner: S, category: messaging, min_age: 13,
     suffixes: [signal.org], page_hosts: [signal.org]}
  - {id: facebook, name: Facebook, owner: Meta, category: social, min_age: 13,
     suffixes: [facebook.com, fbcdn.net], page_hosts: [www.facebook.com]}
  - {id: messenger, name: Messenger, owner: Meta, category: messaging, min_age: 13,
     suffixes: [messenger.com], hosts: [edge-chat.facebook.com], page_hosts: [www.messenger.com]}
  - {id: youtube, name: YouTube, owner: Google, category: video, min_age: 13,
     suffixes: [youtube.com, googlevideo.com, ytimg.com, music.youtube.com.example],
     hosts: [youtubei.googleapis.com, yt3.googleusercontent.com], page_hosts: [www.youtube.com]}
  - {id: tiktok, name: TikTok, owner: B, category: video, min_age: 13,
     suffixes: [tiktok.com], hosts: [v16-webapp.tiktok.akamaized.net], page_hosts: [www.tiktok.com]}
  - {id: bucher, name: Bücher, owner: B, category: social, min_age: 13,
     suffixes: [xn--bcher-kva.example], page_hosts: [xn--bcher-kva.example]}
"""


@pytest.fixture(scope="module")
def cls(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    p: Path = tmp_path_factory.mktemp("cat") / "c.yaml"
    p.write_text(CATALOGUE)
    return Classifier(cat.load(shipped=p))


@pytest.mark.parametrize(
    ("host", "platform"),
    [
        ("telegram.org", "telegram"),
        ("web.telegram.org", "telegram"),
        ("a.b.c.telegram.org", "telegram"),
        ("t.me", "telegram"),
        ("instanttelegram.com", None),  # substring, not a label boundary
        ("telegram.org.evil.example", None),
        ("nottelegram.org", None),
        ("signal.org", "signal"),
        ("signalprocessingsociety.org", None),
        ("updates.signal.org", "signal"),
        # exact beats suffix: the chat endpoint under facebook.com is Messenger
        ("edge-chat.facebook.com", "messenger"),
        ("www.facebook.com", "facebook"),
        ("scontent-iad3-1.xx.fbcdn.net", "facebook"),
        # shared CDNs: exact names only
        ("youtubei.googleapis.com", "youtube"),
        ("www.googleapis.com", None),
        ("x.youtubei.googleapis.com", None),
        ("classroom.googleapis.com", None),
        ("yt3.googleusercontent.com", "youtube"),
        ("lh3.googleusercontent.com", None),
        ("v16-webapp.tiktok.akamaized.net", "tiktok"),
        ("other.tiktok.akamaized.net", None),
        ("akamaized.net", None),
        # Google's school services are never YouTube
        ("classroom.google.com", None),
        ("docs.google.com", None),
        ("drive.google.com", None),
        ("meet.google.com", None),
        # normalisation
        ("WWW.YouTube.COM", "youtube"),
        ("www.youtube.com.", "youtube"),
        ("www.youtube.com:443", "youtube"),
        ("www.youtube.com.:8443", "youtube"),
        ("  www.youtube.com\n", "youtube"),
        ("bücher.example", "bucher"),
        ("BÜCHER.example", "bucher"),
        ("xn--bcher-kva.example", "bucher"),
        (b"www.youtube.com", "youtube"),
        # IP literals and garbage
        ("142.250.1.1", None),
        ("142.250.1.1:443", None),
        ("[2001:db8::1]:443", None),
        ("2001:db8::1", None),
        ("", None),
        (".", None),
        ("..youtube.com", None),
        ("youtube..com", None),
        ("a" * 300 + ".youtube.com", None),
        (b"\xff\xfe.youtube.com", None),
        ("www.yоutube.com", None),  # Cyrillic 'о': a confusable is a different name
        ("www.youtube.com/path", None),
        ("user@www.youtube.com", None),
        (None, None),
        (42, None),
    ],
)
def test_platform_of(cls: Classifier, host: object, platform: str | None) -> None:
    assert cls(host) == platform


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("WWW.Example.COM.", "www.example.com"),
        ("example.com:80", "example.com"),
        ("ex_ample.example", "ex_ample.example"),
        ("münchen.example", "xn--mnchen-3ya.example"),
        ("example.com:", None),
        ("example.com:http", None),
        ("10.0.0.1", None),
        ("example.com..", None),
    ],
)
def test_normalise_host(raw: str, norm: str | None) -> None:
    assert normalise_host(raw) == norm


hostish = st.text(alphabet=st.sampled_from("abcxyz019-_.:[]ÄüйＡ。\x00 /"), min_size=0, max_size=40)


@given(st.one_of(hostish, st.text(max_size=300), st.binary(max_size=300)))
def test_normalisation_is_idempotent_and_never_raises(raw: str | bytes) -> None:
    once = normalise_host(raw)
    if once is not None:
        assert normalise_host(once) == once
        assert once == once.lower() and once.isascii()


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_random_input_never_raises(raw: str | bytes) -> None:
    cls = _shipped()
    cls(raw)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(_label, min_size=1, max_size=4))
def test_any_subdomain_of_a_platform_suffix_maps_to_it(labels: list[str]) -> None:
    cls = _shipped()
    for p in cls.catalogue:
        for suffix in p.suffixes:
            host = ".".join(labels) + "." + suffix
            if len(host) > 253:
                continue
            # an exact host of another platform may sit under this suffix, on purpose
            exact = cls._exact.get(host)
            got = cls.platform_of(host)
            assert got is not None
            if exact is None:
                # the longest claimed suffix wins; it must be this one or a longer one
                assert got.id == p.id or any(
                    host.endswith("." + s) and len(s) > len(suffix) for s in got.suffixes
                )


_SHIPPED: list[Classifier] = []


def _shipped() -> Classifier:
    if not _SHIPPED:
        _SHIPPED.append(Classifier(cat.load()))
    return _SHIPPED[0]
