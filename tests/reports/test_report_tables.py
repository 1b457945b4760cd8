"""The report's pandas tables against hand-computed expectations, on a generated district with
known events (reportworld.py), for the district and for one school; and the pure functions
on small frames."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from reportworld import (
    BLOCKED_BY_PLATFORM,
    BLOCKED_BY_WEEK,
    BYPASS,
    INCIDENTS,
    OVERVIEW_REQUESTS,
    PERIOD,
    TOP,
    UNDER13_BY_WEEK,
    World,
    build_world,
    new_database,
)

from monitor.reports import Period, Report, build
from monitor.reports import tables as t


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The generated district on a SQLite file, and on a new database of tests/pg.py's
    PostgreSQL: every expectation holds on both."""
    tmp = tmp_path_factory.mktemp("reports")
    if request.param == "sqlite":
        w = build_world(tmp)
        yield w
        w.store.close()
        w.loader.close()
        return
    with new_database(request.getfixturevalue("pg_dsn")) as url:
        w = build_world(tmp, url)
        yield w
        w.store.close()
        w.loader.close()


@pytest.fixture(scope="module")
def report(world: World) -> Report:
    return build(world.store, PERIOD, None, district=world.district, link_base="https://r.example")


def _col(report: Report, section: str, column: str) -> dict[str, object]:
    table = report.section(section).table
    return {str(k): v for k, v in table[column].items()}


def test_blocked_attempts_by_platform_and_week(report: Report) -> None:
    assert _col(report, "blocked_by_platform", "blocked") == {
        **BLOCKED_BY_PLATFORM, "total": sum(BLOCKED_BY_PLATFORM.values())
    }  # fmt: skip
    assert _col(report, "blocked_by_platform", "share %")["tiktok"] == round(100 * 17 / 31, 1)
    weekly = report.section("blocked_by_week").table
    assert _col(report, "blocked_by_week", "total") == BLOCKED_BY_WEEK
    assert weekly.loc["2026-11-02", "tiktok"] == 13 and weekly.loc["2026-11-09", "tiktok"] == 4
    assert weekly.loc["2026-11-09", "doh-google"] == 2


def test_under_13_attempts_on_platforms_not_for_children_and_their_trend(report: Report) -> None:
    weekly = report.section("under13_by_week").table
    got = {w: tuple(int(x) for x in row) for w, row in weekly.iterrows()}
    assert got == UNDER13_BY_WEEK
    trend = report.section("under13_trend").table["value"]
    assert trend["first week"] == 35 and trend["last week"] == 4
    assert trend["change %"] == round(100 * (4 - 35) / 35, 1)
    assert trend["slope per week"] == -31.0  # two points: the difference
    assert trend["direction"] == "falling"
    by_platform = report.section("under13_by_platform").table
    assert (
        by_platform.loc["YouTube", "attempts"] == 20 and by_platform.loc["YouTube", "blocked"] == 0
    )
    assert "YouTube Kids" not in by_platform.index  # made for children
    assert by_platform.loc["TikTok", "attempts"] == 14


def test_bypass_attempts_by_school(report: Report) -> None:
    table = report.section("bypass_by_school").table
    for school, row in BYPASS.items():
        assert table.loc[school].to_dict() == row
    assert table.loc["total", "total"] == 10


def test_overview_by_school(report: Report) -> None:
    requests = _col(report, "overview", "requests")
    assert requests == {**OVERVIEW_REQUESTS, "total": 166}
    assert _col(report, "overview", "refused connections") == {
        "es": 2, "hs": 7, "ms": 5, "total": 14
    }  # fmt: skip
    assert _col(report, "overview", "incidents") == {"es": 0, "hs": 2, "ms": 4, "total": 6}


def test_incidents_by_severity_and_status(report: Report) -> None:
    table = report.section("incidents_by_severity").table
    for severity, row in INCIDENTS.items():
        assert table.loc[severity].to_dict() == row
    assert table.loc["total", "total"] == 6


def test_time_to_acknowledge_and_resolve(report: Report) -> None:
    table = report.section("response_times").table
    # alice: ana's first incident acknowledged after 2 h, resolved after 5 h; her instagram one
    # acknowledged after 4 h. bob resolved ben's first after 3 h (resolving acknowledges).
    assert table.loc["ms · alice"].to_dict() == {
        "acknowledged": 2, "median hours to acknowledge": 3.0,
        "resolved": 1, "median hours to resolve": 5.0,
    }  # fmt: skip
    assert table.loc["hs · bob"].to_dict() == {
        "acknowledged": 1, "median hours to acknowledge": 3.0,
        "resolved": 1, "median hours to resolve": 3.0,
    }  # fmt: skip
    assert list(table.index) == [
        "hs · all counselors",
        "hs · bob",
        "ms · all counselors",
        "ms · alice",
    ]


def test_teacher_overrides_granted_and_used(report: Report) -> None:
    table = report.section("overrides").table
    assert list(table.index) == ["ov-ms", "ov-class"]  # ov-old ended before the period
    assert table.loc["ov-class", "requests allowed"] == 6
    assert table.loc["ov-class", "students"] == "class"
    assert table.loc["ov-class", "schools"] == "hs"
    assert table.loc["ov-class", "from"] == "2026-11-12 08:00"  # the district's time
    assert table.loc["ov-ms", "revoked"] == "yes" and table.loc["ov-ms", "students"] == 1
    summary = report.section("overrides_by_platform").table
    assert summary.loc["instagram"].to_dict() == {"granted": 1, "used": 1, "requests allowed": 6}
    assert summary.loc["total"].to_dict() == {"granted": 2, "used": 1, "requests allowed": 6}


def test_students_with_most_incidents_under_pseudonyms(world: World, report: Report) -> None:
    table = report.section("top_students").table
    expected = [(world.people[n], i, e) for n, i, e in TOP]
    got = [(str(p), int(r.incidents), int(r.events)) for p, r in table.iterrows()]
    assert got == expected
    ana = world.people["ana"]
    assert table.loc[ana, "highest severity"] == "high"
    assert table.loc[ana, "review link"] == f"https://r.example/students/{ana}"
    assert report.students == tuple(p for p, _i, _e in expected)
    for person in world.district.roster.people.values():  # never a name or roster id
        assert person.sourced_id not in report.to_csv()


def test_a_schools_report_holds_only_that_school(world: World) -> None:
    r = build(world.store, PERIOD, ["ms"], district=world.district)
    assert list(r.section("overview").table.index) == ["ms", "total"]
    assert _col(r, "blocked_by_platform", "blocked") == {"tiktok": 14, "instagram": 5, "total": 19}
    assert list(r.section("bypass_by_school").table.index) == ["ms", "total"]
    assert list(r.section("overrides").table.index) == ["ov-ms"]
    assert r.students == (world.people["ana"], world.people["cy"])
    assert all(i.startswith("ms ·") for i in r.section("response_times").table.index)


def test_an_empty_period_says_so(world: World) -> None:
    r = build(
        world.store, Period(date(2025, 1, 6), date(2025, 1, 12)), None, district=world.district
    )
    assert r.empty
    assert "Nothing was recorded in this period" in r.to_html()
    values = [line.rsplit(",", 1)[1] for line in r.to_csv().splitlines()[1:]]
    assert set(values) <= {"0", "flat", ""}  # zero weeks only
    assert '"empty": true' in r.to_json()
    weekly = r.section("blocked_by_week").table
    assert list(weekly.index) == ["2025-01-06"] and weekly.loc["2025-01-06", "total"] == 0


def test_the_period_is_checked() -> None:
    with pytest.raises(ValueError, match="--to must be on or after --from"):
        Period(date(2026, 11, 15), date(2026, 11, 2))
    with pytest.raises(ValueError, match="--to 'x'"):
        Period.parse("2026-11-02", "x")
    assert Period.last_week(date(2026, 12, 9)) == Period(date(2026, 11, 30), date(2026, 12, 6))
    assert PERIOD.weeks() == [date(2026, 11, 2), date(2026, 11, 9)]


@pytest.mark.parametrize(
    ("values", "direction"),
    [([10, 10, 10], "flat"), ([10, 20, 30], "rising"), ([30, 20, 10], "falling"), ([5], "flat"),
     ([0, 0], "flat"), ([100, 102, 101, 103], "flat")],
)  # fmt: skip
def test_trend_direction(values: list[int], direction: str) -> None:
    assert t.trend(pd.Series(values))["value"]["direction"] == direction


def test_blocked_by_week_groups_the_rest_as_other() -> None:
    rows = [(date(2026, 11, 2), f"p{i}", i + 1) for i in range(8)]
    df = pd.DataFrame(rows, columns=["day", "platform", "requests"])
    wide = t.blocked_by_week(df, [date(2026, 11, 2)])
    assert list(wide.columns) == ["total", "p7", "p6", "p5", "p4", "p3", "p2", "other"]
    assert wide.loc["2026-11-02", "other"] == 1 + 2 and wide.loc["2026-11-02", "total"] == 36


def test_response_times_resolving_first_counts_as_acknowledging() -> None:
    seen = datetime(2026, 1, 5, 9, tzinfo=UTC)
    df = pd.DataFrame(
        [(1, "hs", seen, datetime(2026, 1, 5, 10, 30, tzinfo=UTC), "c1", "resolved"),
         (2, "", seen, datetime(2026, 1, 5, 13, tzinfo=UTC), "c2", "acknowledged")],
        columns=["incident", "school", "first_seen", "at", "account", "to"],
    )  # fmt: skip
    table = t.response_times(df)
    assert table.loc["hs · c1"].to_dict() == {
        "acknowledged": 1, "median hours to acknowledge": 1.5,
        "resolved": 1, "median hours to resolve": 1.5,
    }  # fmt: skip
    assert table.loc["unknown · c2", "median hours to resolve"] == ""
