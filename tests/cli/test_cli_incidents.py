from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.cli.incidents import list_incidents
from monitor.incidents.events import IncidentEvent
from monitor.incidents.store import IncidentFilter, open_store

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def event(minute: int, **over: Any) -> IncidentEvent:
    base: dict[str, Any] = dict(
        time=T0 + timedelta(minutes=minute), person="p-00000000000000a1", school="ES-TEST",
        grade="5", age_band="under13", role="student", platform="tiktok", activity="view",
        action="block", rule_id="age.under13", reason="Under 13: children's platforms only.",
        host="www.tiktok.com", source="proxy", severity="low",
    )  # fmt: skip
    base.update(over)
    return IncidentEvent(**base)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    store = open_store(url)
    store.write_batch(
        [
            event(1),
            event(2),
            event(3, school="MS-TEST", platform="instagram", severity="high"),
            event(130, platform="snapchat", person="p-00000000000000b2"),
        ]
    )
    first = store.list(IncidentFilter(platform="instagram"))[0]
    store.update(first.id, status="acknowledged")
    store.close()
    return url


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["incidents", *args])


def test_list_table(db: str) -> None:
    result = run("list", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["id", "last", "seen", "(UTC)"]
    assert "snapchat" in lines[1]  # newest first
    assert lines[-1] == "3 of 3 incidents"
    tiktok = next(line for line in lines if "tiktok" in line)
    assert " 2 " in tiktok  # two events folded into one incident
    assert "p-00000000000000a1" in tiktok


@pytest.mark.parametrize(
    ("args", "platforms"),
    [
        ([], ["snapchat", "instagram", "tiktok"]),
        (["--school", "MS-TEST"], ["instagram"]),
        (["--platform", "tiktok"], ["tiktok"]),
        (["--status", "acknowledged"], ["instagram"]),
        (["--status", "new"], ["snapchat", "tiktok"]),
        (["--severity", "high"], ["instagram"]),
        (["--limit", "1"], ["snapchat"]),
        (["--limit", "1", "--offset", "1"], ["instagram"]),
        (["--school", "nowhere"], []),
    ],
)
def test_list_json_filters(db: str, args: list[str], platforms: list[str]) -> None:
    result = run("list", "--db", db, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["platform"] for r in rows] == platforms
    for r in rows:
        assert datetime.fromisoformat(r["last_seen"]).tzinfo is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["list", "--db", "sqlite:////nonexistent/dir/x.db"], 1, "no SQLite database at"),
        (["list", "--db", "mysql://u@h/db"], 1, "only sqlite"),
        (["list", "--db", "sqlite:///x.db", "--status", "closed"], 2, "Invalid value"),
        (["list", "--db", "sqlite:///x.db", "--limit", "0"], 2, "Invalid value"),
        (["list"], 2, "give --config DIR (the district's store) or --db URL"),
    ],
)
def test_list_errors(args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code
    assert message in result.output


def test_list_refuses_a_database_without_tables_and_init_creates_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    (tmp_path / "new.db").touch()
    result = run("list", "--db", url)
    assert result.exit_code == 1 and "no incident tables" in result.output
    assert run("init", "--db", url).exit_code == 0
    result = run("list", "--db", url)
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "0 of 0 incidents"


def test_list_incidents_is_a_plain_function(db: str) -> None:
    page = list_incidents(db, IncidentFilter(school="ES-TEST"), limit=1)
    assert page.total == 2
    assert [i.platform for i in page.incidents] == ["snapchat"]
