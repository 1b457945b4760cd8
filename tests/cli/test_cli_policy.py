"""``monitor policy check`` and ``monitor override grant|list|revoke`` through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.cli.override import grant_override, parse_until
from monitor.platforms import catalogue as catalogue_mod
from monitor.rules.overrides import OverrideStore

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "policy_example.yaml"
NY = ZoneInfo("America/New_York")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- policy check


def test_policy_check_ok_prints_rules() -> None:
    code, out, _ = run("policy", "check", str(EXAMPLE), "--school", "es", "--school", "ms",
                       "--school", "hs")  # fmt: skip
    assert code == 0
    assert out.splitlines()[0] == f"{EXAMPLE}: ok"
    assert "timezone: America/New_York" in out
    assert "1. bypass-student: who=student bypass=yes → block, incident high" in out
    assert "approved-school-hours: who=student approved=yes in_school_hours=yes → restrict" in out
    assert out.rstrip().endswith("default: block")


def test_policy_check_error_exits_1_with_file_line_field(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "approved: [youtube]", "approved: [youtubee]"
    )
    bad = tmp_path / "policy.yaml"
    bad.write_text(text, encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("approved:"))
    code, out, err = run("policy", "check", str(bad))
    assert code == 1 and out == ""
    assert err.strip() == (
        f"Error: {bad}:{line}: field 'approved[0]': unknown platform 'youtubee': not in the "
        "catalogue (did you mean 'youtube'?)"
    )


def test_policy_check_unknown_school(tmp_path: Path) -> None:
    code, _, err = run("policy", "check", str(EXAMPLE), "--school", "es", "--school", "ms")
    assert code == 1 and "school 'hs': field 'id': unknown school 'hs'" in err


def test_policy_check_with_district_catalogue(tmp_path: Path) -> None:
    extra = tmp_path / "catalogue.yaml"
    extra.write_text(
        "platforms:\n"
        "  - id: fakegram\n    name: Fakegram\n    owner: Example Owner\n    category: social\n"
        "    min_age: 13\n    suffixes: [fakegram.example]\n",
        encoding="utf-8",
    )
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "approved: [youtube]", "approved: [youtube, fakegram]"
    )
    pol = tmp_path / "policy.yaml"
    pol.write_text(text, encoding="utf-8")
    assert run("policy", "check", str(pol))[0] == 1  # not in the shipped catalogue
    code, out, _ = run("policy", "check", str(pol), "--catalog", str(extra))
    assert code == 0 and "approved platforms: fakegram, youtube" in out


# ---------------------------------------------------------------- overrides


def test_override_grant_list_revoke(tmp_path: Path) -> None:
    store = tmp_path / "overrides.json"
    code, out, err = run("override", "grant", "--store", str(store), "--teacher", "t-0001",
                         "--platform", "tiktok", "--class", "c-bio", "--minutes", "45",
                         "--reason", "fake media lesson", "--policy", str(EXAMPLE))  # fmt: skip
    assert code == 0, err
    assert out.startswith("granted ov-") and "tiktok for class c-bio until " in out
    (ov,) = OverrideStore(store).load()
    assert ov.ends - ov.starts == timedelta(minutes=45) and ov.reason == "fake media lesson"
    assert out.strip().endswith(ov.ends.astimezone(NY).strftime("%Y-%m-%d %H:%M %Z"))

    # the same class and platform again: refused, naming the existing grant
    code, _, err = run("override", "grant", "--store", str(store), "--teacher", "t-0002",
                       "--platform", "tiktok", "--class", "c-bio", "--minutes", "10")  # fmt: skip
    assert code == 1 and f"Error: overlaps override {ov.id} (class c-bio, tiktok" in err

    code, out, _ = run("override", "list", "--store", str(store), "--policy", str(EXAMPLE))
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["id", "platform", "target"]
    assert row.startswith(ov.id) and "t-0001 (teacher)" in row and "active" in row
    assert row.endswith("fake media lesson")

    code, out, _ = run("override", "revoke", "--store", str(store), ov.id, "--by", "t-0003")
    assert (code, out.strip()) == (0, f"revoked {ov.id} (tiktok, class c-bio)")
    assert run("override", "list", "--store", str(store))[1].strip() == "no overrides"
    code, out, _ = run("override", "list", "--store", str(store), "--all", "--format", "json")
    (row_json,) = json.loads(out)
    assert row_json["id"] == ov.id and row_json["status"].startswith("revoked by t-0003 at ")
    code, _, err = run("override", "revoke", "--store", str(store), ov.id, "--by", "t-0003")
    assert code == 1 and "already revoked" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--platform", "tiktok", "--minutes", "10"], "give either --class or one or more --student"),
     (["--platform", "tiktok", "--class", "c-1", "--student", "s-1", "--minutes", "10"],
      "give either --class or one or more --student"),
     (["--platform", "tiktok", "--class", "c-1"], "give either --minutes or --until"),
     (["--platform", "tiktok", "--class", "c-1", "--minutes", "0"], "--minutes must be positive"),
     (["--platform", "tiktok", "--class", "c-1", "--minutes", "1500"], "at most 1d"),
     (["--platform", "fakebook", "--class", "c-1", "--minutes", "10"], "unknown platform"),
     (["--platform", "doh-google", "--class", "c-1", "--minutes", "10"], "is a bypass service"),
     (["--platform", "tiktok", "--class", "c-1", "--until", "soon"], "'soon' is not a time")],
)  # fmt: skip
def test_override_grant_errors(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "overrides.json"
    code, _, err = run("override", "grant", "--store", str(store), "--teacher", "t-0001", *args)
    assert code != 0 and message in err
    assert not store.exists()


def test_override_grant_until_iso_and_student_targets(tmp_path: Path) -> None:
    store = tmp_path / "overrides.json"
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    code, out, err = run("override", "grant", "--store", str(store), "--teacher", "t-0001",
                         "--platform", "youtube", "--student", "s-0001", "--student", "s-0002",
                         "--until", until.isoformat(), "--role", "aide")  # fmt: skip
    assert code == 0, err
    (ov,) = OverrideStore(store).load()
    assert ov.ends == until and ov.students == ("s-0001", "s-0002")
    assert ov.granted_by_role == "aide" and "students s-0001, s-0002" in out


def test_override_list_damaged_store(tmp_path: Path) -> None:
    store = tmp_path / "overrides.json"
    store.write_text("{\n  nope\n}\n", encoding="utf-8")
    code, _, err = run("override", "list", "--store", str(store))
    assert code == 1 and f"Error: {store}:2: invalid JSON" in err


NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)  # 09:00 in New York


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10:30", datetime(2025, 3, 3, 10, 30, tzinfo=NY)),
     ("2025-03-03T12:00", datetime(2025, 3, 3, 12, 0, tzinfo=NY)),
     ("2025-03-03 17:00+00:00", datetime(2025, 3, 3, 17, 0, tzinfo=UTC))],
)  # fmt: skip
def test_parse_until(text: str, expected: datetime) -> None:
    assert parse_until(text, NY, NOW) == expected


def test_parse_until_rejects_bad_clock_time() -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_until("25:00", NY, NOW)


def test_grant_override_function_uses_policy_zone(tmp_path: Path) -> None:
    st = OverrideStore(tmp_path / "o.json")
    ov = grant_override(st, teacher="t-0001", platform="tiktok", class_id="c-bio", students=(),
                        minutes=None, until="11:00", reason="", catalogue=catalogue_mod.load(),
                        tz=NY, now=NOW)  # fmt: skip
    assert ov.starts == NOW and ov.ends == datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="would end in the past"):
        grant_override(st, teacher="t-0001", platform="tiktok", class_id="c-art", students=(),
                       minutes=None, until="08:00", reason="", catalogue=catalogue_mod.load(),
                       tz=NY, now=NOW)  # fmt: skip
