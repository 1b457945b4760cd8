"""Label patterns, a platform's own names under shared CDN suffixes, and CDN names that embed a
customer's host name: matched on label boundaries, checked against a plain reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.platforms import catalogue as cat
from monitor.platforms.classify import Classifier
from monitor.yamlfile import ConfigError

CATALOGUE = """\
shared_cdn_suffixes: [cdnhd.example, appspot.example, edgekey.example]
embedding_cdn_suffixes: [edgekey.example]
platforms:
  - {id: face, name: Face, owner: M, category: social, min_age: 13,
     suffixes: [face.example, facecdn.example],
     patterns: ['facecdn-*.cdnhd.example']}
  - {id: gram, name: Gram, owner: M, category: social, min_age: 13,
     suffixes: [gram.example],
     patterns: ['gram.*.fna.facecdn.example', 'gram-*.facecdn.example', 'img*.cdnhd.example']}
  - {id: chat, name: Chat, owner: C, category: messaging, min_age: 13,
     suffixes: [chat.example, chat.appspot.example, deep.chat2.appspot.example],
     hosts: [exact.cdnhd.example]}
"""


@pytest.fixture(scope="module")
def cls(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    p: Path = tmp_path_factory.mktemp("pat") / "c.yaml"
    p.write_text(CATALOGUE)
    return Classifier(cat.load(shipped=p))


@pytest.mark.parametrize(
    ("host", "platform"),
    [
        # a label pattern under another platform's suffix wins over the shorter suffix
        ("gram.fxyz1-1.fna.facecdn.example", "gram"),
        ("a.b.gram.fxyz1-1.fna.facecdn.example", "gram"),  # subdomains too
        ("scontent.fxyz1-1.fna.facecdn.example", "face"),
        ("gramx.fxyz1-1.fna.facecdn.example", "face"),  # label boundary
        ("xgram.fxyz1-1.fna.facecdn.example", "face"),
        ("gram.fna.facecdn.example", "face"),  # '*' is one whole label, never none
        ("gram.a.b.fna.facecdn.example", "face"),  # nor two
        ("gram-shv-01-ams2.facecdn.example", "gram"),
        ("gram-.facecdn.example", "gram"),  # '*' inside a label may be empty
        ("grams.facecdn.example", "face"),
        # patterns under a shared CDN suffix, with part of the label written out
        ("facecdn-video-a.cdnhd.example", "face"),
        ("img0-0.cdnhd.example", "gram"),
        ("imgs.cdnhd.example", "gram"),
        ("other.cdnhd.example", None),
        ("cdnhd.example", None),
        ("exact.cdnhd.example", "chat"),
        ("sub.exact.cdnhd.example", None),  # an exact host owns no subdomains
        # a platform's own name under a shared CDN suffix owns its subdomains
        ("chat.appspot.example", "chat"),
        ("v2.chat.appspot.example", "chat"),
        ("deep.chat2.appspot.example", "chat"),
        ("x.deep.chat2.appspot.example", "chat"),
        ("chat2.appspot.example", None),
        ("other.appspot.example", None),
        ("appspot.example", None),
        # names that embed the customer's host name under an embedding CDN suffix
        ("www.face.example.edgekey.example", "face"),
        ("gram.x.fna.facecdn.example.edgekey.example", "gram"),
        ("unknown.example.edgekey.example", None),
        ("face.edgekey.example", None),  # one label: not a host name
        ("www.face.example.cdnhd.example", None),  # only on embedding CDNs
        ("face.example.evil.example", None),  # never elsewhere
    ],
)
def test_patterns_and_cdn_names(cls: Classifier, host: str, platform: str | None) -> None:
    assert cls(host) == platform


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("facecdn.example", "is not a pattern"),
        ("*.example", "is not a pattern"),
        ("gram.*.example", "last two labels must be written out"),
        ("gram.a.*", "last two labels must be written out"),
        ("gr am.*.fna.example.com", "invalid label"),
        ("gram.**.fna.example.com", "invalid label"),
        ("gram..*.example.com", "invalid label"),
    ],
)
def test_bad_patterns_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cat.check_pattern(value)


def test_a_bare_label_under_a_shared_cdn_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        CATALOGUE.replace("'img*.cdnhd.example'", "'*.cdnhd.example', 'a.*.cdnhd.example'")
    )
    with pytest.raises(ConfigError) as info:
        cat.load(shipped=p)
    msg = str(info.value)
    assert "entry 'gram'" in msg and "field 'patterns'" in msg
    assert "would claim every name under the shared CDN suffix 'cdnhd.example'" in msg


def test_embedding_suffix_must_be_a_shared_cdn(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(CATALOGUE.replace("[edgekey.example]", "[edgekey.example, face.example]"))
    with pytest.raises(ConfigError, match="'face.example' is not one of the shared CDN suffixes"):
        cat.load(shipped=p)


# ---------------------------------------------------------------- against a plain reference


def _reference(c: cat.Catalogue, host: str) -> str | None:
    """The same rules written the slow, obvious way: exact name; else the longest suffix or
    pattern below the deepest shared CDN suffix (a pattern wins a tie); else the embedded
    customer name."""
    for p in c:
        if host in p.hosts:
            return p.id
    labels = host.split(".")
    cdn_depth = max(
        (len(s.split(".")) for s in c.shared_cdn_suffixes if host == s or host.endswith("." + s)),
        default=0,
    )
    best: tuple[int, int, str] | None = None  # (depth, pattern?, platform)
    for p in c:
        for s in p.suffixes:
            d = len(s.split("."))
            if (host == s or host.endswith("." + s)) and d > cdn_depth:
                best = max(best or (0, 0, ""), (d, 0, p.id))
        for pat in p.patterns:
            parts = pat.split(".")
            if len(labels) < len(parts):
                continue
            tail = labels[len(labels) - len(parts) :]
            ok = all(
                re.fullmatch(
                    "[a-z0-9_-]+" if q == "*" else "[a-z0-9_-]*".join(map(re.escape, q.split("*"))),
                    lab,
                )
                for q, lab in zip(parts, tail, strict=True)
            )
            if ok and len(parts) > cdn_depth and (best is None or len(parts) >= best[0]):
                best = (len(parts), 1, p.id)
    if best is not None:
        return best[2]
    for e in c.embedding_cdn_suffixes:
        if host.endswith("." + e) and len(labels) - len(e.split(".")) >= 2:
            return _reference(c, host[: -len(e) - 1])
    return None


_parts = st.sampled_from(
    [
        "gram",
        "face",
        "chat",
        "x",
        "fna",
        "facecdn",
        "cdnhd",
        "appspot",
        "edgekey",
        "gram-a",
        "facecdn-v",
        "img0",
        "deep",
        "chat2",
        "exact",
        "example",
    ]
)


@settings(max_examples=400)
@given(st.lists(_parts, min_size=1, max_size=6))
def test_classifier_agrees_with_the_reference(cls: Classifier, labels: list[str]) -> None:
    host = ".".join([*labels, "example"]) if labels[-1] != "example" else ".".join(labels)
    assert cls(host) == _reference(cls.catalogue, host)


def test_a_district_file_adds_patterns(tmp_path: Path) -> None:
    shipped = tmp_path / "c.yaml"
    shipped.write_text(CATALOGUE)
    extra = tmp_path / "district.yaml"
    extra.write_text("platforms:\n  - id: chat\n    patterns: ['chat-*.cdnhd.example']\n")
    cls = Classifier(cat.load([extra], shipped=shipped))
    assert cls("chat-edge-7.cdnhd.example") == "chat"
    assert cls("facecdn-video-a.cdnhd.example") == "face"  # the shipped patterns stay
    extra.write_text("platforms:\n  - id: chat\n    patterns: ['chat.*']\n")
    with pytest.raises(ConfigError) as info:
        cat.load([extra], shipped=shipped)
    assert "district.yaml:3" in str(info.value) and "field 'patterns'" in str(info.value)
