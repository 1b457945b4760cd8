"""The weekly report's systemd units: valid (``systemd-analyze verify``), hardened
(``systemd-analyze security --offline``), a timer that fires on Mondays, and an ExecStart that
runs the command the tests check against aiosmtpd."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
SERVICE = SYSTEMD / "student-monitor-report.service"
TIMER = SYSTEMD / "student-monitor-report.timer"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def _moved(tmp_path: Path) -> None:
    for unit in (SERVICE, TIMER):
        text = unit.read_text().replace("/opt/student-monitor", str(ROOT))
        text = text.replace("/etc/student-monitor", str(tmp_path))
        text = text.replace(f"WorkingDirectory={ROOT}", f"WorkingDirectory={tmp_path}")
        (tmp_path / unit.name).write_text(text)


@needs_systemd_analyze
def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    _moved(tmp_path)
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", SERVICE.name, TIMER.name],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr


@needs_systemd_analyze
def test_service_is_hardened() -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SERVICE)],
        capture_output=True, text=True, timeout=60, cwd=SYSTEMD,
    )  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


@needs_systemd_analyze
def test_timer_fires_on_mondays_at_half_past_six() -> None:
    spec = re.search(r"(?m)^OnCalendar=(.+)$", TIMER.read_text())
    assert spec
    r = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=3", spec.group(1)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    nexts = re.findall(r"(?:Next elapse|Iter\. #\d): (\w{3}) \S+ (\d\d:\d\d:\d\d)", r.stdout)
    assert [n for n in nexts] == [("Mon", "06:30:00")] * 3, r.stdout
    assert re.search(r"(?m)^Persistent=true$", TIMER.read_text())


def test_exec_start_is_the_weekly_command() -> None:
    line = re.search(r"(?m)^ExecStart=(.+)$", SERVICE.read_text())
    assert line
    argv = shlex.split(line.group(1))
    assert argv[1:] == ["notify", "weekly", "--config", "/etc/student-monitor"]
    assert argv[0].endswith("/.venv/bin/monitor")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "monitor"), *argv[1:3], "--help"],
                       capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "--week" in r.stdout
