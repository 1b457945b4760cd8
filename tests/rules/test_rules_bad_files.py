"""The override store and the policy loader meet hostile files: deep JSON, bytes that are not
UTF-8, a FIFO, a huge value. One ConfigError naming the file, at once, the value cut short."""

from __future__ import annotations

from pathlib import Path

import pytest
from badfiles import fifo_watchdog, replace_with_fifo

from monitor.platforms.catalogue import Catalogue
from monitor.rules.loader import load_policy
from monitor.rules.overrides import OverrideStore
from monitor.yamlfile import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "policy_example.yaml"
LONG = "s" * 200_000
SHOWN = "s" * 100 + "… (200000 characters)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply"),
        (b'{"version": 1, "overrides": [], "x": "\xff"}', "not UTF-8 text (byte 38)"),
    ],
    ids=["deep", "not-utf8"],
)
def test_a_hostile_override_store_is_one_config_error(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = tmp_path / "overrides.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as e:
        OverrideStore(path).load()
    assert str(e.value) == f"{path}: {message}"


def test_an_override_store_fifo_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    replace_with_fifo(path)
    with fifo_watchdog(path) as released, pytest.raises(ConfigError) as e:
        OverrideStore(path).load()
    assert not released
    assert str(e.value) == (
        f"{path}: cannot read file: not a regular file (a FIFO, socket or device?)"
    )


def test_a_long_unknown_school_is_cut_short(tmp_path: Path, catalogue: Catalogue) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "  - id: hs\n" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("  - id: hs\n", f"  - id: {LONG}\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_policy(path, catalogue, known_schools=["es", "ms", "hs"])
    assert e.value.where == f"school '{SHOWN}': field 'id'"
    assert e.value.message == f"unknown school '{SHOWN}'"
