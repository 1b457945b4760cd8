"""``monitor catalog coverage FILE`` and ``monitor catalog import-v2fly DIR``: what a district's
DNS log or host list shows, and regenerating the snapshot from a checkout. Synthetic names."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.platforms import catalogue as cat
from monitor.platforms import v2fly
from monitor.platforms.coverage import coverage, read_names

LOG = """\
# a plain list, a dnsmasq log, a BIND log and CNAME records in one file
www.youtube.com
www.youtube.com
youtube.co.jp
instagram.fabc1-1.fna.fbcdn.net
p77-tiktokcdn-com.akamaized.net
tiktok-newcdn.example
tiktokv.com.wsdvs.com
other.map.fastly.net
www.wikipedia.org
not a host name!
Dec  7 02:00:01 dnsmasq[1]: query[A] www.school.example from 192.0.2.10
Dec  7 02:00:01 dnsmasq[1]: forwarded www.school.example to 192.0.2.1
Dec  7 02:00:01 dnsmasq[1]: reply www.school.example is <CNAME>
Dec  7 02:00:01 dnsmasq[1]: reply edge.school-cdn.example is 192.0.2.5
Dec  7 02:00:02 dnsmasq[1]: query[AAAA] www.reddit.com from 192.0.2.11
Dec  7 02:00:02 dnsmasq[1]: reply www.reddit.com is <CNAME>
Dec  7 02:00:02 dnsmasq[1]: reply reddit.map.fastly.net is <CNAME>
Dec  7 02:00:02 dnsmasq[1]: reply unknown-lb.fastly-edge.example is 2001:db8::5
07-Dec-2026 02:00:03.123 client @0x7f 192.0.2.12#53211 (discord.com): query: discord.com IN A +E(0)K (192.0.2.1)
video.school.example. 300 IN CNAME scontent.cdninstagram.com.
"""


def test_read_names_understands_each_format() -> None:
    seen = read_names(LOG.splitlines())
    assert seen.counts["www.youtube.com"] == 2
    assert seen.counts["www.school.example"] == 1
    assert seen.counts["discord.com"] == 1  # BIND, despite the '#' in the client address
    assert seen.cnames["www.school.example"] == {"edge.school-cdn.example"}
    assert seen.cnames["www.reddit.com"] == {"reddit.map.fastly.net"}
    assert seen.cnames["reddit.map.fastly.net"] == {"unknown-lb.fastly-edge.example"}
    assert seen.cnames["video.school.example"] == {"scontent.cdninstagram.com"}
    assert "192.0.2.1" not in seen.counts
    assert seen.unread == 1  # "not a host name!"


def test_coverage_tables() -> None:
    result = coverage(read_names(LOG.splitlines()), cat.load(), cat.load(imported=False))
    per = result.platforms.set_index("platform")
    assert per.loc["youtube", "hostnames"] == 2 and per.loc["youtube", "queries"] == 3
    assert per.loc["youtube", "via_import"] == 1  # youtube.co.jp comes from the snapshot
    assert per.loc["instagram", "hostnames"] == 2  # the pattern and the CNAME target
    assert per.loc["reddit", "hostnames"] == 2
    sus = result.suspects.set_index("host")
    assert sus.loc["p77-tiktokcdn-com.akamaized.net", "reason"] == "pattern"
    assert sus.loc["p77-tiktokcdn-com.akamaized.net", "platform"] == "tiktok"
    assert sus.loc["tiktok-newcdn.example", "reason"] == "name"
    # same parent as the catalogue's tiktokcdn.com.wsdvs.com; never under a shared CDN suffix
    assert sus.loc["tiktokv.com.wsdvs.com", "reason"] == "sibling"
    assert "other.map.fastly.net" not in sus.index  # bytedance.map.fastly.net is TikTok's
    assert sus.loc["unknown-lb.fastly-edge.example", "reason"] == "cname-target"
    assert sus.loc["unknown-lb.fastly-edge.example", "platform"] == "reddit"
    assert sus.loc["video.school.example", "reason"] == "cname-to"
    assert "www.wikipedia.org" not in sus.index and "www.school.example" not in sus.index
    assert "edge.school-cdn.example" not in sus.index
    assert result.totals["hostnames"] == result.totals["attributed"] + result.totals["unknown"]


def test_coverage_command(tmp_path: Path) -> None:
    log = tmp_path / "dns.log"
    log.write_text(LOG)
    r = CliRunner().invoke(main, ["catalog", "coverage", str(log)])
    assert r.exit_code == 0, r.output
    assert "attributed" in r.output and "youtube" in r.output
    assert "look like a platform's infrastructure" in r.output
    r = CliRunner().invoke(main, ["catalog", "coverage", str(log), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert {row["platform"] for row in doc["platforms"]} >= {"youtube", "instagram", "discord"}
    assert doc["totals"]["unread_lines"] == 1
    assert any(s["host"] == "tiktok-newcdn.example" for s in doc["suspects"])
    # a rotated, compressed log
    gz = tmp_path / "dns.log.1.gz"
    gz.write_bytes(gzip.compress(LOG.encode()))
    r = CliRunner().invoke(main, ["catalog", "coverage", str(gz), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["totals"] == doc["totals"]
    # standard input
    r = CliRunner().invoke(main, ["catalog", "coverage", "-", "--json"], input="youtu.be\n")
    assert json.loads(r.output)["platforms"][0]["platform"] == "youtube"


def test_coverage_command_bad_file(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["catalog", "coverage", str(tmp_path / "missing.log")])
    assert r.exit_code != 0
    assert "missing.log" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["catalog", "coverage", str(tmp_path)])
    assert r.exit_code != 0 and "directory" in r.output


SHA = "89abcdef0123456789abcdef0123456789abcdef"


def test_import_command_regenerates_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(v2fly, "LISTS", {"youtube": (("youtube", ""),)})
    data = tmp_path / "dlc" / "data"
    data.mkdir(parents=True)
    (data / "youtube").write_text(
        "youtube.example\nfull:yt.cdn.example\nads.youtube.example @ads\n"
    )
    out = tmp_path / "v2fly.yaml"
    args = ["catalog", "import-v2fly", str(tmp_path / "dlc"), "--output", str(out)]
    r = CliRunner().invoke(main, [*args, "--commit", SHA, "--date", "2026-08-19"])
    assert r.exit_code == 0, r.output
    assert "2 names for 1 platforms, 1 left out; 2 added" in r.output
    model = v2fly.load_snapshot(out)
    assert model.source.commit == SHA and model.platforms["youtube"].hosts == ["yt.cdn.example"]
    # a directory that is not a git checkout, without --commit: refused, nothing written
    out.unlink()
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and "--commit" in r.output and not out.exists()


def test_import_command_refuses_a_snapshot_that_claims_school_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(v2fly, "LISTS", {"youtube": (("youtube", ""),)})
    monkeypatch.setattr(v2fly, "EXCLUDED", {})
    data = tmp_path / "dlc" / "data"
    data.mkdir(parents=True)
    (data / "youtube").write_text("youtube.example\nclassroom.google.com\n")
    out = tmp_path / "v2fly.yaml"
    r = CliRunner().invoke(
        main,
        [
            "catalog",
            "import-v2fly",
            str(tmp_path / "dlc"),
            "--output",
            str(out),
            "--commit",
            SHA,
            "--date",
            "2026-08-19",
        ],
    )
    assert r.exit_code != 0
    assert "classroom.google.com" in r.output and not out.exists()
