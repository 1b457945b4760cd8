"""Every command × bad inputs: one clear ``Error: …`` message naming the file (and line), a
non-zero exit status, no traceback, and a bounded length however long the offending value.

Rows marked ``regression`` already behaved before the error handling was centralised; the
others printed a traceback, hung on a FIFO, expanded an alias bomb or echoed a whole value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from badfiles import (
    ALIASES,
    billion_laughs,
    deep_block,
    deep_flow,
    fifo_watchdog,
    replace_with_fifo,
)
from click.testing import CliRunner, Result
from oneroster_factory import set_cell, write_district

from monitor.cli import main
from monitor.yamlfile import MAX_CONFIG_BYTES, MAX_MESSAGE_CHARS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = ROOT / "tests" / "data" / "policy_example.yaml"
LONG = "x" * 200_000
LONG_SHOWN = "x" * 100 + "… (200000 characters)"
MAX_STDERR = 4000  # a few lines, whatever the input
NOT_REGULAR = "not a regular file (a FIFO, socket or device?)"


@pytest.fixture
def district(tmp_path: Path) -> Path:
    d = tmp_path / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


@dataclass(frozen=True)
class Setup:
    args: list[str]
    bad: Path  # the offending file
    expect: list[str]  # fragments of standard error
    code: int = 1


Case = Callable[[Path, Path], Setup]  # (tmp_path, district directory) → what to run
CASES: dict[str, Case] = {}
REGRESSION: set[str] = set()


def case(name: str, *, regression: bool = False) -> Callable[[Case], Case]:
    def add(fn: Case) -> Case:
        CASES[name] = fn
        if regression:
            REGRESSION.add(name)
        return fn

    return add


def put(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_with_fifo(path)
    return path


# ---------------------------------------------------------------- policy check


def _policy(bad: Path, *expect: str, code: int = 1) -> Setup:
    return Setup(["policy", "check", str(bad)], bad, list(expect), code)


@case("policy-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", billion_laughs())
    return _policy(p, f"{p}:1: {ALIASES}")


@case("policy-deep-flow")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", deep_flow())
    return _policy(p, f"{p}:1: invalid YAML: ", "nesting depth")


@case("policy-deep-block")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", deep_block())
    return _policy(p, f"{p}:65: nested more than 64 levels deep")


@case("policy-bad-date")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", "district: x\nclosed:\n  - 2025-13-45\n")
    return _policy(p, f"{p}:3: '2025-13-45' is not a valid timestamp (month must be in 1..12)")


@case("policy-huge-int")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", "dedupe_window: " + "9" * 5000 + "\n")
    return _policy(p, f"{p}:1: '{'9' * 100}… (5000 characters)' is not a valid int")


@case("policy-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(t / "policy.yaml")
    return _policy(p, f"{p}: cannot read file: {NOT_REGULAR}")


@case("policy-too-large")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", "#\n" * (MAX_CONFIG_BYTES // 2 + 1))
    return _policy(p, f"{p}: cannot read file: is ", "more than the 1 MiB")


@case("policy-long-value")
def _(t: Path, d: Path) -> Setup:
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    p = put(t / "policy.yaml", text.replace("approved: [youtube]", f"approved: [{LONG}]"))
    return _policy(p, f"field 'approved[0]': unknown platform '{LONG_SHOWN}': not in the catalogue")


@case("policy-not-utf8", regression=True)
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", b"district: \xff\xfe\n")
    return _policy(p, f"{p}: not UTF-8 text (byte 10)")


@case("policy-missing", regression=True)
def _(t: Path, d: Path) -> Setup:
    p = t / "nope.yaml"
    return _policy(p, f"{p}: cannot read file: No such file or directory")


@case("policy-directory", regression=True)
def _(t: Path, d: Path) -> Setup:
    return _policy(t, "is a directory", code=2)


# ---------------------------------------------------------------- catalogue and classify


@case("catalog-check-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "cat.yaml", billion_laughs("platforms"))
    return Setup(["catalog", "check", str(p)], p, [f"{p}:1: {ALIASES}"])


@case("catalog-check-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "cat.yaml", deep_flow("platforms"))
    return Setup(["catalog", "check", str(p)], p, [f"{p}:1: invalid YAML"])


@case("catalog-check-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(t / "cat.yaml")
    return Setup(["catalog", "check", str(p)], p, [f"{p}: cannot read file: {NOT_REGULAR}"])


@case("catalog-check-long-host")
def _(t: Path, d: Path) -> Setup:
    p = put(
        t / "cat.yaml",
        "platforms:\n  - id: longhost\n    name: L\n    owner: O\n    category: social\n"
        f"    suffixes: [{LONG}.example]\n",
    )
    return Setup(
        ["catalog", "check", str(p)],
        p,
        [f"{p}:6: entry 'longhost': field 'suffixes': '{'x' * 100}… (200008 characters)' is not"],
    )


@case("classify-catalog-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "cat.yaml", billion_laughs())
    return Setup(["classify", "--catalog", str(p), "www.tiktok.com"], p, [f"{p}:1: {ALIASES}"])


@case("catalog-list-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "cat.yaml", deep_block())
    return Setup(["catalog", "list", "--catalog", str(p)], p, [f"{p}:65: nested more than"])


# ---------------------------------------------------------------- explain --config


def _explain(d: Path, bad: Path, *expect: str) -> Setup:
    args = ["explain", "--config", str(d), "--client", "127.0.0.11", "--host", "www.tiktok.com"]
    return Setup(args, bad, list(expect))


@case("explain-district-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", billion_laughs("roster"))
    return _explain(d, p, f"{p}:1: {ALIASES}")


@case("explain-district-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", deep_block())
    return _explain(d, p, f"{p}:65: nested more than 64 levels deep")


@case("explain-district-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(d / "district.yaml")
    return _explain(d, p, f"{p}: cannot read file: {NOT_REGULAR}")


@case("explain-policy-bad-date")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "policy.yaml", "closed: [2025-13-45]\n")
    return _explain(d, p, f"{p}:1: '2025-13-45' is not a valid timestamp")


@case("explain-users-csv-directory")
def _(t: Path, d: Path) -> Setup:
    p = d / "roster" / "users.csv"
    p.unlink()
    p.mkdir()
    return _explain(d, p, f"{p}: is a directory: expected a CSV file")


@case("explain-users-csv-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(d / "roster" / "users.csv")
    return _explain(d, p, f"{p}: is not a regular file (a FIFO, socket or device?)")


@case("explain-devices-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(d / "devices.csv")
    return _explain(d, p, f"{p}: cannot read file: {NOT_REGULAR}")


@case("explain-leases-directory")
def _(t: Path, d: Path) -> Setup:
    p = d / "leases" / "kea-leases4.csv"
    p.unlink()
    p.mkdir()
    return _explain(d, p, f"{p}: cannot read file: is a directory, not a file")


@case("explain-pseudonym-key-directory")
def _(t: Path, d: Path) -> Setup:
    p = d / "state" / "pseudonym.key"
    p.mkdir(parents=True)
    return _explain(d, p, f"{p}: cannot read the pseudonym key: is a directory, not a file")


# ---------------------------------------------------------------- override


@case("override-store-deep-json")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "overrides.json", "[" * 100_000 + "]" * 100_000)
    return Setup(
        ["override", "list", "--store", str(p)], p, [f"{p}: invalid JSON: nested too deeply"]
    )


@case("override-store-not-utf8")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "overrides.json", b'{"version": 1, "overrides": ["\xff"]}')
    return Setup(["override", "list", "--store", str(p)], p, [f"{p}: not UTF-8 text (byte 30)"])


@case("override-store-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(t / "overrides.json")
    return Setup(
        ["override", "list", "--store", str(p)], p, [f"{p}: cannot read file: {NOT_REGULAR}"]
    )


@case("override-grant-policy-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(t / "policy.yaml", billion_laughs())
    args = ["override", "grant", "--store", str(t / "o.json"), "--teacher", "tch-1",
            "--platform", "youtube", "--student", "stu-1", "--minutes", "5", "--policy", str(p)]  # fmt: skip
    return Setup(args, p, [f"{p}:1: {ALIASES}"])


@case("override-list-config-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", deep_flow("roster"))
    return Setup(["override", "list", "--config", str(d)], p, [f"{p}:1: invalid YAML"])


# ---------------------------------------------------------------- incidents and users


@case("incidents-list-district-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", billion_laughs("store"))
    return Setup(["incidents", "list", "--config", str(d)], p, [f"{p}:1: {ALIASES}"])


@case("incidents-list-district-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", deep_block())
    return Setup(["incidents", "list", "--config", str(d)], p, [f"{p}:65: nested more than"])


@case("incidents-purge-retention-long-period")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "retention.yaml", f"retention:\n  incidents: {LONG}\n")
    return Setup(
        ["incidents", "purge", "--config", str(d), "--dry-run"],
        p,
        [f"{p}:2: field 'retention.incidents': '{LONG_SHOWN}' is not a period"],
    )


@case("incidents-purge-retention-fifo")
def _(t: Path, d: Path) -> Setup:
    p = fifo(d / "retention.yaml")
    return Setup(
        ["incidents", "purge", "--config", str(d), "--dry-run"],
        p,
        [f"{p}: cannot read file: {NOT_REGULAR}"],
    )


@case("incidents-purge-retention-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "retention.yaml", billion_laughs("retention"))
    return Setup(["incidents", "purge", "--config", str(d), "--dry-run"], p, [f"{p}:1: {ALIASES}"])


@case("incidents-list-db-in-missing-directory", regression=True)
def _(t: Path, d: Path) -> Setup:
    p = t / "missing" / "incidents.sqlite"
    return Setup(["incidents", "list", "--db", f"sqlite:///{p}"], p, [f"{p}"])


@case("users-list-district-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", deep_flow("store"))
    return Setup(["users", "list", "--config", str(d)], p, [f"{p}:1: invalid YAML"])


@case("users-add-policy-alias-bomb")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "policy.yaml", billion_laughs())
    args = ["users", "add", "c1", "--role", "counselor", "--school", "hs", "--config", str(d),
            "--password-stdin"]  # fmt: skip
    return Setup(args, p, [f"{p}:1: {ALIASES}"])


# ---------------------------------------------------------------- roster check


@case("roster-users-csv-directory")
def _(t: Path, d: Path) -> Setup:
    write_district(t / "r")
    p = t / "r" / "users.csv"
    p.unlink()
    p.mkdir()
    return Setup(
        ["roster", "check", str(t / "r")], p, [f"error: {p}: is a directory: expected a CSV file"]
    )


@case("roster-users-csv-fifo")
def _(t: Path, d: Path) -> Setup:
    write_district(t / "r")
    p = fifo(t / "r" / "users.csv")
    return Setup(["roster", "check", str(t / "r")], p, [f"error: {p}: is {NOT_REGULAR}"])


@case("roster-manifest-directory")
def _(t: Path, d: Path) -> Setup:
    write_district(t / "r")
    p = t / "r" / "manifest.csv"
    p.unlink()
    p.mkdir()
    return Setup(
        ["roster", "check", str(t / "r")], p, [f"error: {p}: is a directory: expected a CSV file"]
    )


@case("roster-long-repeated-sourcedid")
def _(t: Path, d: Path) -> Setup:
    fake = write_district(t / "r")
    p = t / "r" / "users.csv"
    first, second = fake.students[0].username, fake.students[1].username
    long = "x" * 100_000  # under the CSV module's field size limit
    set_cell(p, first, "sourcedId", long, key_column="username")
    line = set_cell(p, second, "sourcedId", long, key_column="username")
    shown = "x" * 100 + "… (100000 characters)"
    return Setup(
        ["roster", "check", str(t / "r")],
        p,
        [f"error: {p}:{line}: sourcedId: '{shown}' repeats (first on line"],
    )


@case("roster-not-utf8", regression=True)
def _(t: Path, d: Path) -> Setup:
    write_district(t / "r")
    p = t / "r" / "users.csv"
    p.write_bytes(p.read_bytes() + b"\xff\n")
    return Setup(["roster", "check", str(t / "r")], p, [f"error: {p}:", "is not UTF-8"])


# ---------------------------------------------------------------- sensor


@case("sensor-config-district-deep")
def _(t: Path, d: Path) -> Setup:
    p = put(d / "district.yaml", deep_flow("roster"))
    return Setup(
        ["sensor", "--pcap", str(t / "x.pcap"), "--config", str(d)], p, [f"{p}:1: invalid YAML"]
    )


@case("sensor-pcap-missing", regression=True)
def _(t: Path, d: Path) -> Setup:
    p = t / "nope.pcap"
    return Setup(["sensor", "--pcap", str(p)], p, [f"{p}: cannot open: No such file"])


@case("sensor-pcap-directory", regression=True)
def _(t: Path, d: Path) -> Setup:
    return Setup(["sensor", "--pcap", str(t)], t, ["is a directory"], code=2)


@case("sensor-pcap-not-a-capture", regression=True)
def _(t: Path, d: Path) -> Setup:
    p = put(t / "x.pcap", "hello, not a capture\n")
    return Setup(["sensor", "--pcap", str(p)], p, [f"{p}: not a pcap or pcapng file"])


# ---------------------------------------------------------------- the table


def invoke(args: list[str], bad: Path) -> Result:
    # a FIFO that a regression opens for reading is released after a while: the test then
    # fails on ``released`` instead of hanging
    with fifo_watchdog(bad) as released:
        result = CliRunner().invoke(main, args, input="pw\n")
    assert not released, "the command waited for a writer on a FIFO"
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_clear_error(name: str, tmp_path: Path, district: Path) -> None:
    setup = CASES[name](tmp_path, district)
    result = invoke(setup.args, setup.bad)
    err = result.stderr
    # handled: click printed the error and exited; an escaped exception would be stored here
    assert isinstance(result.exception, SystemExit), (result.exception, err[-1000:])
    assert result.exit_code == setup.code, err[-1000:]
    assert "Traceback" not in result.output
    assert "Error: " in err
    for fragment in setup.expect:
        assert fragment in err, err[-2000:]
    assert len(err) < MAX_STDERR, err[:2000]
    assert max(len(line) for line in err.splitlines()) < MAX_MESSAGE_CHARS + 400


# ---------------------------------------------------------------- real processes


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "name", ["explain-district-deep", "roster-users-csv-directory", "policy-bad-date"]
)
def test_no_traceback_on_real_standard_error(name: str, tmp_path: Path, district: Path) -> None:
    setup = CASES[name](tmp_path, district)
    r = run(*setup.args)
    assert r.returncode == setup.code
    assert "Traceback" not in r.stderr and "Error: " in r.stderr
    for fragment in setup.expect:
        assert fragment in r.stderr


# ---------------------------------------------------------------- unexpected exceptions


def _boom(*args: object, **kwargs: object) -> object:
    raise KeyError("a bug")


def test_an_unexpected_exception_is_one_line_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MONITOR_DEBUG", raising=False)
    monkeypatch.setattr("monitor.cli.classify.Classifier", _boom)
    result = CliRunner().invoke(main, ["classify", "www.tiktok.com"])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 70
    assert result.stderr == (
        "Error: internal error: KeyError: 'a bug' (run with MONITOR_DEBUG=1 for the traceback)\n"
    )


def test_monitor_debug_lets_the_traceback_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DEBUG", "1")
    monkeypatch.setattr("monitor.cli.classify.Classifier", _boom)
    result = CliRunner().invoke(main, ["classify", "www.tiktok.com"])
    assert isinstance(result.exception, KeyError)


def test_keyboard_interrupt_is_not_an_error_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("monitor.cli.classify.Classifier", interrupted)
    result = CliRunner().invoke(main, ["classify", "www.tiktok.com"])
    assert result.exit_code == 1 and "Aborted!" in result.stderr
    assert "Error:" not in result.stderr


def test_a_long_click_error_is_shortened(tmp_path: Path) -> None:
    store = tmp_path / "o.json"
    result = CliRunner().invoke(
        main, ["override", "revoke", LONG, "--by", "tch-1", "--store", str(store)]
    )
    message = f"no override with id '{LONG}'"
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {message[:MAX_MESSAGE_CHARS]}… ({len(message)} characters)\n")
