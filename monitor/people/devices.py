"""The district's device inventory: which device has which MAC address, and who it is assigned to.

File format (CSV, UTF-8, a BOM is allowed, one header line, blank lines ignored)::

    deviceId,macAddress,assignedUser,school,kind
    cb-0001,AA-BB-CC-00-00-01,s-0001,sch-01,chromebook
    cart-07,aabb.cc00.0007,,sch-01,chromebook

- ``deviceId`` (required column, never empty, unique): the district's asset tag.
- ``macAddress`` (required column, unique): written ``aa:bb:cc:dd:ee:ff``, ``AA-BB-CC-DD-EE-FF``,
  ``aabb.ccdd.eeff`` or ``aabbccddeeff``; stored as lowercase ``aa:bb:cc:dd:ee:ff``. An empty cell
  is allowed with a warning: such a device can only be found through a static address map entry.
- ``assignedUser`` (required column, may be empty for shared devices): a roster sourcedId or
  username, kept as written. It is resolved against the roster by ``monitor.people.identity``, which
  warns about unknown users and keeps their devices with no user.
- ``school`` (optional column): a school sourcedId. ``kind`` (optional column): chromebook,
  laptop, tablet, …
- Any other column is ignored with a warning.

Errors name ``file:line: field 'x': message`` (duplicate deviceId or MAC address, a bad MAC
address, an empty deviceId, a row with the wrong number of cells). Every problem in the file is
collected and the whole file is rejected with one :class:`InventoryError`: a half-read inventory
would silently lose devices.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from monitor.model import Device
from monitor.yamlfile import RejectedFileError, read_regular_file, shorten

COLUMNS = ("deviceId", "macAddress", "assignedUser", "school", "kind")
REQUIRED_COLUMNS = ("deviceId", "macAddress", "assignedUser")


_HEX = "0123456789abcdef"
_SEP_GROUP = re.compile(r"[0-9a-f]{1,2}")
_DOT_GROUP = re.compile(r"[0-9a-f]{4}")
_PLAIN = re.compile(r"[0-9a-f]{12}")


class InventoryError(RejectedFileError):
    """A device inventory file is invalid; ``problems`` lists every ``file:line: …`` message."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(path, "device inventory", problems)


def normalise_mac(value: str) -> str:
    """Return ``aa:bb:cc:dd:ee:ff`` for a 48-bit MAC address in a common spelling.

    Accepts ``:`` or ``-`` separated octets (one or two hex digits each, as dhcpd may write
    them), Cisco ``aabb.ccdd.eeff`` and bare ``aabbccddeeff``; raises ValueError otherwise.
    """
    text = value.strip().lower()
    octets: list[str] | None = None
    for sep in (":", "-"):
        if sep in text:
            parts = text.split(sep)
            if len(parts) == 6 and all(_SEP_GROUP.fullmatch(p) for p in parts):
                octets = [p.rjust(2, "0") for p in parts]
            break
    else:
        if "." in text:
            parts = text.split(".")
            if len(parts) == 3 and all(_DOT_GROUP.fullmatch(p) for p in parts):
                joined = "".join(parts)
                octets = [joined[i : i + 2] for i in range(0, 12, 2)]
        elif _PLAIN.fullmatch(text):
            octets = [text[i : i + 2] for i in range(0, 12, 2)]
    if octets is None:
        raise ValueError(f"'{shorten(value)}' is not a MAC address")
    return ":".join(octets)


@dataclass(frozen=True, slots=True)
class Inventory:
    """A validated device inventory. ``Device.user`` is the assignedUser cell as written."""

    devices: tuple[Device, ...]
    warnings: tuple[str, ...] = ()
    path: str = ""

    def __len__(self) -> int:
        return len(self.devices)

    def by_id(self) -> dict[str, Device]:
        return {d.device_id: d for d in self.devices}

    def by_mac(self) -> dict[str, Device]:
        return {d.mac: d for d in self.devices if d.mac is not None}


def read_inventory(path: str | Path) -> Inventory:
    """Read and validate a device inventory CSV; raise InventoryError listing every problem."""
    spath = str(path)
    try:
        raw = read_regular_file(spath)
    except OSError as e:
        raise InventoryError(spath, [f"{spath}: cannot read file: {e.strerror or e}"]) from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InventoryError(spath, [f"{spath}: not UTF-8 text (byte {e.start})"]) from e
    return parse_inventory(text, spath)


def parse_inventory(text: str, path: str) -> Inventory:
    """Validate inventory CSV ``text``; ``path`` is only used in messages."""
    problems: list[str] = []
    warnings: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    devices: list[Device] = []
    ids: dict[str, int] = {}
    macs: dict[str, int] = {}
    col: dict[str, int] = {}
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1  # a quoted cell may span lines
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                col = _check_header(header, path, start, problems, warnings)
                if problems:
                    break
                continue
            if len(row) != len(header):
                problems.append(
                    f"{path}:{start}: row has {len(row)} cells, the header has {len(header)}"
                )
                continue
            device = _device(row, col, path, start, problems, warnings, ids, macs)
            if device is not None:
                devices.append(device)
    except csv.Error as e:
        problems.append(f"{path}:{reader.line_num}: invalid CSV: {e}")
    if header is None and not problems:
        problems.append(f"{path}:1: the file is empty: expected the header {','.join(COLUMNS)}")
    if problems:
        raise InventoryError(path, problems)
    return Inventory(devices=tuple(devices), warnings=tuple(warnings), path=path)


def _check_header(
    header: list[str], path: str, line: int, problems: list[str], warnings: list[str]
) -> dict[str, int]:
    col: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in col:
            problems.append(f"{path}:{line}: column '{shorten(name)}': appears twice in the header")
        elif name not in COLUMNS:
            warnings.append(f"{path}:{line}: column '{shorten(name)}': unknown column, ignored")
        col.setdefault(name, i)
    for name in REQUIRED_COLUMNS:
        if name not in col:
            problems.append(f"{path}:{line}: column '{name}': required column is missing")
    return col


def _device(
    row: list[str],
    col: dict[str, int],
    path: str,
    line: int,
    problems: list[str],
    warnings: list[str],
    ids: dict[str, int],
    macs: dict[str, int],
) -> Device | None:
    def cell(name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None else ""

    ok = True
    device_id = cell("deviceId")
    if not device_id:
        problems.append(f"{path}:{line}: field 'deviceId': must not be empty")
        ok = False
    elif device_id in ids:
        problems.append(
            f"{path}:{line}: field 'deviceId': duplicate '{shorten(device_id)}'"
            f" (first at line {ids[device_id]})"
        )
        ok = False
    else:
        ids[device_id] = line

    mac: str | None = None
    mac_cell = cell("macAddress")
    if mac_cell:
        try:
            mac = normalise_mac(mac_cell)
        except ValueError as e:
            problems.append(f"{path}:{line}: field 'macAddress': {e}")
            ok = False
        else:
            if mac in macs:
                problems.append(
                    f"{path}:{line}: field 'macAddress': duplicate {mac}"
                    f" (first at line {macs[mac]})"
                )
                ok = False
            else:
                macs[mac] = line
    elif device_id:
        warnings.append(
            f"{path}:{line}: field 'macAddress': device '{shorten(device_id)}' has no MAC address; "
            "only a static address map entry can find it"
        )
    if not ok:
        return None
    return Device(
        device_id=device_id,
        mac=mac,
        user=cell("assignedUser") or None,
        school=cell("school") or None,
        kind=cell("kind"),
    )
