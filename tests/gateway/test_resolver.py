"""The resolver configuration (monitor.gateway.resolver, monitor.gateway.safesearch) and
``monitor gateway resolver``: what the file says, checked by the real ``dnsmasq --test``. The
running daemon is tested in test_resolver_dnsmasq.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.gateway.resolver import MAX_LINE, render_dnsmasq, resolver_names, static_set_elements
from monitor.gateway.safesearch import SERVICES, google_search_domains, parse_safesearch
from monitor.platforms.catalogue import Catalogue

SPEC = "4#inet#student_monitor#catalogue4,6#inet#student_monitor#catalogue6"
DDG = "safe.duckduckgo.com=192.0.2.80,2001:db8::80"  # documentation addresses


def dnsmasq_bin() -> str:
    path = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
    )
    if path is None:
        pytest.fail(
            "dnsmasq not found: apt-get install -y dnsmasq-base (scripts/test does so)",
            pytrace=False,
        )
    return path


def dnsmasq_test(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "monitor.conf"
    conf.write_text(text)
    return subprocess.run(
        [dnsmasq_bin(), "--test", f"--conf-file={conf}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def nftset_names(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("nftset="):
            body, _, spec = line[len("nftset=/") :].rpartition("/")
            assert spec == SPEC, line[:80]
            out += body.split("/")
    return out


def test_every_catalogue_name_fills_the_sets(catalogue: Catalogue, tmp_path: Path) -> None:
    text = render_dnsmasq(catalogue, generated="2026-12-01 08:00 UTC")
    names = nftset_names(text)
    assert len(names) == len(set(names))  # each name once
    listed = set(names)
    for p in catalogue:  # platforms and bypass services, suffixes and exact hosts
        for s in p.suffixes:
            assert s in listed, (p.id, s)
        for h in p.hosts:
            labels = h.split(".")
            # an exact host is listed, or a catalogue suffix above it covers it
            assert h in listed or any(
                ".".join(labels[i:]) in listed for i in range(1, len(labels))
            ), h
    assert "p16-tiktokcdn-com.akamaized.net" in listed and "akamaized.net" not in listed
    assert "youtubei.googleapis.com" in listed and "googleapis.com" not in listed
    assert "dns.google" in listed and "cloudflare-dns.com" in listed  # bypass services
    assert not listed & catalogue.shared_cdn_suffixes
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE
    assert "dnsmasq 2.87" in text and "2026-12-01 08:00 UTC" in text
    r = dnsmasq_test(text, tmp_path)
    assert r.returncode == 0 and "syntax check OK" in r.stderr, r.stderr


def test_resolver_names_keep_catalogue_order_and_drop_covered_hosts(catalogue: Catalogue) -> None:
    names = dict(resolver_names(catalogue))
    assert list(names)[0] == next(iter(catalogue)).id
    # Lemon8's images under tiktokcdn.com are covered by TikTok's suffix
    assert "p16-lemon8-va.tiktokcdn.com" not in names.get("lemon8", [])
    # Messenger's chat host under facebook.com likewise
    assert "edge-chat.facebook.com" not in names.get("messenger", [])


def test_safesearch_everything_passes_dnsmasq_test(catalogue: Catalogue, tmp_path: Path) -> None:
    spec = parse_safesearch("google, bing ,duckduckgo,youtube=moderate", (DDG,))
    text = render_dnsmasq(catalogue, spec)
    assert "host-record=forcesafesearch.google.com,216.239.38.120,2001:4860:4802:32::78" in text
    assert "host-record=strict.bing.com,204.79.197.220\n" in text
    assert "host-record=safe.duckduckgo.com,192.0.2.80,2001:db8::80" in text
    assert "host-record=restrictmoderate.youtube.com,216.239.38.119,2001:4860:4802:32::77" in text
    cnames: list[str] = []
    for line in text.splitlines():
        if line.startswith("cname="):
            *names, target = line[len("cname=") :].split(",")
            assert target in {s.target for s in SERVICES.values()}
            cnames += names
    assert len(cnames) == len(set(cnames))  # dnsmasq wants every cname once
    for name in ("www.google.com", "google.com", "www.google.de", "www.google.co.uk",
                 "www.google.com.au", "www.google.co.jp", "www.google.ca", "www.bing.com",
                 "duckduckgo.com", "www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
                 "youtube.googleapis.com", "www.youtube-nocookie.com"):  # fmt: skip
        assert name in cnames, name
    # never Google's school services, never a whole domain
    assert not {"classroom.google.com", "docs.google.com", "accounts.google.com"} & set(cnames)
    # YouTube's names are catalogue names: the file says the firewall must hold the address
    assert "nft add element inet student_monitor catalogue4 { 216.239.38.119 }" in text
    assert static_set_elements(spec, catalogue) == ("216.239.38.119", "2001:4860:4802:32::77")
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE
    r = dnsmasq_test(text, tmp_path)
    assert r.returncode == 0 and "syntax check OK" in r.stderr, r.stderr


def test_google_search_domains_are_generated() -> None:
    domains = google_search_domains()
    assert len(domains) == len(set(domains)) > 180
    for d in ("google.com", "google.de", "google.fr", "google.co.uk", "google.co.in",
              "google.com.br", "google.com.mx", "google.ca", "google.com.au", "google.co.jp"):  # fmt: skip
        assert d in domains
    assert all(re.fullmatch(r"google(\.com|\.co)?\.[a-z]{2,3}", d) for d in domains)


@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("yahoo", (), "unknown SafeSearch service 'yahoo'"),
        ("youtube=lax", (), "unknown SafeSearch service 'youtube=lax'"),
        ("youtube=strict,youtube=moderate", (), "choose one YouTube mode"),
        ("duckduckgo", (), "publishes no fixed address for safe.duckduckgo.com"),
        ("google", ("forcesafesearch.google.com=nope",), "'nope' in"),
        ("google", ("forcesafesearch.google.com",), "is not NAME=ADDRESS"),
        ("google", ("www.example.com=192.0.2.1",), "no SafeSearch service answers with"),
    ],
)
def test_bad_safesearch_specs_say_what_is_wrong(
    spec: str, extra: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_safesearch(spec, extra)


def test_an_address_can_be_replaced(catalogue: Catalogue) -> None:
    spec = parse_safesearch("google,youtube", ("forcesafesearch.google.com=192.0.2.7",))
    text = render_dnsmasq(catalogue, spec)
    assert "host-record=forcesafesearch.google.com,192.0.2.7\n" in text
    assert "host-record=restrict.youtube.com,216.239.38.120,2001:4860:4802:32::78" in text


def test_cli_writes_the_file_and_notes_what_the_firewall_must_hold(tmp_path: Path) -> None:
    out = tmp_path / "monitor.conf"
    r = CliRunner().invoke(
        main,
        ["gateway", "resolver", "--kind", "dnsmasq", "--safesearch", "google,bing,youtube=strict",
         "--out", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "firewall must hold 216.239.38.120, 2001:4860:4802:32::78" in r.output
    text = out.read_text()
    assert "cname=www.google.com,google.com," in text and "nftset=/tiktok.com/" in text
    assert dnsmasq_test(text, tmp_path).returncode == 0
    # no SafeSearch: no note, no cname
    r = CliRunner().invoke(main, ["gateway", "resolver"])
    assert r.exit_code == 0 and "\ncname=" not in r.output and "firewall must hold" not in r.output
    # a district's own platforms are included
    d = tmp_path / "local.yaml"
    d.write_text(
        "platforms:\n  - id: localchat\n    name: Local Chat\n    owner: Somebody\n"
        "    category: messaging\n    min_age: 13\n    suffixes: [localchat.example]\n"
        "    page_hosts: [localchat.example]\n"
    )
    r = CliRunner().invoke(main, ["gateway", "resolver", "--catalog", str(d)])
    assert r.exit_code == 0 and "# localchat: Local Chat\nnftset=/localchat.example/" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--safesearch", "duckduckgo"], "safe.duckduckgo.com=ADDRESS"),
        (["--safesearch-address", "safe.duckduckgo.com=192.0.2.1"], "needs --safesearch"),
        (["--kind", "unbound"], "'unbound' is not 'dnsmasq'"),
    ],
)
def test_cli_errors(args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, ["gateway", "resolver", *args])
    assert r.exit_code == 2 and message in r.output, r.output
