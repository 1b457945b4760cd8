"""deploy/logrotate/student-monitor with the real logrotate: it parses without an error, it
rotates a file a writer keeps appending to (as systemd's StandardOutput=append: does) without
losing the writer, and it never touches the incident journal or spool."""

from __future__ import annotations

import fnmatch
import grp
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "logrotate" / "student-monitor"
LOGDIR = "/var/log/student-monitor"

pytestmark = pytest.mark.skipif(
    shutil.which("logrotate") is None and not Path("/usr/sbin/logrotate").exists(),
    reason="logrotate not installed (scripts/test installs Debian's logrotate)",
)


def logrotate() -> str:
    return shutil.which("logrotate") or "/usr/sbin/logrotate"


def moved(tmp_path: Path) -> Path:
    """The shipped file with the log folder in ``tmp_path`` and ``su`` this test's user (the
    service user 'monitor' exists on a gateway, not here)."""
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    text = CONFIG.read_text().replace(LOGDIR, str(tmp_path / "log"))
    text = text.replace("su monitor monitor", f"su {me} {group}")
    conf = tmp_path / "student-monitor"
    conf.write_text(text)
    conf.chmod(0o644)
    (tmp_path / "log").mkdir(mode=0o750)
    return conf


def patterns() -> list[str]:
    head = CONFIG.read_text().split("{", 1)[0]
    return [w for line in head.splitlines() if not line.startswith("#") for w in line.split()]


def test_only_log_files_match_never_the_incident_journal_or_spool() -> None:
    globs = patterns()
    assert globs and all(g.startswith(LOGDIR + "/") for g in globs)
    for name in ("sensor.jsonl", "proxy.log"):
        assert any(fnmatch.fnmatch(f"{LOGDIR}/{name}", g) for g in globs)
    state = "/var/lib/student-monitor"  # the units' state directory
    for name in ("incident-journal-w0.jsonl", "incident-spool-w0.jsonl", "incident-spool.jsonl"):
        assert not any(fnmatch.fnmatch(f"{state}/{name}", g) for g in globs)


def test_debug_run_has_no_error(tmp_path: Path) -> None:
    conf = moved(tmp_path)
    (tmp_path / "log" / "sensor.jsonl").write_text('{"host": "www.example.org"}\n')
    r = subprocess.run(
        [logrotate(), "-d", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not re.search(r"(?m)^error:", out), out
    assert "Handling 1 logs" in out
    assert re.search(r"rotating pattern: .*sensor\.jsonl|considering log .*sensor\.jsonl", out)


def test_forced_rotation_keeps_the_writer(tmp_path: Path) -> None:
    conf = moved(tmp_path)
    log = tmp_path / "log" / "sensor.jsonl"
    # a writer appending a line every 20 ms on its own O_APPEND descriptor, like systemd's
    # StandardOutput=append:
    writer = subprocess.Popen(
        [
            "sh",
            "-c",
            f'i=0; while :; do i=$((i+1)); echo "{{\\"n\\": $i}}"; sleep 0.02; done >> {log}',
        ]
    )
    try:
        time.sleep(0.5)
        r = subprocess.run(
            [logrotate(), "-f", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(0.5)
    finally:
        writer.kill()
        writer.wait()
    rotated = tmp_path / "log" / "sensor.jsonl.1"  # delaycompress: the newest stays plain
    assert rotated.exists(), sorted(p.name for p in log.parent.iterdir())
    old = [int(line.split(":")[1].strip(" }")) for line in rotated.read_text().splitlines()]
    data = log.read_bytes()
    assert b"\0" not in data  # O_APPEND: no hole where the old end was
    new = [int(line.split(b":")[1].strip(b" }")) for line in data.splitlines()]
    assert old and new and new[0] > old[-1]  # the writer went on, in the fresh file
