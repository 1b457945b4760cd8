"""OneRoster delta exports applied over the last bulk export, and the merged roster kept in the
state directory: additions, changes, tombstones, out-of-order dateLastModified, a delta without
a base, a bad delta leaving the roster in force, and the district loader picking a delta up.

All rosters are synthetic, written to tmp_path by oneroster_factory.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from oneroster_factory import (
    FakeDistrict,
    FakePerson,
    person_rows,
    read_csv,
    record_line,
    set_cell,
    tombstone,
    write_csv,
    write_delta,
    write_district,
)

from monitor.people.roster import RosterError, RosterLoad, load_roster

TODAY = date(2025, 9, 1)
DAY2 = "2025-09-02T06:00:00Z"
DAY3 = "2025-09-03T06:00:00Z"


def newcomer(n: int = 9001) -> FakePerson:
    return FakePerson(
        f"stu-{n}", f"student{n}", "student", "sch-2", "05", date(2014, 5, 6),
        f"Student{n}", "Testperson",
    )  # fmt: skip


def load(d: Path, state: Path | None) -> RosterLoad:
    return load_roster(d, today=TODAY, state=state)


def enrollment_of(district: FakeDistrict, sid: str) -> tuple[str, str]:
    """(enrollment sourcedId, class) of one of ``sid``'s enrollments."""
    cls = district.person(sid).classes[0]
    return f"enr-{cls}-{sid}", cls


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_delta_adds_changes_and_deletes(tmp_path: Path, version: str) -> None:
    district = write_district(tmp_path / "roster", version=version, students=20)
    state = tmp_path / "state"
    before = load(district.directory, state)
    new = person_rows(newcomer(), version)
    changed = person_rows(district.person("stu-0001"), version, grades="09")
    files = {
        "users.csv": [new["users.csv"], changed["users.csv"], tombstone("stu-0002", DAY2)],
        "demographics.csv": [new["demographics.csv"]],
    }
    if version == "1.2":
        files["roles.csv"] = [new["roles.csv"]]
    write_delta(tmp_path / "roster" / "2025-09-02", version, files, when=DAY2)

    after = load(district.directory, state)

    people = after.roster.people
    assert people["stu-9001"].birth_date == date(2014, 5, 6)
    assert people["stu-9001"].schools == ("sch-2",) and people["stu-9001"].role == "student"
    assert people["stu-0001"].grades == ("09",)
    assert people["stu-0001"].classes == before.roster.people["stu-0001"].classes
    assert "stu-0002" not in people
    assert all("stu-0002" not in c.students for c in after.roster.classes.values())
    assert len(people) == len(before.roster.people)  # one in, one out
    assert after.roster.disabled == 1
    (applied,) = after.deltas
    assert (applied.changed, applied.deleted, applied.stale) == (3 + (version == "1.2"), 1, 0)
    assert applied.newest == DAY2 and applied.source.endswith("2025-09-02")
    # the problems of the merged roster: none (its stu-0002 enrollments are quiet)
    assert [p for p in after.problems if p.kind != "warning"] == []
    assert after.kept and Path(after.kept).parent == state


def test_the_merged_roster_survives_a_restart_without_the_delta(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    state = tmp_path / "state"
    load(district.directory, state)
    write_delta(
        tmp_path / "roster" / "d1", "1.2",
        {"users.csv": [tombstone("stu-0003", DAY2)]}, when=DAY2,
    )  # fmt: skip
    merged = load(district.directory, state)
    shutil.rmtree(tmp_path / "roster" / "d1")  # the district cleans up applied deltas

    again = load(district.directory, state)

    assert again.deltas == ()  # nothing applied again: read from the state
    assert "stu-0003" not in again.roster.people
    assert again.roster.version == merged.roster.version
    kept = json.loads((state / "state.json").read_text())
    assert kept["merged"] == Path(merged.kept).name and len(kept["seen"]) == 1


def test_a_delta_that_overwrote_the_bulk_export_applies_to_the_kept_base(tmp_path: Path) -> None:
    """A SIS that writes every export into the same folder: the bulk export is gone when the
    delta arrives, and the roster kept in the state directory is its base."""
    roster = tmp_path / "roster"
    district = write_district(roster, version="1.1")
    state = tmp_path / "state"
    first = load(roster, state)
    shutil.rmtree(roster)
    changed = person_rows(district.person("stu-0004"), "1.1", grades="11")
    write_delta(roster, "1.1", {"users.csv": [changed["users.csv"]]}, when=DAY2)

    after = load(roster, state)

    assert after.roster.people["stu-0004"].grades == ("11",)
    assert len(after.roster.people) == len(first.roster.people)
    assert len(after.deltas) == 1
    again = load(roster, state)  # a restart with the same delta still in the folder
    assert again.deltas == () and again.roster.version == after.roster.version


def test_a_delta_without_a_base_is_refused(tmp_path: Path) -> None:
    district = write_district(tmp_path / "base", version="1.2")
    roster = tmp_path / "roster"
    changed = person_rows(district.person("stu-0004"), "1.2", grades="11")
    write_delta(roster, "1.2", {"users.csv": [changed["users.csv"]]}, when=DAY2)
    line = record_line(roster / "manifest.csv", "propertyName", "file.users")

    with pytest.raises(RosterError) as e:
        load(roster, None)
    (p,) = [p for p in e.value.problems if p.kind == "error"]
    assert (p.file, p.line, p.field) == (str(roster / "manifest.csv"), line, "file.users")
    assert p.message.startswith("is delta, but there is no base roster to apply it to")

    with pytest.raises(RosterError) as e:
        load(roster, tmp_path / "state")  # a state directory with nothing kept yet
    assert f"none is kept in {tmp_path / 'state'} yet" in str(e.value)
    assert not (tmp_path / "state" / "state.json").exists()


def test_deltas_apply_in_date_last_modified_order(tmp_path: Path) -> None:
    """Two deltas dropped together whose names sort the other way round from their dates."""
    district = write_district(tmp_path / "roster", version="1.2")
    s5 = district.person("stu-0005")
    write_delta(
        tmp_path / "roster" / "a-later", "1.2",
        {"users.csv": [person_rows(s5, "1.2", grades="10")["users.csv"]]}, when=DAY3,
    )  # fmt: skip
    write_delta(
        tmp_path / "roster" / "b-earlier", "1.2",
        {"users.csv": [person_rows(s5, "1.2", grades="09")["users.csv"]]}, when=DAY2,
    )  # fmt: skip
    result = load(district.directory, tmp_path / "state")
    assert result.roster.people["stu-0005"].grades == ("10",)
    assert [Path(d.source).name for d in result.deltas] == ["b-earlier", "a-later"]
    assert [d.stale for d in result.deltas] == [0, 0]


def test_an_older_delta_arriving_late_does_not_undo_a_newer_one(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    state = tmp_path / "state"
    s5, s6 = district.person("stu-0005"), district.person("stu-0006")
    write_delta(
        tmp_path / "roster" / "newer", "1.2",
        {"users.csv": [person_rows(s5, "1.2", grades="10")["users.csv"],
                       tombstone("stu-0007", DAY3)]},
        when=DAY3,
    )  # fmt: skip
    load(district.directory, state)
    late = tmp_path / "roster" / "older"
    write_delta(
        late, "1.2",
        {"users.csv": [person_rows(s5, "1.2", grades="09")["users.csv"],  # older than grade 10
                       person_rows(s6, "1.2", grades="08")["users.csv"],  # nobody newer
                       person_rows(district.person("stu-0007"), "1.2")["users.csv"]]},
        when=DAY2,
    )  # fmt: skip

    result = load(district.directory, state)

    people = result.roster.people
    assert people["stu-0005"].grades == ("10",)
    assert people["stu-0006"].grades == ("08",)
    assert "stu-0007" not in people  # the tombstone is newer than the late change
    (applied,) = result.deltas
    assert (applied.changed, applied.stale) == (1, 2)
    line = record_line(late / "users.csv", "sourcedId", "stu-0005")
    (p,) = [p for p in result.problems if p.topic == "delta"]
    assert (p.file, p.line, p.field) == (str(late / "users.csv"), line, "dateLastModified")
    assert "older than the record in force" in p.message and p.count == 2


def test_a_change_older_than_the_bulk_row_is_ignored(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.1")
    users = tmp_path / "roster" / "users.csv"
    set_cell(users, "stu-0005", "dateLastModified", "2025-09-10T00:00:00Z")
    write_delta(
        tmp_path / "roster" / "d", "1.1",
        {"users.csv": [person_rows(district.person("stu-0005"), "1.1", grades="12")["users.csv"]]},
        when=DAY2,
    )  # fmt: skip
    result = load(district.directory, tmp_path / "state")
    assert result.roster.people["stu-0005"].grades != ("12",)
    assert result.deltas[0].stale == 1


def test_a_delta_touching_a_user_whose_enrollment_is_deleted(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    enr, cls = enrollment_of(district, "stu-0001")
    enr8, cls8 = enrollment_of(district, "stu-0008")
    write_delta(
        tmp_path / "roster" / "d", "1.2",
        {
            "users.csv": [
                person_rows(district.person("stu-0001"), "1.2", grades="07")["users.csv"],
                tombstone("stu-0008", DAY2),  # deleted, enrollments left in place
            ],
            "enrollments.csv": [tombstone(enr, DAY2), tombstone(enr8, DAY2)],
        },
        when=DAY2,
    )  # fmt: skip
    result = load(district.directory, tmp_path / "state")
    roster = result.roster
    assert roster.people["stu-0001"].grades == ("07",)
    assert cls not in roster.people["stu-0001"].classes
    assert "stu-0001" not in roster.classes[cls].students
    assert len(roster.people["stu-0001"].classes) == len(district.person("stu-0001").classes) - 1
    assert "stu-0008" not in roster.people and "stu-0008" not in roster.classes[cls8].students
    # the deleted user's other enrollments stay quiet: no "unknown user" for them
    assert [p for p in result.problems if p.kind == "skipped"] == []


def test_a_bad_delta_leaves_the_kept_roster_in_force(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    state = tmp_path / "state"
    first = load(district.directory, state)
    kept_before = (state / "state.json").read_text()
    bad = write_delta(
        tmp_path / "roster" / "bad", "1.2",
        {"users.csv": [person_rows(district.person("stu-0001"), "1.2")["users.csv"]]},
        when=DAY2,
    )  # fmt: skip
    header, rows = read_csv(bad / "users.csv")
    i = header.index("givenName")
    write_csv(bad / "users.csv", header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])

    with pytest.raises(RosterError) as e:
        load(district.directory, state)

    assert f"{bad / 'users.csv'}:1: givenName: required column is missing" in str(e.value)
    assert (state / "state.json").read_text() == kept_before
    assert [p.name for p in state.iterdir() if p.name.startswith(".")] == []
    shutil.rmtree(bad)
    assert load(district.directory, state).roster.version == first.roster.version


def test_a_delta_of_another_version_is_refused(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    write_delta(
        tmp_path / "roster" / "d", "1.1",
        {"users.csv": [person_rows(district.person("stu-0001"), "1.1")["users.csv"]]},
        when=DAY2,
    )  # fmt: skip
    with pytest.raises(RosterError) as e:
        load(district.directory, tmp_path / "state")
    assert "the delta export is OneRoster 1.1, the roster it changes is 1.2" in str(e.value)


def test_a_repeated_record_in_a_delta_file_is_an_error(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster")
    row = person_rows(district.person("stu-0001"), "1.1")["users.csv"]
    write_delta(tmp_path / "roster" / "d", "1.1", {"users.csv": [row, row]}, when=DAY2)
    with pytest.raises(RosterError) as e:
        load(district.directory, None)
    assert "'stu-0001' repeats (first on line 2): which change wins?" in str(e.value)


def test_a_new_bulk_export_replaces_the_deltas_before_it(tmp_path: Path) -> None:
    roster = tmp_path / "roster"
    district = write_district(roster, version="1.2", students=20)
    state = tmp_path / "state"
    write_delta(
        roster / "d1", "1.2",
        {"users.csv": [tombstone("stu-0003", DAY2)]}, when=DAY2,
    )  # fmt: skip
    assert "stu-0003" not in load(roster, state).roster.people
    write_district(roster, version="1.2", students=22, seed=2)  # next week's bulk export

    result = load(roster, state)

    assert "stu-0003" in result.roster.people and len(result.roster.people) == 26
    assert result.deltas == ()
    (p,) = [p for p in result.problems if p.topic == "delta"]
    assert p.file == str(roster / "d1") and "not applied again" in p.message
    assert len(district.people) == 24


def test_without_a_state_subdirectory_deltas_are_merged_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    write_delta(
        tmp_path / "roster" / "d", "1.2", {"users.csv": [tombstone("stu-0003", DAY2)]}, when=DAY2
    )
    result = load(district.directory, None)
    assert "stu-0003" not in result.roster.people and len(result.deltas) == 1
    assert not Path(result.roster.source).exists()  # a temporary merge
    assert result.kept == ""


def test_a_bulk_export_or_stray_files_in_a_subdirectory_are_left_alone(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster")
    write_district(tmp_path / "roster" / "backup", students=3)
    (tmp_path / "roster" / "notes").mkdir()
    (tmp_path / "roster" / "notes" / "list.csv").write_text("a,b\n")
    (tmp_path / "roster" / ".upload").mkdir()  # hidden: an upload under way
    result = load(district.directory, None)
    assert len(result.roster.people) == len(district.people) and result.deltas == ()
    assert sorted(
        (Path(p.file).relative_to(tmp_path).parts[1], p.kind) for p in result.problems
    ) == [
        ("backup", "warning"),
        ("notes", "warning"),
    ]


def test_the_district_loader_picks_up_a_delta_dropped_in(tmp_path: Path) -> None:
    from monitor.district import DistrictLoader

    root = Path(__file__).resolve().parents[2]
    d = tmp_path / "district"
    shutil.copytree(root / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    loader = DistrictLoader(d)
    first = loader.load()
    assert (d / "state" / "roster" / "state.json").exists()  # the base is kept
    sid = next(iter(first.roster.people))
    delta = d / "roster" / "delta-1"
    delta.mkdir()  # the directory first, the files a moment later, as an upload would
    early, results = loader.reload()
    assert [(r.component, r.ok) for r in results if r.component == "roster"] == [("roster", True)]
    assert early.roster.version == first.roster.version
    later = "2026-10-14T06:00:00Z"  # the example's rows were last modified 2026-07-15
    version = first.roster.oneroster_version
    write_delta(delta, version, {"users.csv": [tombstone(sid, later)]}, when=later)
    st = (delta / "users.csv").stat()  # coarse clocks: make the change visible
    os.utime(delta / "users.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))

    district, results = loader.reload()

    assert [(r.component, r.ok) for r in results if r.component == "roster"] == [("roster", True)]
    assert sid not in district.roster.people
    assert district.roster.version != first.roster.version
    assert district.resolver is not first.resolver


def test_a_state_directory_that_cannot_be_written_does_not_reject_the_roster(
    tmp_path: Path,
) -> None:
    district = write_district(tmp_path / "roster")
    state = tmp_path / "state"
    state.write_text("a file where the directory should be\n")
    result = load(district.directory, state)
    assert len(result.roster.people) == len(district.people) and result.kept == ""
    (p,) = result.problems
    assert (p.file, p.kind, p.topic) == (str(state), "warning", "delta")
    assert p.message.startswith("cannot be written (")


def test_restart_reports_the_kept_roster_it_read(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster")
    state = tmp_path / "state"
    write_delta(
        tmp_path / "roster" / "d", "1.1", {"users.csv": [tombstone("stu-0003", DAY2)]}, when=DAY2
    )
    applied = load(district.directory, state)
    again = load(district.directory, state)
    assert again.kept == applied.kept and again.roster.source == applied.kept
    # `monitor roster check STATE` and `diff` read a kept state as its merged roster
    from monitor.people.roster import read_roster_or_state

    assert read_roster_or_state(state, today=TODAY).roster.people == applied.roster.people


def test_a_file_marked_bulk_in_a_delta_export_replaces_its_table(tmp_path: Path) -> None:
    district = write_district(tmp_path / "roster", version="1.2")
    delta = write_delta(
        tmp_path / "roster" / "d", "1.2", {"users.csv": [tombstone("stu-0003", DAY2)]}, when=DAY2
    )
    # classes.csv in full (bulk): only the first class is left, the others go
    header, rows = read_csv(tmp_path / "roster" / "classes.csv")
    write_csv(delta / "classes.csv", header, rows[:1])
    set_cell(delta / "manifest.csv", "file.classes", "value", "bulk", key_column="propertyName")

    result = load(district.directory, tmp_path / "state")

    assert list(result.roster.classes) == [rows[0][0]]
    assert "stu-0003" not in result.roster.people
    first_class = district.classes[0]
    assert all(
        c == first_class.sourced_id for p in result.roster.people.values() for c in p.classes
    )
    # enrollments in the classes that went are unknown references now, reported per row
    assert {p.field for p in result.problems if p.kind == "skipped"} == {"classSourcedId"}
