"""YAML loading that remembers line numbers, and pydantic errors that name file, line and field.

Every configuration file (catalogue, policy, …) is read through here so that a bad file is
rejected with one message: ``file:line: entry 'x': field 'y': what is wrong``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence from YAML that knows the line of itself and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class ConfigError(ValueError):
    """A configuration file is invalid. ``str()`` is the full, user-facing message."""

    def __init__(self, path: str | Path, line: int | None, where: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.where = where
        self.message = message
        loc = f"{self.path}:{line}" if line else self.path
        parts = [loc]
        if where:
            parts.append(where)
        parts.append(message)
        super().__init__(": ".join(parts))


class RejectedFileError(ValueError):
    """A data file (CSV, leases, …) is rejected whole; ``problems`` lists every
    ``file:line: …`` message, the first ``MAX_REPORTED`` of them also in the text."""

    MAX_REPORTED = 50

    def __init__(self, path: str, what: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        shown = list(self.problems[: self.MAX_REPORTED])
        if len(self.problems) > self.MAX_REPORTED:
            shown.append(f"… and {len(self.problems) - self.MAX_REPORTED} more")
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(
            f"{path}: {what} rejected, {len(self.problems)} {noun}:\n  " + "\n  ".join(shown)
        )


class _Loader(yaml.SafeLoader):
    pass


def _convert(node: yaml.Node, path: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for knode, vnode in node.value:
            key = _convert(knode, path)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    path, knode.start_mark.line + 1, "", "mapping keys must be scalars"
                )
            skey = str(key)
            if skey in out:
                raise ConfigError(path, knode.start_mark.line + 1, f"key '{skey}'", "duplicate key")
            out[skey] = _convert(vnode, path)
            out.key_lines[skey] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        lst = LineList(_convert(v, path) for v in node.value)
        lst.line = node.start_mark.line + 1
        lst.item_lines = [v.start_mark.line + 1 for v in node.value]
        return lst
    loader = _Loader("")
    return loader.construct_object(node, deep=True)


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse one YAML document into LineDict/LineList/scalars, raising ConfigError."""
    path = str(path)
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            raise ConfigError(path, None, "", f"cannot read file: {e.strerror or e}") from e
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(path, None, "", f"not UTF-8 text (byte {e.start})") from e
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, "", f"invalid YAML: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise ConfigError(path, None, "", f"invalid YAML: {e}") from e
    if node is None:
        return None
    try:
        return _convert(node, path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, "", f"invalid YAML: {e.problem or e.context}") from e


def line_of(data: Any, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest element of ``loc`` that can be found in ``data``."""
    line: int | None = getattr(data, "line", None) or None
    cur = data
    for part in loc:
        if isinstance(cur, LineDict) and isinstance(part, str) and part in cur:
            line = cur.key_lines.get(part, line)
            cur = cur[part]
        elif isinstance(cur, LineList) and isinstance(part, int) and 0 <= part < len(cur):
            line = cur.item_lines[part]
            cur = cur[part]
        else:
            break
    return line


def format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def validate[M: BaseModel](
    model: type[M],
    data: Any,
    path: str | Path,
    *,
    where: str = "",
    base_loc: Sequence[str | int] = (),
    root: Any = None,
) -> M:
    """Validate ``data`` with a pydantic model; the first error becomes a ConfigError.

    ``where`` names the entry (``entry 'tiktok'``); ``base_loc`` is the location of ``data``
    inside ``root`` so that line numbers can be found.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        # pydantic puts union/tagged member names into loc; keep what exists in the data
        full = tuple(base_loc) + loc
        line = line_of(root if root is not None else data, full)
        field = format_loc(loc)
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required field is missing"
        parts = [p for p in (where, f"field '{field}'" if field else "") if p]
        raise ConfigError(path, line, ": ".join(parts), msg) from None
