"""Progress on long commands: shown on a terminal (a pty made here), silent when standard
error is a pipe or with --quiet, and never mixed into standard output."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MONITOR = [sys.executable, "-m", "monitor"]
PCAP = ROOT / "tests" / "sensor" / "data" / "tunnels.pcap"
ROSTER = ROOT / "examples" / "district" / "roster"
COUNT = [
    sys.executable, "-c",
    "from monitor.progress import track\n"
    "import sys\n"
    "n = sum(1 for _ in track(range(40), 'counting things'))\n"
    "print('done', n)\n",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_QUIET"}
    env.update(COLUMNS="120", TERM="xterm-256color", PYTHONPATH=str(ROOT))
    return env


def on_terminal(cmd: list[str]) -> tuple[str, str]:
    """Run ``cmd`` with standard error on a pty (standard output a pipe): (stdout, the
    terminal's text)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                                env=_env(), cwd=ROOT)  # fmt: skip
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert proc.wait(60) == 0
        if proc.stdout:
            proc.stdout.close()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return out, b"".join(chunks).decode("utf-8", "replace")


def piped(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60,
                          check=True)  # fmt: skip


def test_progress_shows_on_a_terminal_with_count_and_percent() -> None:
    out, term = on_terminal(COUNT)
    assert out == "done 40\n"  # standard output untouched
    assert "counting things" in term
    assert "40/40" in term and "100%" in term


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    r = piped(COUNT)
    assert r.stdout == "done 40\n"
    assert r.stderr == ""


def test_progress_is_silent_with_monitor_quiet() -> None:
    env_cmd = ["env", "MONITOR_QUIET=1", *COUNT]
    _out, term = on_terminal(env_cmd)
    assert "counting things" not in term


def test_sensor_pcap_shows_what_it_reads_on_a_terminal_only() -> None:
    cmd = [*MONITOR, "sensor", "--pcap", str(PCAP)]
    out, term = on_terminal(cmd)
    assert f"reading {PCAP.name}" in term and "100%" in term
    assert out and f"reading {PCAP.name}" not in out
    r = piped(cmd)
    assert r.stdout == out and r.stderr == ""
    _out, term = on_terminal([*cmd, "--quiet"])
    assert "reading" not in term


def test_roster_check_shows_a_spinner_on_a_terminal_only() -> None:
    cmd = [*MONITOR, "roster", "check", str(ROSTER)]
    out, term = on_terminal(cmd)
    assert f"loading roster {ROSTER}" in term.replace("\r\n", "")
    assert "people:" in out
    r = piped(cmd)
    assert "loading roster" not in r.stderr


def test_store_migration_and_purge_show_what_they_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    migrate = [sys.executable, "-c",
               f"from monitor.incidents.store.migrations import upgrade; print(upgrade({url!r}))"]  # fmt: skip
    out, term = on_terminal(migrate)
    assert "migrating the incident store to revision" in term
    out_again, term = on_terminal(migrate)  # at the newest revision: nothing to show
    assert out_again == out and "migrating" not in term
    purge = [*MONITOR, "incidents", "purge", "--db", url, "--dry-run"]
    out, term = on_terminal(purge)
    assert "counting what is due" in term and "0 incidents" in out
    _out, term = on_terminal([*purge, "--quiet"])
    assert "counting" not in term
    assert piped(purge).stderr == ""
