"""`monitor roster check` and `monitor roster diff` through the real command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from oneroster_factory import (
    add_row,
    read_csv,
    set_cell,
    tombstone,
    write_csv,
    write_delta,
    write_district,
)

from monitor.people.roster import load_roster


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


def test_roster_check_summarises_deviations_then_details(tmp_path: Path) -> None:
    d = write_district(tmp_path / "r", students=10, teachers=1)
    users, rows = read_csv(tmp_path / "r" / "users.csv")
    i = users.index("enabledUser")
    for row in rows:
        row[i] = row[i].upper()
    write_csv(tmp_path / "r" / "users.csv", users, rows)
    line = set_cell(tmp_path / "r" / "demographics.csv", "stu-0002", "birthDate", "2011-02-30")

    r = run("roster", "check", str(tmp_path / "r"))

    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert f"problems: 1 skipped, {len(d.people)} warnings" in out
    start = out.index("summary (rows per kind of problem):")
    assert out[start + 1].split() == [
        "warning", "boolean", str(len(d.people)), "true/false", "written", "another", "way",
        "(TRUE,", "1,", "0)",
    ]  # fmt: skip
    assert out[start + 2].split() == ["skipped", "other", "1"]
    assert out[start + 3] == "details:"
    assert (
        out[start + 4].startswith("  warning: ")
        and "'TRUE' read as true (first of" in out[start + 4]
    )
    assert out[start + 5].startswith(f"  skipped: {tmp_path / 'r' / 'demographics.csv'}:{line}:")


def test_roster_check_rejected_lists_errors_first_with_a_summary(tmp_path: Path) -> None:
    write_district(tmp_path / "r", students=5, teachers=1)
    (tmp_path / "r" / "manifest.csv").unlink()  # a warning
    users = tmp_path / "r" / "users.csv"
    users.write_text(users.read_text().replace(",", ";"))
    r = run("roster", "check", str(tmp_path / "r"))
    assert r.returncode == 1
    err = r.stderr.splitlines()
    start = err.index("summary (rows per kind of problem):")
    assert [line.split()[:3] for line in err[start + 1 : start + 3]] == [
        ["error", "other", "1"],
        ["warning", "other", "1"],
    ]
    details = err[err.index("details:") + 1 :]
    assert details[0].startswith("  error: ") and "users.csv:1" in details[0]
    assert details[1].startswith("  warning: ") and "manifest.csv" in details[1]


def _changed_district(tmp_path: Path) -> tuple[Path, Path]:
    old = write_district(tmp_path / "old", students=12, teachers=2, version="1.2")
    write_district(tmp_path / "new", students=12, teachers=2, version="1.2")
    new = tmp_path / "new"
    # stu-0001 leaves, stu-0002 moves school and grade, stu-0003 turns out older (band change),
    # tch-0001 becomes an administrator; a new student arrives
    for name in ("users.csv", "roles.csv", "demographics.csv"):
        header, rows = read_csv(new / name)
        key = header.index("userSourcedId") if name == "roles.csv" else 0
        write_csv(new / name, header, [r for r in rows if r[key] != "stu-0001"])
    set_cell(new / "users.csv", "stu-0002", "grades", "11")
    set_cell(new / "users.csv", "stu-0002", "primaryOrgSourcedId", "sch-1")
    set_cell(new / "roles.csv", "role-stu-0002", "orgSourcedId", "sch-1")
    set_cell(new / "demographics.csv", "stu-0003", "birthDate", "2005-01-01")
    set_cell(new / "roles.csv", "role-tch-0001", "role", "administrator")
    add_row(
        new / "users.csv",
        {"sourcedId": "stu-0100", "enabledUser": "true", "username": "student0100",
         "givenName": "Student0100", "familyName": "Testperson", "primaryOrgSourcedId": "sch-2"},
    )  # fmt: skip
    add_row(
        new / "roles.csv",
        {"sourcedId": "role-stu-0100", "userSourcedId": "stu-0100", "roleType": "primary",
         "role": "student", "orgSourcedId": "sch-2"},
    )  # fmt: skip
    assert old.person("stu-0003").birth_date is not None
    return old.directory, new


def test_roster_diff_names_sourced_ids_only(tmp_path: Path) -> None:
    old, new = _changed_district(tmp_path)
    r = run("roster", "diff", str(old), str(new), "--on", "2025-09-01", "--format", "json")
    assert r.returncode == 1, r.stderr  # something changed
    out = json.loads(r.stdout)
    assert out["people"] == {"old": 14, "new": 14}
    assert out["added"] == ["stu-0100"] and out["removed"] == ["stu-0001"]
    changed = out["changed"]
    # stu-0002 keeps the school of its classes (enrollments) beside its new primary org
    assert changed["stu-0002"] == ["school TS2 → TS1, TS2", "grade 12 → 11"]
    assert changed["tch-0001"] == ["role teacher → administrator"]
    assert changed["stu-0003"] == ["birthDate changed", "age band under13 → adult"]
    assert out["by_role"]["administrator"] == {"old": 0, "new": 1}
    assert out["by_role"]["teacher"] == {"old": 2, "new": 1}
    assert out["age_band_changes"] == {"under13 → adult": 1}
    assert out["by_age_band"]["unknown"] == {"old": 0, "new": 1}  # stu-0100 has no birthDate

    text = run("roster", "diff", str(old), str(new), "--on", "2025-09-01")
    assert text.returncode == 1
    assert "people: 14 → 14: 1 added, 1 removed, 3 changed" in text.stdout
    assert "  stu-0003: birthDate changed; age band under13 → adult" in text.stdout
    assert "  adult                        1 →       2  (+1)" in text.stdout
    for secret in ("Student0002", "Testperson", "student0002", "2005-01-01"):
        assert secret not in text.stdout  # names, usernames and birthDates are never printed


def test_roster_diff_of_identical_rosters_exits_0(tmp_path: Path) -> None:
    write_district(tmp_path / "a")
    write_district(tmp_path / "b")
    r = run("roster", "diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "0 added, 0 removed, 0 changed" in r.stdout


def test_roster_check_config_applies_deltas_read_only_and_diff_reads_the_state(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    d = tmp_path / "district"
    shutil.copytree(root / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    load_roster(d / "roster", state=d / "state" / "roster")  # what the proxy keeps at start
    later = "2026-10-14T06:00:00Z"
    write_delta(
        d / "roster" / "delta-1", "1.2", {"users.csv": [tombstone("stu-00002", later)]}, when=later
    )
    before = (d / "state" / "roster" / "state.json").read_text()

    r = run("roster", "check", "--config", str(d), "--on", "2026-10-13")

    assert r.returncode == 0, r.stderr
    assert "delta exports applied: 1" in r.stdout
    assert f"  {d / 'roster' / 'delta-1'}: newest {later}, 0 added or replaced, 1 deleted" in (
        r.stdout
    )
    assert (d / "state" / "roster" / "state.json").read_text() == before  # read only

    load_roster(d / "roster", state=d / "state" / "roster")  # the proxy applies it
    shutil.rmtree(d / "roster" / "delta-1")  # and the district clears applied deltas away
    r = run("roster", "diff", str(d / "roster"), str(d / "state" / "roster"), "--format", "json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["removed"] == ["stu-00002"]
