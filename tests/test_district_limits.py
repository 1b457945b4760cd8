"""A reload meets a hostile or broken file (alias bomb, deep nesting, a FIFO, a directory where
a file belongs): the component is rejected whole, with the file named, the running version stays
in force, and the reload itself never raises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from badfiles import (
    ALIASES,
    billion_laughs,
    deep_flow,
    fifo_watchdog,
    replace_with_fifo,
)
from test_district import touch_write

from monitor.district import DistrictLoader, pseudonym_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def district(tmp_path: Path) -> Path:
    d = tmp_path / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


@pytest.mark.parametrize(
    ("file", "text", "component", "message"),
    [
        ("policy.yaml", billion_laughs(), "policy", f"policy.yaml:1: {ALIASES}"),
        ("policy.yaml", deep_flow(), "policy", "policy.yaml:1:"),
        ("policy.yaml", "closed: [2025-13-45]\n", "policy", "policy.yaml:1: '2025-13-45'"),
    ],
    ids=["alias-bomb", "deep", "bad-date"],
)
def test_a_hostile_policy_is_rejected_and_the_running_one_stays(
    district: Path, file: str, text: str, component: str, message: str
) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    touch_write(district / file, text)
    d, results = loader.reload()
    failed = [r for r in results if not r.ok]
    assert [r.component for r in failed] == [component], results
    assert message in failed[0].message
    assert d.policy is first.policy
    assert d.resolver.resolve("127.0.0.11").person == first.resolver.resolve("127.0.0.11").person
    assert loader.reload()[1] == []  # reported once


def test_an_alias_bomb_in_a_district_catalogue_is_rejected(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    (district / "local.yaml").write_text(billion_laughs("platforms"))
    text = (district / "district.yaml").read_text()
    touch_write(
        district / "district.yaml", text.replace("catalogue: []", "catalogue: [local.yaml]")
    )
    d, results = loader.reload()
    failed = {r.component: r.message for r in results if not r.ok}
    assert "catalogue" in failed and f"local.yaml:1: {ALIASES}" in failed["catalogue"]
    assert d.catalogue is first.catalogue and d.classifier is first.classifier
    assert d.classifier("www.tiktok.com") == "tiktok"
    assert len(d.policy.rules) == len(first.policy.rules)  # recompiled: settings changed


@pytest.mark.parametrize(
    "text",
    [billion_laughs("roster"), deep_flow("roster")],
    ids=["alias-bomb", "deep"],
)
def test_a_hostile_district_yaml_keeps_everything(district: Path, text: str) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    touch_write(district / "district.yaml", text)
    d, results = loader.reload()
    assert d is first
    assert [r.component for r in results] == ["settings"] and not results[0].ok
    assert "district.yaml:" in results[0].message


def test_a_fifo_instead_of_the_policy_is_rejected_at_once(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    replace_with_fifo(district / "policy.yaml")
    with fifo_watchdog(district / "policy.yaml") as released:
        d, results = loader.reload()
    assert not released, "the reload waited for a writer on the FIFO"
    failed = [r for r in results if not r.ok]
    assert [r.component for r in failed] == ["policy"]
    assert failed[0].message == (
        f"{district / 'policy.yaml'}: cannot read file: not a regular file (a FIFO, socket or "
        "device?)"
    )
    assert d.policy is first.policy


@pytest.mark.parametrize(
    ("file", "component"),
    [
        ("roster/users.csv", "roster"),
        ("devices.csv", "devices"),
        ("leases/dnsmasq.leases", "leases"),
    ],
)
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_data_file_that_is_not_a_file_is_rejected(
    district: Path, file: str, component: str, kind: str
) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    path = district / file
    if kind == "directory":
        path.unlink()
        path.mkdir()
    else:
        replace_with_fifo(path)
    with fifo_watchdog(path) as released:
        d, results = loader.reload()
    assert not released, "the reload waited for a writer on the FIFO"
    failed = [r for r in results if not r.ok]
    assert [r.component for r in failed] == [component], results
    why = "is a directory" if kind == "directory" else "not a regular file"
    assert str(path) in failed[0].message and why in failed[0].message, failed[0].message
    assert len(d.roster.people) == len(first.roster.people)
    assert d.resolver.resolve("127.0.0.11").person == first.resolver.resolve("127.0.0.11").person


def test_a_deeply_nested_override_store_is_rejected_and_reload_goes_on(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    store = first.overrides_path
    store.parent.mkdir(parents=True, exist_ok=True)
    touch_write(store, "[" * 100_000 + "]" * 100_000)
    d, results = loader.reload()  # a RecursionError escaped from here before
    failed = [r for r in results if not r.ok]
    assert [r.component for r in failed] == ["overrides"]
    assert failed[0].message == f"{store}: invalid JSON: nested too deeply"
    assert d.overrides is first.overrides


@pytest.mark.parametrize(
    ("content", "why"),
    [("dir", "cannot read the pseudonym key: is a directory"), (b"zz-not-hex\n", "must be hex")],
)
def test_a_bad_pseudonym_key_file_names_the_file(
    district: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes, why: str
) -> None:
    monkeypatch.delenv("MONITOR_PSEUDONYM_KEY", raising=False)
    d = DistrictLoader(district).load()
    key = d.state_dir / "pseudonym.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if content == "dir":
        key.mkdir()
    else:
        assert isinstance(content, bytes)
        key.write_bytes(content)
    with pytest.raises(ValueError) as e:
        pseudonym_key(d)
    assert str(e.value).startswith(f"{key}: ") and why in str(e.value)
