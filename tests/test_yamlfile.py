"""``monitor.yamlfile``: the YAML reader every configuration file goes through refuses what
could make a small file costly (aliases, deep nesting, huge files, FIFOs) with file and line,
and messages never carry a whole value."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from badfiles import ALIASES, billion_laughs, deep_flow, fifo_watchdog
from pydantic import BaseModel, ConfigDict

from monitor.yamlfile import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_MESSAGE_CHARS,
    ConfigError,
    LineDict,
    LineList,
    RejectedFileError,
    clip,
    load_yaml,
    shorten,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- aliases


def test_billion_laughs_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", billion_laughs())
    assert path.stat().st_size < 400
    with pytest.raises(ConfigError) as e:
        load_yaml(path)
    assert e.value.path == str(path) and e.value.line == 1
    assert str(e.value) == f"{path}:1: {ALIASES} (found &a)"


def test_billion_laughs_does_not_explode_in_a_small_address_space(tmp_path: Path) -> None:
    """In a process limited to 1 GiB of memory and 60 s, the bomb is refused (exit 0 here)
    rather than expanded (MemoryError or timeout)."""
    path = write(tmp_path, "catalogue.yaml", billion_laughs())
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from monitor.yamlfile import ConfigError, load_yaml
        try:
            load_yaml({str(path)!r})
        except ConfigError as e:
            print(e)
            sys.exit(0)
        sys.exit(3)
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert ALIASES in r.stdout


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [
        ("a: 1\nb: &anchor 2\n", 2, "&anchor"),  # an anchor alone is refused too
        ("base: {x: 1}\nother: *base\n", 2, "*base"),  # an alias of an undefined anchor
        ("base: &b {x: 1}\nother:\n  <<: *b\n", 1, "&b"),  # merge keys need aliases
        ("- &s [1, 2]\n", 1, "&s"),
    ],
)
def test_every_alias_and_anchor_is_refused(
    tmp_path: Path, text: str, line: int, found: str
) -> None:
    path = write(tmp_path, "x.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_yaml(path)
    assert e.value.line == line
    assert e.value.message == f"{ALIASES} (found {found})"


def test_an_ampersand_or_asterisk_inside_a_value_is_not_an_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "reason: 'tom & jerry *'\npath: ^/a*b&c\n")
    assert load_yaml(path) == {"reason": "tom & jerry *", "path": "^/a*b&c"}


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "monitor" / "platforms" / "data" / "catalogue.yaml",
        ROOT / "examples" / "district" / "district.yaml",
        ROOT / "examples" / "district" / "policy.yaml",
        ROOT / "tests" / "data" / "policy_example.yaml",
    ],
    ids=lambda p: p.name,
)
def test_the_shipped_files_need_no_aliases(path: Path) -> None:
    assert isinstance(load_yaml(path), LineDict)


# ---------------------------------------------------------------- depth, size, file kinds


def nested_block(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth - 1)) + f"{'  ' * (depth - 1)}k: v\n"


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    data = load_yaml(write(tmp_path, "x.yaml", nested_block(MAX_DEPTH)))
    for i in range(MAX_DEPTH - 1):
        data = data[f"k{i}"]
    assert data == {"k": "v"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (nested_block(MAX_DEPTH + 1), MAX_DEPTH + 1),  # block style: a line per level
        (deep_flow(), 1),  # flow style: RecursionError before
        ("a:\n  b: " + "{x: " * 3000 + "1" + "}" * 3000 + "\n", 2),
    ],
    ids=["block", "flow-lists", "flow-maps"],
)
def test_deep_nesting_is_refused_with_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "deep.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_yaml(path)
    assert e.value.path == str(path) and e.value.line == line
    assert "nest" in e.value.message  # "nested more than 64 levels deep" (or libyaml's words)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_yaml(path)
    assert str(e.value) == (
        f"{path}: cannot read file: is 1,048,580 bytes, more than the 1 MiB a configuration "
        "file may have"
    )
    with pytest.raises(ConfigError, match="more than the 1 MiB"):
        load_yaml("given.yaml", text="x" * (MAX_CONFIG_BYTES + 1))


def test_a_file_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    body = "a: 1\n"
    path.write_text(body + "#" * (MAX_CONFIG_BYTES - len(body) - 1) + "\n", encoding="utf-8")
    assert load_yaml(path) == {"a": 1}


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    # no writer ever opens it: a reader that waited for one would hang (the watchdog
    # releases it, and the test fails)
    with fifo_watchdog(fifo) as released, pytest.raises(ConfigError) as e:
        load_yaml(fifo)
    assert not released
    assert str(e.value) == (
        f"{fifo}: cannot read file: not a regular file (a FIFO, socket or device?)"
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(tmp_path)
    assert str(e.value) == f"{tmp_path}: cannot read file: is a directory, not a file"


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("closed:\n  - 2025-13-45\n", 2, "'2025-13-45' is not a valid timestamp"),
        ("n: " + "9" * 5000 + "\n", 1, "is not a valid int"),
        ("a: 1\n---\nb: 2\n", 2, "expected one YAML document"),
        ("? [a, b]\n: 1\n", 1, "mapping keys must be scalars"),
        ("a: 1\na: 2\n", 2, "duplicate key"),
        ("a: !!python/object:os.system x\n", 1, "could not determine a constructor"),
        ("a: b\x00\n", 1, "invalid YAML"),
    ],
    ids=["timestamp", "huge-int", "two-documents", "complex-key", "duplicate", "tag", "nul"],
)
def test_bad_values_are_config_errors_with_a_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "x.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_yaml(path)
    assert e.value.line == line, str(e.value)
    assert message in e.value.message
    assert len(str(e.value)) < len(str(path)) + 2 * MAX_MESSAGE_CHARS


def test_lines_and_types_are_as_before(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        "a: 1\nb:\n  - x\n  - {c: true, d: 2.5, e: null, f: 2025-01-02}\n  - [1, 2]\n",
    )
    data = load_yaml(path)
    assert isinstance(data, LineDict) and data.key_lines == {"a": 1, "b": 2}
    items = data["b"]
    assert isinstance(items, LineList) and items.line == 3 and items.item_lines == [3, 4, 5]
    assert items[1] == {"c": True, "d": 2.5, "e": None, "f": date(2025, 1, 2)}
    assert items[1].line == 4 and items[2].line == 5


def test_shorten_and_clip() -> None:
    assert shorten("abc") == "abc"
    long = "x" * 10_000_000
    assert shorten(long) == "x" * 100 + "… (10000000 characters)"
    assert clip("short") == "short"
    clipped = clip("a" * 600 + "\n" + "b" * 10)
    assert clipped == "a" * MAX_MESSAGE_CHARS + "… (600 characters)\n" + "b" * 10


def test_config_error_and_rejected_file_error_are_bounded() -> None:
    huge = "y" * 10_000_000
    e = ConfigError("p.yaml", 3, f"entry '{huge}'", f"'{huge}' is wrong")
    assert len(str(e)) < 2 * MAX_MESSAGE_CHARS + 100
    assert str(e).startswith("p.yaml:3: entry 'yyy")
    r = RejectedFileError("d.csv", "device inventory", [f"d.csv:2: '{huge}'"] * 3)
    assert len(str(r)) < 4 * MAX_MESSAGE_CHARS
    assert all(len(p) < MAX_MESSAGE_CHARS + 40 for p in r.problems)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""


def test_validate_shortens_a_long_unknown_key(tmp_path: Path) -> None:
    key = "k" * 200_000
    path = write(tmp_path, "x.yaml", f"name: a\n? {key}\n: 1\n")  # explicit: a long key
    data = load_yaml(path)
    with pytest.raises(ConfigError) as e:
        validate(_Strict, data, path)
    assert e.value.line == 2 and e.value.message == "unknown key"
    assert e.value.where == f"field '{'k' * 100}… (200000 characters)'"
