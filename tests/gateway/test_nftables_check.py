"""`monitor gateway nftables --check`: the real nft checks the generated ruleset against the
kernel and the tables already loaded, in a network namespace of the test's own; a rejected
ruleset is not written, and the error names the ruleset line, quotes it and says what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from netns import lab

from monitor.gateway.nftables import explain_nft_errors

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["gateway", "nftables", "--mode", "transparent", "--workers", "2", "--lan-if", "lan0"]
ARGS += ["--device-nets", "192.0.2.0/24"]
# a table an older ruleset (or an administrator) left behind: the set without timeouts
OLD_TABLE = "table inet student_monitor {\n\tset catalogue4 { type ipv4_addr; }\n}\n"


def test_nft_errors_name_and_quote_the_line() -> None:
    ruleset = "table inet student_monitor {\n\tset catalogue4 {\n\t\ttype ipv4_addr;\n\t}\n}\n"
    stderr = (
        "/dev/stdin:2:6-15: Error: Could not process rule: File exists\n"
        "\tset catalogue4 {\n\t    ^^^^^^^^^^\n"
    )
    (msg,) = explain_nft_errors(stderr, ruleset)
    assert msg.startswith("ruleset line 2: Could not process rule: File exists: set catalogue4 {")
    assert "already holds a set catalogue4" in msg
    assert "nft delete table inet student_monitor" in msg


def test_unparsed_nft_output_is_kept_whole() -> None:
    assert explain_nft_errors("netlink: Error: cannot open socket\n", "x") == [
        "ruleset: netlink: Error: cannot open socket"
    ]
    assert explain_nft_errors("", "x") == []


@pytest.mark.slow
def test_check_accepts_the_ruleset_then_rejects_it_over_an_older_table(tmp_path: Path) -> None:
    out = tmp_path / "transparent.nft"
    with lab() as the_lab:
        gw = the_lab.namespace("nftck")
        cmd = [sys.executable, "-m", "monitor", *ARGS, "--check", "--out", str(out)]
        ok = gw.run(cmd, check=False, cwd=ROOT)
        assert ok.returncode == 0, ok.stderr
        lines = out.read_text().splitlines()
        line = lines.index("\tset catalogue4 {") + 1
        assert gw.run(["nft", "list", "ruleset"]).stdout.strip() == ""  # nothing loaded
        out.unlink()
        gw.nft(OLD_TABLE)
        bad = gw.run(cmd, check=False, cwd=ROOT)
    assert bad.returncode == 1
    assert not out.exists() or out.read_text() == ""
    err = bad.stderr
    assert "nft rejected the ruleset" in err
    assert f"line {line}: Could not process rule: File exists: set catalogue4 {{" in err, err
    assert "nft delete table inet student_monitor" in err
