"""deploy/README.md says only what is there: every file and test it names exists, every
`monitor` command it shows exists with the options it uses, and each install step that ships a
file names the test that proves it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "deploy" / "README.md"
TEXT = README.read_text()


def test_every_link_and_named_file_exists() -> None:
    links = re.findall(r"\]\(([^)#:]+)\)", TEXT)
    assert links
    missing = [link for link in links if not (README.parent / link).exists()]
    named = set(re.findall(r"`((?:tests|deploy|dashboards)/[\w/@.-]+\.\w+)`", TEXT))
    named |= set(re.findall(r"/opt/student-monitor/((?:deploy|examples)/[\w/@.-]+)", TEXT))
    assert len(named) >= 10
    missing += sorted(n for n in named if not (ROOT / n).exists())
    assert not missing


def _commands() -> list[list[str]]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", TEXT, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            m = re.search(r"(?:^|/)monitor (\w+(?: \w+)?)(.*?)(?:$|&&|\||>)", line)
            if m and not line.startswith("#"):
                out.append(["monitor", *shlex.split(m.group(1) + m.group(2))])
    return out


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a[:3]))
def test_every_monitor_command_and_option_exists(argv: list[str]) -> None:
    words = [w for w in argv[1:] if not w.startswith("-")]
    group = main
    path = []
    for w in words:
        # get_command, not .commands: the monitor group loads its commands when asked
        cmd = group.get_command(click.Context(group), w) if isinstance(group, click.Group) else None
        if cmd is None:
            break
        path.append(w)
        group = cmd
    assert path, argv
    r = CliRunner().invoke(main, [*path, "--help"])
    assert r.exit_code == 0, r.output
    for opt in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
        assert opt in r.output, f"{' '.join(path)}: no option {opt}"


def test_each_step_that_ships_a_file_names_its_proof() -> None:
    steps = re.split(r"(?m)^## ", TEXT)
    for step in steps:
        title = step.splitlines()[0]
        if re.match(r"([4-9]|1[01])\. ", title):
            assert re.search(r"\*(Proved|Checked) by\*\s+`tests/", step), title
    assert "## What cannot run here" in TEXT
