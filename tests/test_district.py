"""The district configuration loader: load everything, reload what changed, keep the last good
version of a component whose new file is broken."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from monitor.district import DistrictLoader
from monitor.yamlfile import ConfigError

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


def touch_write(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # coarse clocks: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_load_builds_every_part(district: Path) -> None:
    d = DistrictLoader(district).load()
    assert len(d.roster.people) > 1000
    assert d.school_label("sch-201") == "ms" and d.school_label("nope") == "unknown"
    assert d.classifier("www.tiktok.com") == "tiktok"
    who = d.resolver.resolve("127.0.0.11")
    assert who.person is not None and who.device is not None
    assert d.store_url.endswith("state/incidents.sqlite")
    assert len(d.leases) == 3


def test_nothing_changed_means_no_reload(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    again, results = loader.reload()
    assert again is first and results == []


@pytest.mark.parametrize(
    ("file", "breakage", "component", "message"),
    [
        ("policy.yaml", ("action: block", "action: blok"), "policy", "policy.yaml:"),
        ("roster/users.csv", (",", ";"), "roster", "users.csv"),
        ("devices.csv", ("02:", "zz:"), "devices", "devices.csv:"),
        ("leases/dnsmasq.leases", (" 02:", " bogus "), "leases", "dnsmasq.leases:"),
    ],
)
def test_a_broken_file_is_rejected_and_the_old_version_stays(
    district: Path, file: str, breakage: tuple[str, str], component: str, message: str
) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    path = district / file
    good = path.read_text()
    touch_write(path, good.replace(*breakage))
    d, results = loader.reload()
    failed = [r for r in results if not r.ok]
    assert [r.component for r in failed] == [component], results
    assert message in failed[0].message
    # everything still answers as before
    assert d.resolver.resolve("127.0.0.11").person == first.resolver.resolve("127.0.0.11").person
    assert len(d.roster.people) == len(first.roster.people)
    assert len(d.policy.rules) == len(first.policy.rules)
    # the same broken file is reported once, not at every check
    assert loader.reload()[1] == []
    # fixing it brings the component back
    touch_write(path, good)
    d2, results2 = loader.reload()
    assert results2 and all(r.ok for r in results2), results2


def test_roster_change_reaches_identity(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    assert first.resolver.resolve("127.0.0.11").person is not None
    # move the demo address to a guest network: identity follows the settings file
    text = (district / "district.yaml").read_text()
    touch_write(
        district / "district.yaml",
        text.replace("{cidr: 127.0.0.11/32, device:", "{cidr: 127.0.0.111/32, device:"),
    )
    d, results = loader.reload()
    assert all(r.ok for r in results), results
    assert d.resolver.resolve("127.0.0.11").person is None
    assert d.resolver.resolve("127.0.0.111").person is not None


def test_catalogue_addition_is_picked_up(district: Path) -> None:
    loader = DistrictLoader(district)
    loader.load()
    extra = district / "local-catalogue.yaml"
    extra.write_text(
        "platforms:\n  - id: localchat\n    name: Local Chat\n    owner: Nobody\n"
        "    category: messaging\n    min_age: 13\n    suffixes: [localchat.example]\n"
        "    page_hosts: [localchat.example]\n"
    )
    text = (district / "district.yaml").read_text()
    touch_write(
        district / "district.yaml",
        text.replace("catalogue: []", "catalogue: [local-catalogue.yaml]"),
    )
    d, results = loader.reload()
    assert all(r.ok for r in results), results
    assert d.classifier("chat.localchat.example") == "localchat"


def test_bad_settings_at_start_raise_with_file_and_line(district: Path) -> None:
    text = (district / "district.yaml").read_text()
    (district / "district.yaml").write_text(text + "\nunknown_setting: 1\n")
    with pytest.raises(ConfigError) as e:
        DistrictLoader(district).load()
    assert "district.yaml:" in str(e.value) and "unknown_setting" in str(e.value)


def test_bad_settings_on_reload_keep_everything(district: Path) -> None:
    loader = DistrictLoader(district)
    first = loader.load()
    time.sleep(0.01)
    text = (district / "district.yaml").read_text()
    touch_write(district / "district.yaml", text.replace("identity_order:", "identity_ordr:"))
    d, results = loader.reload()
    assert d is first
    assert [r.component for r in results] == ["settings"] and not results[0].ok
