"""``monitor override`` on the district's store: --config (district.yaml's store), --db URL, the
standalone --store FILE, and clear errors when the store cannot be reached."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.district import shared_overrides

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)  # fmt: skip


@pytest.fixture
def district(tmp_path: Path) -> Path:
    d = tmp_path / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


GRANT = ("--teacher", "tch-0012", "--platform", "instagram", "--student", "stu-00555",
         "--minutes", "30")  # fmt: skip


def test_db_names_the_store_and_config_checks_the_roster(district: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'other.sqlite'}"
    r = run("override", "grant", "--config", str(district), "--db", db, *GRANT)
    assert r.returncode == 0, r.stderr
    # in the --db store, not the district's
    rows = json.loads(run("override", "list", "--db", db, "--format", "json").stdout)
    assert [row["target"] for row in rows] == ["student stu-00555"]
    assert json.loads(run("override", "list", "--config", str(district), "--format",
                          "json").stdout) == []  # fmt: skip
    # the roster check applies with --config
    bad = run("override", "grant", "--config", str(district), "--db", db, "--teacher",
              "tch-0012", "--platform", "instagram", "--student", "stu-99999", "--minutes", "5")  # fmt: skip
    assert bad.returncode == 1 and "--student stu-99999: no student" in bad.stderr
    # the rules of the store apply: an overlapping grant is refused and names the first one
    again = run("override", "grant", "--db", db, *GRANT, "--policy",
                str(district / "policy.yaml"))  # fmt: skip
    assert again.returncode == 1 and f"overlaps override {rows[0]['id']}" in again.stderr
    revoked = run("override", "revoke", "--db", db, rows[0]["id"], "--by", "tch-0012")
    assert revoked.returncode == 0, revoked.stderr
    all_rows = json.loads(run("override", "list", "--db", db, "--all", "--format", "json").stdout)
    assert all_rows[0]["status"].startswith("revoked by tch-0012")


def test_an_unreachable_store_is_one_clear_error(district: Path) -> None:
    url = "postgresql://monitor:s3cret@127.0.0.1:9/district"
    for args in (("list", "--db", url), ("grant", "--db", url, *GRANT),
                 ("revoke", "--db", url, "ov-1", "--by", "tch-0012")):  # fmt: skip
        r = run("override", *args)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith(
            "Error: incident store postgresql+psycopg://monitor:***@127.0.0.1:9/district: "
        ), r.stderr
        assert "s3cret" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list"], "give --config DIR, --db URL or --store FILE"),
        (["list", "--store", "x.json", "--db", "sqlite:///x"], "give --store FILE or --db URL"),
        (["list", "--db", "mysql://u@h/db"], "only sqlite:///path and postgresql"),
    ],
)
def test_usage(args: list[str], message: str) -> None:
    r = run("override", *args)
    assert r.returncode in (1, 2) and message in r.stderr, r.stderr


def test_store_file_stays_a_standalone_json_file(district: Path, tmp_path: Path) -> None:
    f = tmp_path / "mine.json"
    r = run("override", "grant", "--store", str(f), *GRANT, "--policy",
            str(district / "policy.yaml"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(f.read_text())["overrides"][0]["students"] == ["stu-00555"]
    book = shared_overrides(f"sqlite:///{district / 'state' / 'incidents.sqlite'}")
    try:
        assert book.load() == []  # the district's store did not get it
    finally:
        book.source.close()  # type: ignore[attr-defined]
