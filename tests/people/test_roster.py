"""OneRoster CSV import: round trips through the synthetic factory, and every kind of bad input.

All rosters are synthetic ("Student0001 Testperson"), written to tmp_path by oneroster_factory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from oneroster_factory import (
    FakeDistrict,
    add_row,
    read_csv,
    record_line,
    set_cell,
    write_csv,
    write_district,
)

from monitor.people.roster import Problem, Roster, RosterError, load_roster

TODAY = date(2025, 9, 1)

Expected = tuple[str, int | None, str, str]  # file name, line, field, text in the message


def load(district: FakeDistrict, today: date = TODAY) -> tuple[Roster, list[Problem]]:
    result = load_roster(district.directory, today=today)
    return result.roster, result.problems


def prefix(directory: Path, file: str, line: int | None, field: str) -> str:
    loc = f"{directory / file}:{line}" if line else str(directory / file)
    return ": ".join(p for p in (loc, field) if p) + ": "


def matching(problems: list[Problem], directory: Path, expected: Expected) -> list[Problem]:
    file, line, field, text = expected
    start = prefix(directory, file, line, field)
    return [p for p in problems if str(p).startswith(start) and text in p.message]


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_round_trip(tmp_path: Path, version: str) -> None:
    district = write_district(tmp_path, version=version, students=30, teachers=4, schools=2)
    roster, problems = load(district)

    assert problems == []
    assert roster.oneroster_version == version
    assert roster.source == str(tmp_path)
    assert set(roster.people) == {p.sourced_id for p in district.people}
    for fake in district.people:
        person = roster.people[fake.sourced_id]
        assert person.username == fake.username
        assert person.role == fake.role
        assert person.schools == (fake.school,)
        assert person.grades == ((fake.grade,) if fake.grade else ())
        assert person.birth_date == fake.birth_date
        assert (person.given_name, person.family_name) == (fake.given_name, fake.family_name)
        assert sorted(person.classes) == sorted(fake.classes)
        assert roster.find_username(fake.username.upper()) is person
    assert {sid: (s.name, s.identifier) for sid, s in roster.schools.items()} == {
        sid: (name, ident) for sid, name, ident in district.schools
    }
    assert "dist-1" not in roster.schools  # a district is an org, not a school
    assert set(roster.classes) == {c.sourced_id for c in district.classes}
    for fake_class in district.classes:
        section = roster.classes[fake_class.sourced_id]
        assert section.title == fake_class.title
        assert section.school == fake_class.school
        assert section.teachers == (fake_class.teacher,)
        assert sorted(section.students) == sorted(fake_class.students)


def test_counts_match_the_factory(tmp_path: Path) -> None:
    district = write_district(tmp_path, students=30, teachers=4, schools=3)
    roster, _ = load(district)
    counts = roster.counts(TODAY)
    students = district.students

    assert counts.people == 34
    assert counts.by_role == {"student": 30, "teacher": 4}
    assert counts.by_school == {
        sid: sum(p.school == sid for p in district.people) for sid, _, _ in district.schools
    }
    expected_bands = {"under13": 0, "teen": 0, "adult": 0, "unknown": 0}
    for s in students:
        assert s.birth_date is not None
        age = TODAY.year - s.birth_date.year
        age -= (TODAY.month, TODAY.day) < (s.birth_date.month, s.birth_date.day)
        expected_bands["under13" if age <= 12 else "teen" if age <= 17 else "adult"] += 1
    assert counts.by_age_band == expected_bands  # teachers are a role, not an age band


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    a = write_district(tmp_path / "a")
    b = write_district(tmp_path / "b")
    first, _ = load(a)
    assert load(b)[0].version == first.version  # same content, other directory
    assert load(a)[0].version == first.version
    set_cell(a.directory / "users.csv", "stu-0001", "givenName", "Student0001b")
    assert load(a)[0].version != first.version


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_disabled_and_deleted_users_are_excluded_and_counted(tmp_path: Path, version: str) -> None:
    district = write_district(tmp_path, version=version, disabled=2, deleted=1)
    roster, problems = load(district)
    gone = [p for p in district.people if not p.active]

    assert len(gone) == 3
    assert roster.disabled == 3 and roster.counts(TODAY).disabled == 3
    for fake in gone:
        assert fake.sourced_id not in roster.people
        assert roster.find_username(fake.username) is None
        assert all(fake.sourced_id not in c.students for c in roster.classes.values())
    assert len(roster.people) == len(district.people) - 3
    # their enrollments, roles and demographics rows are expected, not unknown references
    assert problems == []


def test_user_profiles_add_login_aliases(tmp_path: Path) -> None:
    district = write_district(tmp_path, version="1.2")
    roster, _ = load(district)
    person = roster.find_username("Student0001@LMS.example.test")
    assert person is not None and person.sourced_id == "stu-0001"


def test_one_two_users_columns_in_a_one_two_roster_are_ignored_with_a_warning(
    tmp_path: Path,
) -> None:
    district = write_district(tmp_path, version="1.2")
    users = tmp_path / "users.csv"
    header, rows = read_csv(users)
    write_csv(users, [*header, "role"], [[*r, "teacher"] for r in rows])
    roster, problems = load(district)
    assert roster.people["stu-0001"].role == "student"  # roles.csv decides in 1.2
    assert matching(problems, tmp_path, ("users.csv", 1, "role", "not a OneRoster 1.2"))


def test_conflicting_primary_roles_resolve_to_student(tmp_path: Path) -> None:
    district = write_district(tmp_path, version="1.2")
    add_row(
        tmp_path / "roles.csv",
        {
            "sourcedId": "role-extra",
            "userSourcedId": "tch-0001",
            "roleType": "primary",
            "role": "student",
            "orgSourcedId": "sch-1",
        },
    )
    roster, problems = load(district)
    assert roster.people["tch-0001"].role == "student"
    line = record_line(tmp_path / "roles.csv", "sourcedId", "role-tch-0001")
    assert matching(problems, tmp_path, ("roles.csv", line, "role", "using student"))


def test_missing_manifest_warns_and_infers_the_version(tmp_path: Path) -> None:
    district = write_district(tmp_path, version="1.2")
    (tmp_path / "manifest.csv").unlink()
    roster, problems = load(district)
    assert roster.oneroster_version == "1.2"
    assert len(roster.people) == len(district.people)
    assert [p.kind for p in problems] == ["warning"]


def test_metadata_extension_columns_are_accepted_silently(tmp_path: Path) -> None:
    district = write_district(tmp_path)
    users = tmp_path / "users.csv"
    header, rows = read_csv(users)
    write_csv(users, [*header, "metadata.homeroom"], [[*r, "Room 1"] for r in rows])
    assert load(district)[1] == []


# -- CSV dialect: BOM, CRLF, quoted newlines ---------------------------------------------------


@pytest.mark.parametrize("lineterminator", ["\r\n", "\n"])
@pytest.mark.parametrize("bom", [True, False])
def test_line_numbers_count_physical_lines(tmp_path: Path, lineterminator: str, bom: bool) -> None:
    district = write_district(tmp_path)
    users = tmp_path / "users.csv"
    header, rows = read_csv(users)
    given = header.index("givenName")
    multiline, wizard = rows[1][0], rows[4][0]
    rows[1][given] = "Name\nSecond line\nThird line"  # quoted, spans three lines
    rows[4][header.index("role")] = "wizard"
    write_csv(users, header, rows, bom=bom, lineterminator=lineterminator)

    roster, problems = load(district)

    # header 1, rows on 2, 3-5 (three lines), 6, 7, then the wizard on 8
    assert [str(p) for p in problems] == [
        f"{users}:8: role: unknown role 'wizard': user skipped",
    ]
    assert wizard not in roster.people
    assert roster.people[multiline].given_name == "Name\nSecond line\nThird line"
    assert rows[0][0] in roster.people  # the BOM is not glued to the first header name


def test_problem_str() -> None:
    assert str(Problem("a.csv", 3, "birthDate", "bad", "skipped")) == "a.csv:3: birthDate: bad"
    assert str(Problem("a.csv", None, "", "missing")) == "a.csv: missing"


# -- rejected whole ----------------------------------------------------------------------------


def _rewrite(path: Path, **kwargs: str) -> None:
    header, rows = read_csv(path)
    write_csv(path, header, rows, **kwargs)  # type: ignore[arg-type]


def _drop_column(path: Path, column: str) -> None:
    header, rows = read_csv(path)
    i = header.index(column)
    write_csv(path, header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])


def _rename_column(path: Path, old: str, new: str) -> None:
    header, rows = read_csv(path)
    header[header.index(old)] = new
    write_csv(path, header, rows)


def _replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))


def r_missing_orgs(d: Path) -> Expected:
    (d / "orgs.csv").unlink()
    return ("orgs.csv", None, "", "missing")


def r_missing_users(d: Path) -> Expected:
    (d / "users.csv").unlink()
    return ("users.csv", None, "", "missing")


def r_empty_users(d: Path) -> Expected:
    (d / "users.csv").write_bytes(b"")
    return ("users.csv", None, "", "is empty")


def r_missing_required_column(d: Path) -> Expected:
    _drop_column(d / "users.csv", "givenName")
    return ("users.csv", 1, "givenName", "required column is missing")


def r_misspelled_required_column(d: Path) -> Expected:
    _rename_column(d / "enrollments.csv", "userSourcedId", "userSourceId")
    return ("enrollments.csv", 1, "userSourcedId", "found 'userSourceId': did you mean")


def r_semicolons(d: Path) -> Expected:
    _rewrite(d / "orgs.csv", delimiter=";")
    return ("orgs.csv", 1, "header", "separated by ';'")


def r_tabs(d: Path) -> Expected:
    _rewrite(d / "users.csv", delimiter="\t")
    return ("users.csv", 1, "header", "separated by tab")


def r_latin1_in_header_chunk(d: Path) -> Expected:
    line = record_line(d / "users.csv", "sourcedId", "stu-0003")
    _replace_bytes(d / "users.csv", b"Student0003,", b"Student0003\xe9,")
    return ("users.csv", line, "encoding", "byte 0xe9 is not UTF-8")


def r_latin1_deep_in_file(d: Path) -> Expected:
    write_district(d, students=150)  # bigger, so the bad byte is not in the first read chunk
    path = d / "enrollments.csv"
    _, rows = read_csv(path)
    last = rows[-1][0]
    assert path.stat().st_size > 16_384  # past the first decoded chunk
    line = record_line(path, "sourcedId", last)
    _replace_bytes(path, f"{last},".encode(), f"{last}\xff,".encode("latin-1"))
    return ("enrollments.csv", line, "encoding", "byte 0xff")


def r_duplicate_user(d: Path) -> Expected:
    first = record_line(d / "users.csv", "sourcedId", "stu-0002")
    line = add_row(d / "users.csv", {"sourcedId": "stu-0002", "enabledUser": "true"})
    return ("users.csv", line, "sourcedId", f"'stu-0002' repeats (first on line {first})")


def r_duplicate_enrollment(d: Path) -> Expected:
    path = d / "enrollments.csv"
    _, rows = read_csv(path)
    first = record_line(path, "sourcedId", rows[3][0])
    line = add_row(path, {"sourcedId": rows[3][0]})
    return ("enrollments.csv", line, "sourcedId", f"repeats (first on line {first})")


def r_delta_manifest(d: Path) -> Expected:
    line = set_cell(d / "manifest.csv", "file.users", "value", "delta", key_column="propertyName")
    return ("manifest.csv", line, "file.users", "is delta, but there is no base roster")


def r_unsupported_version(d: Path) -> Expected:
    m = d / "manifest.csv"
    line = set_cell(m, "oneroster.version", "value", "1.0", key_column="propertyName")
    return ("manifest.csv", line, "oneroster.version", "'1.0' is not supported")


def r_unquoted_comma(d: Path) -> Expected:
    line = record_line(d / "users.csv", "sourcedId", "stu-0005")
    _replace_bytes(d / "users.csv", b",Student0005,", b",Student0005,Jr,")
    return ("users.csv", line, "row", "an unquoted comma in a value?")


def r_short_row(d: Path) -> Expected:
    with (d / "classes.csv").open("a", encoding="utf-8", newline="") as f:
        f.write("cls-x,,,Short\r\n")
    line = len((d / "classes.csv").read_bytes().split(b"\r\n")) - 1
    return ("classes.csv", line, "row", "has 4 fields but the header has 14")


def r_unterminated_quote(d: Path) -> Expected:
    with (d / "classes.csv").open("a", encoding="utf-8", newline="") as f:
        f.write('cls-q,,,"Never closed,,,,,,sch-1,,,,\r\nmore text\r\n')
    line = len((d / "classes.csv").read_bytes().split(b"\r\n")) - 2
    return ("classes.csv", line, "row", "malformed CSV")


def r_repeated_column(d: Path) -> Expected:
    _rename_column(d / "orgs.csv", "parentSourcedId", "name")
    return ("orgs.csv", 1, "name", "column appears 2 times")


def r_manifest_lists_missing_file(d: Path) -> Expected:
    (d / "demographics.csv").unlink()  # the manifest still says file.demographics,bulk
    return ("demographics.csv", None, "", "manifest.csv lists it as bulk")


def r_enrollments_without_classes(d: Path) -> Expected:
    (d / "classes.csv").unlink()
    return ("classes.csv", None, "", "enrollments.csv refers to classes")


def r_v12_without_roles(d: Path) -> Expected:
    (d / "roles.csv").unlink()
    return ("roles.csv", None, "", "gives each user's role in roles.csv")


REJECTS: list[tuple[str, str, Callable[[Path], Expected]]] = [
    ("1.1", "missing orgs.csv", r_missing_orgs),
    ("1.2", "missing users.csv", r_missing_users),
    ("1.1", "empty users.csv", r_empty_users),
    ("1.1", "missing required column", r_missing_required_column),
    ("1.1", "misspelled required column", r_misspelled_required_column),
    ("1.1", "semicolon delimiter", r_semicolons),
    ("1.2", "tab delimiter", r_tabs),
    ("1.1", "latin-1 byte near the top", r_latin1_in_header_chunk),
    ("1.1", "latin-1 byte deep in a file", r_latin1_deep_in_file),
    ("1.1", "duplicate user sourcedId", r_duplicate_user),
    ("1.2", "duplicate enrollment sourcedId", r_duplicate_enrollment),
    ("1.1", "delta manifest", r_delta_manifest),
    ("1.1", "unsupported version", r_unsupported_version),
    ("1.1", "unquoted comma", r_unquoted_comma),
    ("1.1", "short row", r_short_row),
    ("1.1", "unterminated quote", r_unterminated_quote),
    ("1.1", "repeated column", r_repeated_column),
    ("1.1", "manifest lists a missing file", r_manifest_lists_missing_file),
    ("1.1", "enrollments without classes", r_enrollments_without_classes),
    ("1.2", "1.2 without roles.csv", r_v12_without_roles),
]


@pytest.mark.parametrize(
    ("version", "mutate"), [(v, m) for v, _, m in REJECTS], ids=[n for _, n, _ in REJECTS]
)
def test_rejected_whole(tmp_path: Path, version: str, mutate: Callable[[Path], Expected]) -> None:
    write_district(tmp_path, version=version)
    expected = mutate(tmp_path)

    with pytest.raises(RosterError) as info:
        load_roster(tmp_path, today=TODAY)

    err = info.value
    assert isinstance(err, ValueError)
    hits = matching(err.problems, tmp_path, expected)
    assert hits and all(p.kind == "error" for p in hits), [str(p) for p in err.problems]
    assert str(hits[0]) in str(err)  # the message lists the problem: file:line: field: text
    assert str(err).startswith(f"roster {tmp_path} rejected (")


def test_error_stops_row_reading_of_later_files(tmp_path: Path) -> None:
    """A broken orgs.csv must not turn into one 'unknown org' per user: nothing is half-read."""
    write_district(tmp_path)
    _rename_column(tmp_path / "orgs.csv", "type", "tpye")
    _rename_column(tmp_path / "demographics.csv", "sourcedId", "sourceId")  # still reported
    with pytest.raises(RosterError) as info:
        load_roster(tmp_path, today=TODAY)
    problems = info.value.problems
    assert [(Path(p.file).name, p.line, p.field) for p in problems if p.kind == "error"] == [
        ("orgs.csv", 1, "type"),
        ("demographics.csv", 1, "sourcedId"),
    ]
    assert not [p for p in problems if p.kind == "skipped"]


def test_a_rejected_roster_leaves_the_previous_one_untouched(tmp_path: Path) -> None:
    district = write_district(tmp_path)
    before, _ = load(district)
    snapshot = (dict(before.people), dict(before.by_username), dict(before.classes))
    path = tmp_path / "enrollments.csv"
    _, rows = read_csv(path)
    add_row(path, {"sourcedId": rows[0][0]})  # the last file read is broken

    with pytest.raises(RosterError):
        load_roster(tmp_path, today=TODAY)

    assert (before.people, before.by_username, before.classes) == snapshot
    header, rows = read_csv(path)
    write_csv(path, header, rows[:-1])  # fixed: loads again, same content as before
    after, _ = load(district)
    assert after.version == before.version and after.people == before.people


def test_error_message_is_capped(tmp_path: Path) -> None:
    write_district(tmp_path)
    for n in range(25):
        add_row(tmp_path / "orgs.csv", {"sourcedId": "sch-1", "name": f"Copy {n}"})
    with pytest.raises(RosterError) as info:
        load_roster(tmp_path, today=TODAY)
    text = str(info.value)
    assert "(25 errors)" in text and "… and 5 more" in text
    assert len(info.value.problems) == 25


# -- loaded, with a row or field skipped -------------------------------------------------------


def s_impossible_date(d: Path) -> Expected:
    line = set_cell(d / "demographics.csv", "stu-0003", "birthDate", "2011-02-30")
    return ("demographics.csv", line, "birthDate", "'2011-02-30' is not a real date")


def s_not_a_date(d: Path) -> Expected:
    line = set_cell(d / "demographics.csv", "stu-0003", "birthDate", "03/04/2011")
    return ("demographics.csv", line, "birthDate", "is not a date (expected YYYY-MM-DD)")


def s_future_birth(d: Path) -> Expected:
    line = set_cell(d / "demographics.csv", "stu-0003", "birthDate", "2025-09-02")
    return ("demographics.csv", line, "birthDate", "2025-09-02 is in the future")


def s_unknown_demographics_user(d: Path) -> Expected:
    line = add_row(d / "demographics.csv", {"sourcedId": "stu-9999", "birthDate": "2012-01-01"})
    return ("demographics.csv", line, "sourcedId", "unknown user 'stu-9999'")


def s_empty_demographics(d: Path) -> Expected:
    (d / "demographics.csv").write_bytes(b"")
    return ("demographics.csv", None, "", "is empty: skipped; every birthDate is unknown")


def s_unknown_role(d: Path) -> Expected:
    line = set_cell(d / "users.csv", "stu-0003", "role", "wizard")
    return ("users.csv", line, "role", "unknown role 'wizard': user skipped")


def s_misspelled_role(d: Path) -> Expected:
    line = set_cell(d / "users.csv", "stu-0003", "role", "studnet")
    return ("users.csv", line, "role", "(did you mean 'student'?)")


def s_unknown_role_v12(d: Path) -> Expected:
    line = set_cell(d / "roles.csv", "role-stu-0003", "role", "wizard")
    return ("roles.csv", line, "role", "unknown role 'wizard': row skipped")


def s_bad_role_type(d: Path) -> Expected:
    line = set_cell(d / "roles.csv", "role-stu-0003", "roleType", "main")
    return ("roles.csv", line, "roleType", "'main' is not primary or secondary")


def s_unknown_org(d: Path) -> Expected:
    line = set_cell(d / "users.csv", "stu-0003", "orgSourcedIds", "sch-1,sch-99")
    return ("users.csv", line, "orgSourcedIds", "unknown org 'sch-99' (not in orgs.csv)")


def s_unknown_org_v12(d: Path) -> Expected:
    line = set_cell(d / "roles.csv", "role-stu-0003", "orgSourcedId", "sch-99")
    return ("roles.csv", line, "orgSourcedId", "unknown org 'sch-99'")


def s_unknown_enrolled_user(d: Path) -> Expected:
    line = add_row(
        d / "enrollments.csv",
        {"sourcedId": "enr-x", "classSourcedId": "cls-sch-1-001", "userSourcedId": "stu-9999",
         "role": "student"},
    )  # fmt: skip
    return ("enrollments.csv", line, "userSourcedId", "unknown user 'stu-9999'")


def s_unknown_class(d: Path) -> Expected:
    line = add_row(
        d / "enrollments.csv",
        {"sourcedId": "enr-x", "classSourcedId": "cls-nope", "userSourcedId": "stu-0001",
         "role": "student"},
    )  # fmt: skip
    return ("enrollments.csv", line, "classSourcedId", "unknown class 'cls-nope'")


def s_unknown_enrollment_role(d: Path) -> Expected:
    path = d / "enrollments.csv"
    _, rows = read_csv(path)
    line = set_cell(path, rows[2][0], "role", "observer")
    return ("enrollments.csv", line, "role", "unknown enrollment role 'observer'")


def s_unknown_term(d: Path) -> Expected:
    line = set_cell(d / "classes.csv", "cls-sch-1-001", "termSourcedIds", "term-nope")
    return ("classes.csv", line, "termSourcedIds", "unknown academic session 'term-nope'")


def s_bad_enabled(d: Path) -> Expected:
    line = set_cell(d / "users.csv", "stu-0003", "enabledUser", "yes")
    return ("users.csv", line, "enabledUser", "'yes' is not true or false")


def s_bad_status(d: Path) -> Expected:
    line = set_cell(d / "users.csv", "stu-0003", "status", "archived")
    return ("users.csv", line, "status", "'archived' is not active or tobedeleted")


def s_empty_sourced_id(d: Path) -> Expected:
    line = add_row(d / "orgs.csv", {"name": "Nameless", "type": "school"})
    return ("orgs.csv", line, "sourcedId", "is empty: row skipped")


def s_duplicate_username(d: Path) -> Expected:
    first = record_line(d / "users.csv", "sourcedId", "stu-0001")
    line = set_cell(d / "users.csv", "stu-0003", "username", "STUDENT0001")
    return ("users.csv", line, "username", f"username on line {first}: neither is looked up")


def w_misspelled_optional_header(d: Path) -> Expected:
    _rename_column(d / "demographics.csv", "birthDate", "brithDate")
    return ("demographics.csv", 1, "brithDate", "did you mean 'birthDate'? Ignored")


def w_lowercase_optional_header(d: Path) -> Expected:
    _rename_column(d / "users.csv", "grades", "Grades")
    return ("users.csv", 1, "Grades", "read as 'grades' (OneRoster column names are case-")


def w_unknown_extra_column(d: Path) -> Expected:
    header, rows = read_csv(d / "users.csv")
    write_csv(d / "users.csv", [*header, "favouriteColour"], [[*r, "blue"] for r in rows])
    return ("users.csv", 1, "favouriteColour", "unrecognised column: ignored")


def w_missing_demographics(d: Path) -> Expected:
    (d / "demographics.csv").unlink()
    set_cell(d / "manifest.csv", "file.demographics", "value", "absent", key_column="propertyName")
    return ("demographics.csv", None, "", "missing: every birthDate is unknown")


LOADS: list[tuple[str, str, str, Callable[[Path], Expected], Callable[[Roster], bool]]] = [
    ("1.1", "impossible date", "skipped", s_impossible_date,
     lambda r: r.people["stu-0003"].birth_date is None),
    ("1.1", "not a date", "skipped", s_not_a_date,
     lambda r: r.people["stu-0003"].birth_date is None),
    ("1.2", "future birthDate", "skipped", s_future_birth,
     lambda r: r.people["stu-0003"].birth_date is None),
    ("1.1", "demographics for unknown user", "skipped", s_unknown_demographics_user,
     lambda r: "stu-9999" not in r.people),
    ("1.1", "empty demographics.csv", "skipped", s_empty_demographics,
     lambda r: all(p.birth_date is None for p in r.people.values())),
    ("1.1", "unknown role", "skipped", s_unknown_role,
     lambda r: "stu-0003" not in r.people and r.find_username("student0003") is None),
    ("1.1", "misspelled role", "skipped", s_misspelled_role,
     lambda r: "stu-0003" not in r.people),
    ("1.2", "unknown role in roles.csv", "skipped", s_unknown_role_v12,
     lambda r: "stu-0003" not in r.people),
    ("1.2", "bad roleType", "skipped", s_bad_role_type,
     lambda r: "stu-0003" not in r.people),
    ("1.1", "unknown org", "skipped", s_unknown_org,
     lambda r: r.people["stu-0003"].schools == ("sch-1",)),
    ("1.2", "unknown org in roles.csv", "skipped", s_unknown_org_v12,
     lambda r: r.people["stu-0003"].role == "student"),
    ("1.1", "enrollment of unknown user", "skipped", s_unknown_enrolled_user,
     lambda r: "stu-9999" not in r.classes["cls-sch-1-001"].students),
    ("1.2", "enrollment in unknown class", "skipped", s_unknown_class,
     lambda r: "cls-nope" not in r.people["stu-0001"].classes),
    ("1.1", "unknown enrollment role", "skipped", s_unknown_enrollment_role,
     lambda r: len(r.classes) > 0),
    ("1.1", "unknown academic session", "skipped", s_unknown_term,
     lambda r: "cls-sch-1-001" in r.classes),
    ("1.1", "enabledUser not boolean", "skipped", s_bad_enabled,
     lambda r: "stu-0003" not in r.people and r.disabled == 0),
    ("1.2", "unknown status", "skipped", s_bad_status,
     lambda r: "stu-0003" not in r.people),
    ("1.1", "empty sourcedId", "skipped", s_empty_sourced_id,
     lambda r: len(r.schools) == 2),
    ("1.1", "duplicate username", "skipped", s_duplicate_username,
     lambda r: r.find_username("student0001") is None and "stu-0003" in r.people),
    ("1.1", "misspelled optional header", "warning", w_misspelled_optional_header,
     lambda r: all(p.birth_date is None for p in r.people.values())),
    ("1.1", "optional header in the wrong case", "warning", w_lowercase_optional_header,
     lambda r: r.people["stu-0003"].grades != ()),  # read as grades (was: ignored)
    ("1.2", "unknown extra column", "warning", w_unknown_extra_column,
     lambda r: "stu-0003" in r.people),
    ("1.1", "missing demographics.csv", "warning", w_missing_demographics,
     lambda r: all(p.birth_date is None for p in r.people.values())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "kind", "mutate", "check"),
    [(v, k, m, c) for v, _, k, m, c in LOADS],
    ids=[n for _, n, _, _, _ in LOADS],
)
def test_loaded_with_a_problem(
    tmp_path: Path,
    version: str,
    kind: str,
    mutate: Callable[[Path], Expected],
    check: Callable[[Roster], bool],
) -> None:
    write_district(tmp_path, version=version)
    expected = mutate(tmp_path)

    result = load_roster(tmp_path, today=TODAY)

    hits = matching(result.problems, tmp_path, expected)
    assert hits and hits[0].kind == kind, [str(p) for p in result.problems]
    assert check(result.roster)
    assert "did you mean" not in expected[3] or "did you mean" in hits[0].message
    if expected[2] == "favouriteColour":
        assert "did you mean" not in hits[0].message  # nothing close to suggest


# -- age bands at the birthday edge ------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "day", "band"),
    [
        ("2012-09-02", date(2025, 9, 1), "under13"),  # 12, one day before the 13th birthday
        ("2012-09-02", date(2025, 9, 2), "teen"),  # 13 on the birthday itself
        ("2012-02-29", date(2025, 2, 28), "under13"),  # leap-day birthday not yet reached
        ("2012-02-29", date(2025, 3, 1), "teen"),
        ("2007-09-02", date(2025, 9, 1), "teen"),  # 17
        ("2007-09-02", date(2025, 9, 2), "adult"),  # 18
        ("", date(2025, 9, 1), "unknown"),  # no birthDate
    ],
)
def test_age_band_counts_at_the_birthday_edge(
    tmp_path: Path, birth: str, day: date, band: str
) -> None:
    write_district(tmp_path, students=1, teachers=1, schools=1)
    set_cell(tmp_path / "demographics.csv", "stu-0001", "birthDate", birth)
    result = load_roster(tmp_path, today=day)
    counts = result.roster.counts(day)
    assert counts.by_age_band == {
        b: int(b == band) for b in ("under13", "teen", "adult", "unknown")
    }
    assert counts.by_role == {"student": 1, "teacher": 1}
