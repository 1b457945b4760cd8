"""`monitor classify` and `monitor catalog` through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_classify_arguments() -> None:
    r = run("classify", "www.tiktok.com", "WWW.YOUTUBE.COM.", "classroom.google.com", "192.0.2.1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "www.tiktok.com\ttiktok",
        "WWW.YOUTUBE.COM.\tyoutube",
        "classroom.google.com\t-",
        "192.0.2.1\t-",
    ]


def test_classify_stdin_skips_blank_and_comment_lines() -> None:
    r = run("classify", stdin="# a list\nm.tiktok.com\n\ninstanttelegram.com\n\xff\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "m.tiktok.com\ttiktok"
    assert lines[1] == "instanttelegram.com\t-"
    assert lines[2].endswith("\t-")
    assert len(lines) == 3


def test_classify_json() -> None:
    r = run("classify", "--format", "json", "www.tiktok.com", "api16-normal-c-useast1a.tiktokv.com")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0]["platform"] == "tiktok" and rows[0]["page_host"] is True
    assert rows[1]["platform"] == "tiktok" and rows[1]["page_host"] is False
    assert rows[0]["category"] == "video"


def test_catalog_list() -> None:
    r = run("catalog", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    ids = {p["id"] for p in json.loads(r.stdout)}
    assert {"tiktok", "youtube"} <= ids
    table = run("catalog", "list")
    assert "tiktok" in table.stdout and "platforms," in table.stdout


def test_catalog_check_ok_and_used_by_classify(tmp_path: Path) -> None:
    f = tmp_path / "district.yaml"
    f.write_text(
        "platforms:\n"
        "  - id: localchat\n    name: Local Chat\n    owner: Nobody\n    category: messaging\n"
        "    min_age: 13\n    suffixes: [localchat.example]\n    page_hosts: [localchat.example]\n"
    )
    r = run("catalog", "check", str(f))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
    r = run("classify", "--catalog", str(f), "www.localchat.example")
    assert r.stdout == "www.localchat.example\tlocalchat\n"


def test_catalog_check_error_names_file_line_entry_field(tmp_path: Path) -> None:
    f = tmp_path / "district.yaml"
    f.write_text("platforms:\n  - id: tiktok\n    sufixes: [x.example]\n")
    r = run("catalog", "check", str(f))
    assert r.returncode == 1
    assert f"{f}:3: entry 'tiktok': field 'sufixes': unknown key" in r.stderr
