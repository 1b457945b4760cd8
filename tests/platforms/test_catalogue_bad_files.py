"""A district catalogue with huge values: the error names file, line and entry, and quotes at
most 100 characters of the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.platforms import catalogue as cat
from monitor.yamlfile import ConfigError

LONG = "z" * 300_000
SHOWN = "z" * 100 + "… (300000 characters)"


def district_file(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "district-catalogue.yaml"
    path.write_text(
        "platforms:\n  - id: zed\n    name: Zed\n    owner: Nobody\n    category: social\n" + entry,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        (f"    hosts: [{LONG}.example]\n", "entry 'zed': field 'hosts'",
         f"'{SHOWN[:100]}… (300008 characters)' is not a host name"),
        (f"    activities:\n      - {{activity: post, path: '({LONG}'}}\n",
         "entry 'zed': field 'activities[0].path'",
         f"bad regular expression '({'z' * 99}… (300001 characters)': missing )"),
        (f"    activities:\n      - {{activity: post, method: {LONG}}}\n",
         "entry 'zed': field 'activities[0].method'", f"unknown HTTP method '{SHOWN}'"),
    ],
    ids=["host", "regex", "method"],
)  # fmt: skip
def test_long_values_are_cut_short(tmp_path: Path, entry: str, where: str, message: str) -> None:
    path = district_file(tmp_path, entry)
    with pytest.raises(ConfigError) as e:
        cat.check_file(path)
    assert e.value.path == str(path) and e.value.line is not None
    assert e.value.where == where
    assert e.value.message.startswith(message)
    assert len(str(e.value)) < len(str(path)) + 400


def test_a_long_entry_id_is_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"platforms:\n  - id: {LONG}\n    name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        cat.check_file(path)
    assert e.value.where.startswith(f"entry '{SHOWN}'")
