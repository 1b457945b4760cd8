"""Commands that read a district configuration directory: explain, override, incidents."""

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
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cfg") / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


def explain(district: Path, *args: str) -> dict[str, object]:
    r = run("explain", "--config", str(district), "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def generated_on(district: Path) -> str:
    return (district / "GENERATED_ON").read_text().strip()


@pytest.mark.parametrize(
    ("client", "host", "action", "rule", "band"),
    [
        ("127.0.0.11", "www.tiktok.com", "block", "under13", "under13"),
        ("127.0.0.11", "www.youtubekids.com", "allow", "kids-platforms", "under13"),
        ("127.0.0.13", "www.tiktok.com", "block", "student-social", "teen"),
        ("127.0.0.50", "www.tiktok.com", "allow", "staff", "staff"),
        ("127.0.0.99", "www.tiktok.com", "block", "under13", "unknown"),
        ("127.0.0.16", "www.tiktok.com", "block", "under13", "under13"),  # no birthDate
        ("127.0.0.13", "dns.google", "block", "bypass-student", "teen"),
        ("127.0.0.11", "www.wikipedia.org", "allow", "not-in-catalogue", "under13"),
    ],
)
def test_explain_decisions(
    district: Path, client: str, host: str, action: str, rule: str, band: str
) -> None:
    out = explain(
        district, "--client", client, "--host", host, "--at", f"{generated_on(district)}T19:00"
    )
    assert out["decision"]["action"] == action  # type: ignore[index]
    assert out["decision"]["rule_id"] == rule  # type: ignore[index]
    assert out["age_band_label"] == band
    assert "person" not in out  # the roster id never appears; the pseudonym stands in
    if band not in ("unknown",):
        assert str(out["pseudonym"]).startswith("p-")


def test_explain_birthday_edge_at_local_midnight(district: Path) -> None:
    """The demo student who turns 13 'tomorrow' (after the generation date) changes rule at
    local midnight in the district's time zone."""
    from datetime import date, timedelta

    day = date.fromisoformat(generated_on(district))
    before = explain(
        district, "--client", "127.0.0.12", "--host", "www.youtube.com", "--at", f"{day}T23:59"
    )
    after = explain(
        district,
        "--client",
        "127.0.0.12",
        "--host",
        "www.youtube.com",
        "--at",
        f"{day + timedelta(days=1)}T00:00",
    )
    assert before["band"] == "under13" and before["decision"]["rule_id"] == "under13"  # type: ignore[index]
    assert after["band"] == "teen" and after["decision"]["rule_id"] != "under13"  # type: ignore[index]


def test_explain_text_names_who_what_and_why(district: Path) -> None:
    r = run(
        "explain",
        "--config",
        str(district),
        "--client",
        "127.0.0.13",
        "--host",
        "www.tiktok.com",
        "--method",
        "POST",
        "--path",
        "/api/commit/item/post/?secret=1",
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for part in (
        "who:",
        "role student, school ms",
        "age band teen",
        "platform:  tiktok",
        "activity:  post",
        "decision:  BLOCK",
        "reason:",
        "rules checked:",
    ):
        assert part in out, (part, out)
    assert "secret" not in out  # query strings are never shown
    assert "stu-" not in out.split("rules checked:")[0]


def test_explain_bad_config_names_file_and_line(tmp_path: Path, district: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(district, bad)
    (bad / "policy.yaml").write_text(
        (bad / "policy.yaml").read_text().replace("action: block", "action: blok", 1)
    )
    r = run("explain", "--config", str(bad), "--client", "127.0.0.1", "--host", "x.example")
    assert r.returncode == 1
    assert "policy.yaml:" in r.stderr and "action" in r.stderr


def test_override_with_config_uses_the_district_store_and_roster(district: Path) -> None:
    r = run(
        "override",
        "grant",
        "--config",
        str(district),
        "--teacher",
        "stu-00001",
        "--platform",
        "instagram",
        "--student",
        "stu-00555",
        "--minutes",
        "30",
    )
    assert r.returncode == 1 and "no staff member" in r.stderr
    r = run(
        "override",
        "grant",
        "--config",
        str(district),
        "--teacher",
        "tch-0012",
        "--platform",
        "instagram",
        "--student",
        "stu-00555",
        "--minutes",
        "30",
        "--reason",
        "class project",
    )
    assert r.returncode == 0, r.stderr
    # the grant went to the district's incident store (which every proxy and sensor reads),
    # not to a file in the state directory (the store moved there)
    assert not (district / "state" / "overrides.json").exists()
    store = shared_overrides(f"sqlite:///{district / 'state' / 'incidents.sqlite'}")
    assert [(o.platform, o.students) for o in store.load()] == [("instagram", ("stu-00555",))]
    store.source.close()  # type: ignore[attr-defined]
    listed = run("override", "list", "--config", str(district), "--format", "json")
    rows = json.loads(listed.stdout)
    assert [row["platform"] for row in rows] == ["instagram"]
    oid = rows[0]["id"]
    assert (
        run("override", "revoke", "--config", str(district), oid, "--by", "tch-0012").returncode
        == 0
    )
    assert (
        json.loads(run("override", "list", "--config", str(district), "--format", "json").stdout)
        == []
    )


def test_incidents_list_with_config_reads_the_district_store(district: Path) -> None:
    assert run("incidents", "init", "--config", str(district)).returncode == 0
    r = run("incidents", "list", "--config", str(district), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    assert (district / "state" / "incidents.sqlite").exists()
