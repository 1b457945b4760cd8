"""`monitor roster check` through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from oneroster_factory import set_cell, write_district


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_roster_check_counts(tmp_path: Path) -> None:
    d = write_district(tmp_path / "r", students=20, teachers=3, version="1.2")
    r = run("roster", "check", str(tmp_path / "r"), "--format", "json", "--on", "2025-09-01")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["by_role"] == {"student": 20, "teacher": 3}
    assert out["oneroster_version"] == "1.2"
    assert sum(out["by_age_band"].values()) == 20
    assert out["problems"] == []
    assert len(d.people) >= 23


def test_roster_check_reports_skipped_rows_with_file_line_field(tmp_path: Path) -> None:
    d = write_district(tmp_path / "r", students=10, teachers=1)
    student = next(p for p in d.people if p.role == "student")
    line = set_cell(
        tmp_path / "r" / "demographics.csv", student.sourced_id, "birthDate", "2011-02-30"
    )
    r = run("roster", "check", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert f"demographics.csv:{line}: birthDate:" in r.stdout
    assert "problems: 1 skipped" in r.stdout


def test_roster_check_rejects_wrong_delimiter(tmp_path: Path) -> None:
    write_district(tmp_path / "r", students=5, teachers=1)
    users = tmp_path / "r" / "users.csv"
    users.write_text(users.read_text().replace(",", ";"))
    r = run("roster", "check", str(tmp_path / "r"))
    assert r.returncode == 1
    assert "users.csv:1" in r.stderr
    assert "nothing was loaded" in r.stderr
