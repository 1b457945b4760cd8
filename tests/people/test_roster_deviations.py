"""Rosters as exports really write them: each deviation from the OneRoster CSV binding that is
read with a warning (saying file, line, field and what was assumed), and those that stay refused.

All rosters are synthetic, written to tmp_path by oneroster_factory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from oneroster_factory import add_row, read_csv, set_cell, write_csv, write_district

from monitor.people.roster import Problem, Roster, RosterError, load_roster

TODAY = date(2025, 9, 1)


def rename(path: Path, old: str, new: str) -> None:
    header, rows = read_csv(path)
    header[header.index(old)] = new
    write_csv(path, header, rows)


def at(problems: list[Problem], path: Path, line: int | None, field: str) -> list[Problem]:
    return [p for p in problems if (p.file, p.line, p.field) == (str(path), line, field)]


def one(problems: list[Problem], path: Path, line: int | None, field: str) -> Problem:
    hits = at(problems, path, line, field)
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


# -- the manifest ------------------------------------------------------------------------------


def test_an_empty_manifest_value_is_taken_from_the_file_present(tmp_path: Path) -> None:
    district = write_district(tmp_path, version="1.2")
    manifest = tmp_path / "manifest.csv"
    users = set_cell(manifest, "file.users", "value", "", key_column="propertyName")
    (tmp_path / "demographics.csv").unlink()
    demo = set_cell(manifest, "file.demographics", "value", "", key_column="propertyName")

    result = load_roster(tmp_path, today=TODAY)

    assert len(result.roster.people) == len(district.people)
    p = one(result.problems, manifest, users, "file.users")
    assert (p.kind, p.topic) == ("warning", "manifest")
    assert p.message == "is empty: users.csv is there, so it is read as bulk"
    p = one(result.problems, manifest, demo, "file.demographics")
    assert p.message == "is empty: demographics.csv is not there, so it is read as absent"
    # absent, not bulk: a missing bulk file would be an error
    assert all(p.kind != "error" for p in result.problems)


def test_an_empty_manifest_value_beside_delta_files_is_an_error(tmp_path: Path) -> None:
    write_district(tmp_path)
    manifest = tmp_path / "manifest.csv"
    set_cell(manifest, "file.enrollments", "value", "delta", key_column="propertyName")
    line = set_cell(manifest, "file.users", "value", "", key_column="propertyName")
    with pytest.raises(RosterError) as e:
        load_roster(tmp_path, today=TODAY)
    p = one(e.value.problems, manifest, line, "file.users")
    assert p.kind == "error" and "could be the whole table (bulk) or changes only" in p.message


# -- column names ------------------------------------------------------------------------------


def test_demographics_keyed_by_user_sourced_id(tmp_path: Path) -> None:
    district = write_district(tmp_path)
    demographics = tmp_path / "demographics.csv"
    rename(demographics, "sourcedId", "userSourcedId")

    result = load_roster(tmp_path, today=TODAY)

    for fake in district.people:
        assert result.roster.people[fake.sourced_id].birth_date == fake.birth_date
    p = one(result.problems, demographics, 1, "userSourcedId")
    assert (p.kind, p.topic) == ("warning", "column")
    assert "read as 'sourcedId'" in p.message


def test_demographics_with_own_ids_name_the_user_in_user_sourced_id(tmp_path: Path) -> None:
    """A layout where demographics rows have their own sourcedId and userSourcedId says whose
    row it is: the birthDate goes to that user, not to an unknown 'dem-…' one."""
    district = write_district(tmp_path)
    demographics = tmp_path / "demographics.csv"
    header, rows = read_csv(demographics)
    write_csv(
        demographics,
        [*header, "userSourcedId"],
        [[f"dem-{r[0]}", *r[1:], r[0]] for r in rows],
    )
    result = load_roster(tmp_path, today=TODAY)
    student = district.students[0]
    assert result.roster.people[student.sourced_id].birth_date == student.birth_date
    assert not [p for p in result.problems if p.kind == "skipped"]
    assert (
        "read as the user the row is for"
        in one(result.problems, demographics, 1, "userSourcedId").message
    )


@pytest.mark.parametrize("name", ["birthdate", "dateOfBirth", "DOB", "BirthDate"])
def test_birth_date_column_under_another_name(tmp_path: Path, name: str) -> None:
    district = write_district(tmp_path)
    rename(tmp_path / "demographics.csv", "birthDate", name)
    result = load_roster(tmp_path, today=TODAY)
    student = district.students[3]
    assert result.roster.people[student.sourced_id].birth_date == student.birth_date
    p = one(result.problems, tmp_path / "demographics.csv", 1, name)
    assert p.kind == "warning" and "read as 'birthDate'" in p.message


# (version, file, OneRoster column, name written, how the roster shows it was read)
RENAMED: list[tuple[str, str, str, str, Callable[[Roster], bool]]] = [
    ("1.1", "users.csv", "orgSourcedIds", "orgSourcedId",
     lambda r: r.people["stu-0001"].schools == ("sch-1",)),
    ("1.2", "roles.csv", "orgSourcedId", "orgSourcedIds",
     lambda r: r.people["tch-0002"].schools == ("sch-2",)),
    ("1.1", "classes.csv", "schoolSourcedId", "orgSourcedId",
     lambda r: r.classes["cls-sch-1-001"].school == "sch-1"),
    ("1.2", "enrollments.csv", "schoolSourcedId", "orgSourcedId",
     lambda r: "cls-sch-1-001" in r.people["stu-0001"].classes),
    ("1.1", "orgs.csv", "sourcedId", "SourcedId", lambda r: "sch-2" in r.schools),
    ("1.2", "users.csv", "enabledUser", "EnabledUser", lambda r: "stu-0001" in r.people),
    ("1.1", "users.csv", "dateLastModified", "dateModified", lambda r: "stu-0001" in r.people),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "file", "column", "written", "check"),
    RENAMED,
    ids=[f"{v}-{f}-{w}" for v, f, _, w, _ in RENAMED],
)
def test_a_column_under_another_name_or_case_is_read(
    tmp_path: Path,
    version: str,
    file: str,
    column: str,
    written: str,
    check: Callable[[Roster], bool],
) -> None:
    write_district(tmp_path, version=version)
    rename(tmp_path / file, column, written)
    result = load_roster(tmp_path, today=TODAY)
    assert check(result.roster)
    p = one(result.problems, tmp_path / file, 1, written)
    assert (p.kind, p.topic) == ("warning", "column")
    assert p.message.startswith(f"read as '{column}'")


def test_the_exact_column_wins_over_another_case(tmp_path: Path) -> None:
    write_district(tmp_path)
    users = tmp_path / "users.csv"
    header, rows = read_csv(users)
    write_csv(users, [*header, "Grades"], [[*r, "99"] for r in rows])
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.people["stu-0001"].grades != ("99",)
    assert one(result.problems, users, 1, "Grades").message == "unrecognised column: ignored"


# -- booleans and status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "enabled"), [("TRUE", True), ("True", True), ("1", True), ("0", False)]
)
def test_enabled_user_written_another_way(tmp_path: Path, written: str, enabled: bool) -> None:
    write_district(tmp_path)
    line = set_cell(tmp_path / "users.csv", "stu-0003", "enabledUser", written)
    result = load_roster(tmp_path, today=TODAY)
    assert ("stu-0003" in result.roster.people) is enabled
    p = one(result.problems, tmp_path / "users.csv", line, "enabledUser")
    assert (p.kind, p.topic) == ("warning", "boolean")
    assert p.message == f"'{written}' read as {'true' if enabled else 'false'}"


@pytest.mark.parametrize("written", ["Y", "no", "t", "2", "enabled"])
def test_other_booleans_stay_refused_for_their_row(tmp_path: Path, written: str) -> None:
    write_district(tmp_path)
    line = set_cell(tmp_path / "users.csv", "stu-0003", "enabledUser", written)
    result = load_roster(tmp_path, today=TODAY)
    assert "stu-0003" not in result.roster.people
    p = one(result.problems, tmp_path / "users.csv", line, "enabledUser")
    assert p.kind == "skipped" and "is not true or false: user skipped" in p.message


def test_a_deviation_on_every_row_is_one_warning_with_a_count(tmp_path: Path) -> None:
    district = write_district(tmp_path, students=40)
    users = tmp_path / "users.csv"
    header, rows = read_csv(users)
    i = header.index("enabledUser")
    for r in rows:
        r[i] = r[i].upper()
    write_csv(users, header, rows)
    result = load_roster(tmp_path, today=TODAY)
    (p,) = [p for p in result.problems if p.topic == "boolean"]
    assert p.line == 2 and p.count == len(district.people)
    assert p.message == f"'TRUE' read as true (first of {len(district.people)} rows alike)"


@pytest.mark.parametrize(("written", "kept"), [("Active", True), ("TOBEDELETED", False)])
def test_status_in_another_case(tmp_path: Path, written: str, kept: bool) -> None:
    write_district(tmp_path, version="1.2")
    line = set_cell(tmp_path / "users.csv", "stu-0003", "status", written)
    result = load_roster(tmp_path, today=TODAY)
    assert ("stu-0003" in result.roster.people) is kept
    assert result.roster.disabled == (0 if kept else 1)
    p = one(result.problems, tmp_path / "users.csv", line, "status")
    assert (p.kind, p.topic) == ("warning", "status")


# -- dates -------------------------------------------------------------------------------------

# birthDate written → the date read (None: refused), the message's text, the problem's topic
DATES: list[tuple[str, date | None, str, str]] = [
    ("2012-03-04T00:00:00.000Z", date(2012, 3, 4), "has a time part: ignored", "date"),
    ("2012-03-04 00:00:00", date(2012, 3, 4), "has a time part: ignored", "date"),
    ("2012-03-04T13:30:00", date(2012, 3, 4), "has a time part: ignored", "date"),  # no zone
    ("2012-03-03T23:00:00Z", None, "may have moved a day in a time-zone", "ambiguous date"),
    ("2012-03-04T05:00:00-05:00", None, "may have moved a day", "ambiguous date"),
    ("12/25/2011", date(2011, 12, 25), "(M/D/YYYY: the second number is above 12)", "date"),
    ("3/14/2011", date(2011, 3, 14), "(M/D/YYYY", "date"),
    ("25/12/2011", date(2011, 12, 25), "(D/M/YYYY: the first number is above 12)", "date"),
    ("04/04/2011", date(2011, 4, 4), "day and month are the same", "date"),
    ("2011/03/04", date(2011, 3, 4), "(YYYY/MM/DD)", "date"),
    ("20110304", date(2011, 3, 4), "(YYYYMMDD)", "date"),
    ("03/04/2011", None, "reads as 2011-03-04 (M/D/YYYY) or 2011-04-03 (D/M/YYYY)",
     "ambiguous date"),
    ("3/4/11", None, "is not a date (expected YYYY-MM-DD)", ""),
    ("13/13/2011", None, "is not a real date", ""),
    ("02/30/2011", None, "is not a real date", ""),
    ("20111304", None, "is not a date (expected YYYY-MM-DD)", ""),
]  # fmt: skip


@pytest.mark.parametrize(("written", "read", "text", "topic"), DATES, ids=[d[0] for d in DATES])
def test_birth_date_forms(
    tmp_path: Path, written: str, read: date | None, text: str, topic: str
) -> None:
    write_district(tmp_path)
    line = set_cell(tmp_path / "demographics.csv", "stu-0003", "birthDate", written)
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.people["stu-0003"].birth_date == read
    p = one(result.problems, tmp_path / "demographics.csv", line, "birthDate")
    assert p.kind == ("warning" if read else "skipped")
    assert text in p.message and p.topic == topic
    assert p.message.startswith(f"'{written}' ")
    assert read is not None or p.message.endswith(": birthDate unknown")


def _us_dates(path: Path, rows_to_write: dict[str, str]) -> dict[str, int]:
    return {sid: set_cell(path, sid, "birthDate", v) for sid, v in rows_to_write.items()}


def test_the_column_settles_an_ambiguous_us_date(tmp_path: Path) -> None:
    write_district(tmp_path)
    demographics = tmp_path / "demographics.csv"
    lines = _us_dates(demographics, {"stu-0002": "03/04/2011", "stu-0005": "12/25/2010"})
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.people["stu-0002"].birth_date == date(2011, 3, 4)
    p = one(result.problems, demographics, lines["stu-0002"], "birthDate")
    assert p.kind == "warning"
    assert p.message == (
        f"'03/04/2011' read as 2011-03-04 (M/D/YYYY, the order of '12/25/2010' on line "
        f"{lines['stu-0005']})"
    )


def test_day_first_columns_settle_the_other_way(tmp_path: Path) -> None:
    write_district(tmp_path)
    _us_dates(tmp_path / "demographics.csv", {"stu-0002": "03/04/2011", "stu-0005": "25/12/2010"})
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.people["stu-0002"].birth_date == date(2011, 4, 3)


def test_a_column_with_both_orders_settles_nothing(tmp_path: Path) -> None:
    write_district(tmp_path)
    demographics = tmp_path / "demographics.csv"
    lines = _us_dates(
        demographics,
        {"stu-0002": "03/04/2011", "stu-0005": "12/25/2010", "stu-0007": "25/12/2010"},
    )
    result = load_roster(tmp_path, today=TODAY)
    people = result.roster.people
    assert people["stu-0002"].birth_date is None
    assert people["stu-0005"].birth_date == date(2010, 12, 25)  # unambiguous: still read
    assert people["stu-0007"].birth_date == date(2010, 12, 25)
    p = one(result.problems, demographics, lines["stu-0002"], "birthDate")
    assert p.kind == "skipped" and "the column has dates in both orders" in p.message


def test_a_settled_date_in_the_future_is_still_refused(tmp_path: Path) -> None:
    write_district(tmp_path)
    demographics = tmp_path / "demographics.csv"
    lines = _us_dates(demographics, {"stu-0002": "09/05/2025", "stu-0005": "12/25/2010"})
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.people["stu-0002"].birth_date is None
    (skip,) = [
        p for p in at(result.problems, demographics, lines["stu-0002"], "birthDate")
        if p.kind == "skipped"
    ]  # fmt: skip
    assert skip.message == "09/05/2025 is in the future (after 2025-09-01): birthDate unknown"


def test_session_dates_in_us_form_are_read_with_a_warning(tmp_path: Path) -> None:
    write_district(tmp_path)
    sessions = tmp_path / "academicSessions.csv"
    line = set_cell(sessions, "term-1", "startDate", "8/15/2025")
    result = load_roster(tmp_path, today=TODAY)
    p = one(result.problems, sessions, line, "startDate")
    assert p.kind == "warning" and "read as 2025-08-15" in p.message


def test_a_delta_row_in_a_bulk_export_is_not_a_delta(tmp_path: Path) -> None:
    """status/dateLastModified on rows of a bulk export change nothing (the manifest says
    bulk): a tobedeleted row is left out, as before."""
    write_district(tmp_path)
    add_row(
        tmp_path / "users.csv",
        {"sourcedId": "stu-0999", "status": "tobedeleted", "enabledUser": "true",
         "username": "x", "givenName": "X", "familyName": "Y", "role": "student"},
    )  # fmt: skip
    result = load_roster(tmp_path, today=TODAY)
    assert "stu-0999" not in result.roster.people
    assert result.roster.disabled == 1


@pytest.mark.parametrize("lineterminator", ["\n", "\r\n", "\r"])
def test_bom_and_line_ends_on_every_file(tmp_path: Path, lineterminator: str) -> None:
    district = write_district(tmp_path, version="1.2")
    line = set_cell(tmp_path / "demographics.csv", "stu-0002", "birthDate", "2011-02-30")
    for path in tmp_path.iterdir():
        header, rows = read_csv(path)
        write_csv(path, header, rows, bom=True, lineterminator=lineterminator)
    result = load_roster(tmp_path, today=TODAY)
    assert result.roster.oneroster_version == "1.2"  # the manifest's BOM did not hide it
    assert len(result.roster.people) == len(district.people)
    assert result.roster.people["stu-0001"].birth_date is not None
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'demographics.csv'}:{line}: birthDate: '2011-02-30' is not a real date: "
        "birthDate unknown"
    ]
