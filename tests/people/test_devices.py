from __future__ import annotations

from pathlib import Path

import pytest

from monitor.model import Device
from monitor.people.devices import Inventory, InventoryError, normalise_mac, read_inventory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("AA-BB-CC-00-00-01", "aa:bb:cc:00:00:01"),
        ("aabb.cc00.0001", "aa:bb:cc:00:00:01"),
        ("AABB.CC00.0001", "aa:bb:cc:00:00:01"),
        ("aabbcc000001", "aa:bb:cc:00:00:01"),
        ("  02:00:5e:10:00:01 ", "02:00:5e:10:00:01"),
        ("2:0:5e:10:0:1", "02:00:5e:10:00:01"),  # dhcpd may drop leading zeros
    ],
)
def test_normalise_mac(text: str, expected: str) -> None:
    assert normalise_mac(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aa:bb:cc:dd:ee",  # five octets
        "aa:bb:cc:dd:ee:ff:00",  # seven
        "aa:bb-cc:dd:ee:ff",  # mixed separators
        "aa:bb:cc:dd:ee:fg",
        "aabb.ccdd.eef",
        "aabb.ccdd.eeff.0011",
        "aabbccddeef",
        "aabbccddeeff00",
        "aaa:bb:cc:dd:ee:ff",
        "not a mac",
    ],
)
def test_normalise_mac_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC address"):
        normalise_mac(text)


def write(tmp_path: Path, text: str, name: str = "devices.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_a_good_inventory(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "\ufeffdeviceId,macAddress,assignedUser,school,kind\n"
        "cb-0001,AA-BB-CC-00-00-01,s-0001,sch-01,chromebook\n"
        "\n"
        "cart-07,aabb.cc00.0007,,sch-01,chromebook\n"
        "lt-0002,aabbcc000002,Test.Teacher2,,laptop\n",
    )
    inv = read_inventory(p)
    assert isinstance(inv, Inventory)
    assert inv.warnings == ()
    assert inv.devices == (
        Device("cb-0001", "aa:bb:cc:00:00:01", "s-0001", "sch-01", "chromebook"),
        Device("cart-07", "aa:bb:cc:00:00:07", None, "sch-01", "chromebook"),
        Device("lt-0002", "aa:bb:cc:00:00:02", "Test.Teacher2", None, "laptop"),
    )
    assert set(inv.by_mac()) == {"aa:bb:cc:00:00:01", "aa:bb:cc:00:00:07", "aa:bb:cc:00:00:02"}
    assert inv.by_id()["cart-07"].user is None


def test_optional_columns_and_extra_columns_warn(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "macAddress,deviceId,assignedUser,colour\n"
        "aa:bb:cc:00:00:01,cb-0001,s-0001,blue\n"
        ",cb-0002,s-0002,red\n",
    )
    inv = read_inventory(p)
    assert [d.device_id for d in inv.devices] == ["cb-0001", "cb-0002"]
    assert inv.devices[0].school is None and inv.devices[0].kind == ""
    assert inv.devices[1].mac is None
    assert inv.warnings == (
        f"{p}:1: column 'colour': unknown column, ignored",
        f"{p}:3: field 'macAddress': device 'cb-0002' has no MAC address; "
        "only a static address map entry can find it",
    )


def test_every_problem_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "deviceId,macAddress,assignedUser,school,kind\n"  # 1
        "cb-0001,aa:bb:cc:00:00:01,s-0001,sch-01,chromebook\n"  # 2
        "cb-0001,aa:bb:cc:00:00:02,s-0002,sch-01,chromebook\n"  # 3 duplicate id
        "cb-0003,AA-BB-CC-00-00-01,s-0003,sch-01,chromebook\n"  # 4 duplicate MAC
        "cb-0004,aa:bb:cc:00:00:zz,s-0004,sch-01,chromebook\n"  # 5 bad MAC
        " ,aa:bb:cc:00:00:05,s-0005,sch-01,chromebook\n"  # 6 empty id
        "cb-0006,aa:bb:cc:00:00:06,s-0006\n",  # 7 short row
    )
    with pytest.raises(InventoryError) as ei:
        read_inventory(p)
    assert ei.value.problems == (
        f"{p}:3: field 'deviceId': duplicate 'cb-0001' (first at line 2)",
        f"{p}:4: field 'macAddress': duplicate aa:bb:cc:00:00:01 (first at line 2)",
        f"{p}:5: field 'macAddress': 'aa:bb:cc:00:00:zz' is not a MAC address",
        f"{p}:6: field 'deviceId': must not be empty",
        f"{p}:7: row has 3 cells, the header has 5",
    )
    assert isinstance(ei.value, ValueError)
    assert str(ei.value).startswith(f"{p}: device inventory rejected, 5 problems:")


def test_line_numbers_count_quoted_newlines(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "deviceId,macAddress,assignedUser,school,kind\n"
        'cb-0001,aa:bb:cc:00:00:01,s-0001,sch-01,"chrome\nbook"\n'
        "cb-0002,bad,s-0002,sch-01,chromebook\n",
    )
    with pytest.raises(InventoryError) as ei:
        read_inventory(p)
    assert ei.value.problems == (f"{p}:4: field 'macAddress': 'bad' is not a MAC address",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "1: the file is empty"),
        ("deviceId,assignedUser\ncb-1,s-1\n", "1: column 'macAddress': required column is missing"),
        (
            "deviceId,macAddress,assignedUser,deviceId\n",
            "1: column 'deviceId': appears twice in the header",
        ),
    ],
)
def test_bad_headers(tmp_path: Path, text: str, problem: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(InventoryError) as ei:
        read_inventory(p)
    assert ei.value.problems[0].startswith(f"{p}:{problem}")


def test_unreadable_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read file"):
        read_inventory(tmp_path / "missing.csv")
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"deviceId,macAddress,assignedUser\ncb-\xe9,aa:bb:cc:00:00:01,\n")
    with pytest.raises(InventoryError, match="not UTF-8"):
        read_inventory(p)


def test_many_problems_are_capped_in_the_message(tmp_path: Path) -> None:
    rows = "".join(f"cb-{i},bad{i},\n" for i in range(60))
    p = write(tmp_path, "deviceId,macAddress,assignedUser\n" + rows)
    with pytest.raises(InventoryError) as ei:
        read_inventory(p)
    assert len(ei.value.problems) == 60
    assert "… and 10 more" in str(ei.value)
