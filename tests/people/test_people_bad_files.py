"""The people loaders (roster, device inventory, leases) meet a directory or a FIFO where a file
belongs, or a huge value: one rejection naming the file, at once, with the value cut short."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from badfiles import fifo_watchdog, replace_with_fifo
from oneroster_factory import set_cell, write_district

from monitor.people.devices import InventoryError, read_inventory
from monitor.people.leases import LeaseFileError, read_leases
from monitor.people.roster import RosterError, load_roster

NOW = 1_750_000_000
NOT_REGULAR = "not a regular file (a FIFO, socket or device?)"
SHOWN_100K = "x" * 100 + "… (100000 characters)"


def make_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("name", ["users.csv", "manifest.csv", "orgs.csv", "enrollments.csv"])
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_roster_file_that_is_not_a_file_rejects_the_roster(
    tmp_path: Path, name: str, kind: str
) -> None:
    write_district(tmp_path)
    path = tmp_path / name
    make_dir(path) if kind == "directory" else replace_with_fifo(path)
    with fifo_watchdog(path) as released, pytest.raises(RosterError) as e:
        load_roster(tmp_path, today=date(2025, 9, 1))
    assert not released, "the roster reader waited for a writer on the FIFO"
    what = "a directory" if kind == "directory" else NOT_REGULAR
    assert [str(p) for p in e.value.problems if p.kind == "error"] == [
        f"{path}: is {what}: expected a CSV file"
    ]


def test_a_long_roster_value_is_cut_short(tmp_path: Path) -> None:
    fake = write_district(tmp_path)
    users = tmp_path / "users.csv"
    line = set_cell(users, fake.students[0].sourced_id, "status", "x" * 100_000)
    loaded = load_roster(tmp_path, today=date(2025, 9, 1))
    (problem,) = loaded.problems
    assert str(problem) == (
        f"{users}:{line}: status: '{SHOWN_100K}' is not active or tobedeleted: row skipped"
    )


@pytest.mark.parametrize(
    ("kind", "why"), [("directory", "is a directory, not a file"), ("fifo", NOT_REGULAR)]
)
def test_a_device_inventory_that_is_not_a_file(tmp_path: Path, kind: str, why: str) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("deviceId,macAddress,assignedUser\n")
    make_dir(path) if kind == "directory" else replace_with_fifo(path)
    with fifo_watchdog(path) as released, pytest.raises(InventoryError) as e:
        read_inventory(path)
    assert not released
    assert e.value.problems == (f"{path}: cannot read file: {why}",)


def test_a_long_device_value_is_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("deviceId,macAddress,assignedUser\ncb-1," + "x" * 100_000 + ",\n")
    with pytest.raises(InventoryError) as e:
        read_inventory(path)
    assert e.value.problems == (
        f"{path}:2: field 'macAddress': '{SHOWN_100K}' is not a MAC address",
    )


@pytest.mark.parametrize("fmt", ["dhcpd", "dnsmasq", "kea"])
@pytest.mark.parametrize(
    ("kind", "why"), [("directory", "is a directory, not a file"), ("fifo", NOT_REGULAR)]
)
def test_a_lease_file_that_is_not_a_file(tmp_path: Path, fmt: str, kind: str, why: str) -> None:
    path = tmp_path / "leases"
    path.write_text("")
    make_dir(path) if kind == "directory" else replace_with_fifo(path)
    with fifo_watchdog(path) as released, pytest.raises(LeaseFileError) as e:
        read_leases(fmt, path, now=NOW)  # type: ignore[arg-type]
    assert not released
    assert e.value.problems == (f"{path}: cannot read file: {why}",)


def test_a_long_lease_value_is_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "dnsmasq.leases"
    path.write_text("x" * 100_000 + " aa:bb:cc:00:00:01 10.0.0.1 host *\n")
    with pytest.raises(LeaseFileError) as e:
        read_leases("dnsmasq", path, now=NOW)
    assert e.value.problems == (
        f"{path}:1: field 'expiry': '{SHOWN_100K}' is not a number of seconds",
    )
