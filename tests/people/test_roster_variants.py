"""Synthetic vendor variants (oneroster_factory.VARIANTS) through `monitor roster check` and the
loader, and tests generated from the 1EdTech binding's own column lists (oneroster_factory.HEADERS)
for both versions: every column in another case, in another order, or left out.

Each variant must load as exactly the roster of the clean export (people, schools, classes and
birthDates), with warnings of the kinds its deviations produce and nothing skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from oneroster_factory import HEADERS, VARIANTS, Variant, read_csv, write_csv, write_district

from monitor.people.roster import Roster, RosterError, load_roster

TODAY = date(2025, 9, 1)


def clean(tmp_path: Path, version: str) -> Roster:
    write_district(tmp_path / "clean", version=version, students=30, disabled=1, deleted=1)
    return load_roster(tmp_path / "clean", today=TODAY).roster


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_vendor_variant_loads_as_the_clean_export(tmp_path: Path, variant: Variant) -> None:
    expected = clean(tmp_path, variant.version)
    d = tmp_path / variant.name
    write_district(d, version=variant.version, students=30, disabled=1, deleted=1)
    variant.apply(d)

    result = load_roster(d, today=TODAY)

    assert result.roster.people == expected.people
    assert result.roster.classes == expected.classes
    assert result.roster.schools == expected.schools
    assert result.roster.disabled == expected.disabled
    assert {p.topic for p in result.problems} == set(variant.topics)
    assert {p.kind for p in result.problems} <= {"warning"}
    for p in result.problems:  # every deviation names its file, line and field
        assert p.file.startswith(str(d)) and p.line is not None and p.field


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_vendor_variant_through_roster_check(tmp_path: Path, variant: Variant) -> None:
    expected = clean(tmp_path, variant.version)
    d = tmp_path / variant.name
    write_district(d, version=variant.version, students=30, disabled=1, deleted=1)
    variant.apply(d)

    r = subprocess.run(
        [sys.executable, "-m", "monitor", "roster", "check", str(d), "--format", "json",
         "--on", TODAY.isoformat()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    counts = expected.counts(TODAY)
    assert out["people"] == counts.people and out["disabled"] == counts.disabled
    assert out["by_age_band"] == counts.by_age_band
    assert {s["topic"] for s in out["summary"]} == set(variant.topics)
    for s in out["summary"]:
        rows = sum(p["count"] for p in out["problems"] if p["topic"] == s["topic"])
        assert s["rows"] == rows and s["description"]


# -- generated from the binding's column lists -------------------------------------------------

COLUMNS = [
    (version, file, column)
    for version in ("1.1", "1.2")
    for file, columns in HEADERS[version].items()
    for column in columns
]
# What the monitor needs of each file (a subset of what the binding requires): without one of
# these the roster cannot be read as the district meant, and is refused.
NEEDED = {
    "orgs.csv": {"sourcedId", "name", "type"},
    "academicSessions.csv": {"sourcedId", "title", "type"},
    "users.csv": {"sourcedId", "enabledUser", "username", "givenName", "familyName"},
    "users.csv 1.1": {"orgSourcedIds", "role"},
    "demographics.csv": {"sourcedId"},
    "classes.csv": {"sourcedId", "title", "schoolSourcedId"},
    "enrollments.csv": {"sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"},
    "roles.csv": {"sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"},
    "userProfiles.csv": {"sourcedId", "userSourcedId"},
}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Roster]:
    out = {}
    for version in ("1.1", "1.2"):
        d = tmp_path_factory.mktemp(f"ref{version}")
        write_district(d, version=version, students=6, teachers=2)
        out[version] = load_roster(d, today=TODAY).roster
    return out


@pytest.mark.parametrize(("version", "file", "column"), COLUMNS, ids=[" ".join(c) for c in COLUMNS])
def test_every_column_in_upper_case_is_read(
    tmp_path: Path, references: dict[str, Roster], version: str, file: str, column: str
) -> None:
    write_district(tmp_path, version=version, students=6, teachers=2)
    header, rows = read_csv(tmp_path / file)
    header[header.index(column)] = column.upper()
    write_csv(tmp_path / file, header, rows)

    result = load_roster(tmp_path, today=TODAY)

    assert result.roster.people == references[version].people
    assert result.roster.classes == references[version].classes
    assert [(Path(p.file).name, p.line, p.field, p.kind) for p in result.problems] == [
        (file, 1, column.upper(), "warning")
    ]
    assert result.problems[0].message.startswith(f"read as '{column}'")


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_columns_in_any_order(tmp_path: Path, references: dict[str, Roster], version: str) -> None:
    write_district(tmp_path, version=version, students=6, teachers=2)
    for file in HEADERS[version]:
        header, rows = read_csv(tmp_path / file)
        write_csv(tmp_path / file, header[::-1], [r[::-1] for r in rows])
    result = load_roster(tmp_path, today=TODAY)
    assert result.problems == []
    assert result.roster.people == references[version].people


@pytest.mark.parametrize(("version", "file", "column"), COLUMNS, ids=[" ".join(c) for c in COLUMNS])
def test_every_column_left_out(
    tmp_path: Path, references: dict[str, Roster], version: str, file: str, column: str
) -> None:
    write_district(tmp_path, version=version, students=6, teachers=2)
    header, rows = read_csv(tmp_path / file)
    i = header.index(column)
    write_csv(tmp_path / file, header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])
    needed = NEEDED[file] | (
        NEEDED["users.csv 1.1"] if (file, version) == ("users.csv", "1.1") else set()
    )

    if column in needed:
        with pytest.raises(RosterError) as e:
            load_roster(tmp_path, today=TODAY)
        errors = [p for p in e.value.problems if p.kind == "error"]
        assert [(Path(p.file).name, p.line, p.field) for p in errors] == [(file, 1, column)]
        assert errors[0].message.startswith("required column is missing")
        return
    result = load_roster(tmp_path, today=TODAY)
    ref = references[version]
    assert set(result.roster.people) <= set(ref.people)
    assert all(p.kind != "error" for p in result.problems)
    read = {("demographics.csv", "birthDate"), ("users.csv", "grades"), ("users.csv", "email")}
    if (file, column) not in read:
        # a column the monitor does not read changes nothing
        assert result.roster.people == ref.people, column
    if (file, column) == ("users.csv", "email"):  # sign-in by email finds nobody: nothing else
        assert all(p.email == "" for p in result.roster.people.values())
