"""YAML loading that remembers line numbers, and pydantic errors that name file, line and field.

Every configuration file (catalogue, policy, district.yaml, retention.yaml, …) is read through
here so that a bad file is rejected with one message: ``file:line: entry 'x': field 'y': what is
wrong``.

The reader is built for files a person writes, and refuses what could make a small file costly:

- aliases and anchors (``&a`` / ``*a``): a 300-byte file of nested aliases ("billion laughs")
  expands to billions of values. Our files never need them;
- nesting deeper than :data:`MAX_DEPTH` levels (a real file is less than 10 deep);
- files larger than :data:`MAX_CONFIG_BYTES`;
- anything that is not a regular file (a directory, a FIFO that would block the reader, a
  device).

Messages quote at most :data:`MAX_VALUE_CHARS` characters of a value (:func:`shorten`), and
each part of a :class:`ConfigError` at most :data:`MAX_MESSAGE_CHARS` (:func:`clip`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

# The largest configuration file read: 14 times the shipped catalogue (71 KB; a district's
# policy is a few KB). A real file of 1 MiB parses in about half a second; the worst case (half
# a million one-character values) in about 3 s and 100 MB, which bounds a hostile file's cost.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 64  # nesting levels of mappings and sequences (the catalogue needs 5)
MAX_VALUE_CHARS = 100  # characters of a value quoted in a message
MAX_MESSAGE_CHARS = 500  # characters of one part of a message (one line of a CLI error)
ALIASES_REFUSED = "aliases (&anchor/*alias) are not allowed in monitor configuration"


def shorten(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as text for a message: cut after ``limit`` characters, with its length."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Every line of a message cut after ``limit`` characters (a safety net under
    :func:`shorten`: a message never carries a whole file)."""
    if len(text) <= limit:
        return text
    return "\n".join(shorten(line, limit) for line in text.split("\n"))


class FileTooLargeError(OSError):
    """A file is larger than the reader accepts."""


def read_regular_file(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path``.

    Raises OSError (``strerror`` says why) for a missing or unreadable file, a directory, and
    anything else that is not a regular file: a FIFO is refused at once rather than waiting
    for a writer. With ``limit``, a file of more bytes raises :class:`FileTooLargeError`.
    """
    spath = str(path)
    fd = os.open(spath, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", spath)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device?)", spath)
        if limit is not None and st.st_size > limit:
            raise _too_large(spath, st.st_size, limit)
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read() if limit is None else f.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if limit is not None and len(data) > limit:  # grew while being read
        raise _too_large(spath, len(data), limit)
    return data


def _too_large(path: str, size: int, limit: int) -> FileTooLargeError:
    return FileTooLargeError(
        errno.EFBIG,
        f"is {size:,} bytes, more than the {_size(limit)} a configuration file may have",
        path,
    )


def _size(n: int) -> str:
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return f"{n:,} bytes"


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
        self.where = clip(where)
        self.message = clip(message)
        loc = f"{self.path}:{line}" if line else self.path
        parts = [loc]
        if self.where:
            parts.append(self.where)
        parts.append(self.message)
        super().__init__(": ".join(parts))


class RejectedFileError(ValueError):
    """A data file (CSV, leases, …) is rejected whole; ``problems`` lists every
    ``file:line: …`` message, the first ``MAX_REPORTED`` of them also in the text."""

    MAX_REPORTED = 50

    def __init__(self, path: str, what: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(clip(p) for p in problems)
        shown = list(self.problems[: self.MAX_REPORTED])
        if len(self.problems) > self.MAX_REPORTED:
            shown.append(f"… and {len(self.problems) - self.MAX_REPORTED} more")
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(
            f"{path}: {what} rejected, {len(self.problems)} {noun}:\n  " + "\n  ".join(shown)
        )


# libyaml's parser when PyYAML has it (ten times faster), else PyYAML's own
_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NO_KEY = object()
_STR = "tag:yaml.org,2002:str"


class _Frame:
    """A mapping or sequence being filled, and for a mapping the key waiting for its value."""

    __slots__ = ("value", "key", "key_line")

    def __init__(self, value: LineDict | LineList) -> None:
        self.value = value
        self.key: Any = _NO_KEY
        self.key_line = 0


class _Composer:
    """Builds LineDict/LineList/scalars from parser events, without recursion: aliases,
    anchors and nesting deeper than MAX_DEPTH are refused as they are met."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.resolver: Any = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.documents = 0

    def fail(self, line: int | None, where: str, message: str) -> ConfigError:
        return ConfigError(self.path, line, where, message)

    def feed(self, ev: yaml.Event) -> None:
        kind = type(ev)
        if kind is yaml.ScalarEvent:  # the common case first
            assert isinstance(ev, yaml.ScalarEvent)
            line = ev.start_mark.line + 1 if ev.start_mark is not None else None
            if ev.anchor is not None:
                raise self.fail(line, "", f"{ALIASES_REFUSED} (found &{shorten(ev.anchor, 40)})")
            self.add(self.scalar(ev, line), line)
            return
        if kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
            done = self.stack.pop().value
            self.add(done, done.line)
            return
        if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
            return
        line = ev.start_mark.line + 1 if ev.start_mark is not None else None
        if kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.fail(line, "", "expected one YAML document, found a second ('---')")
            return
        if isinstance(ev, yaml.AliasEvent):
            raise self.fail(line, "", f"{ALIASES_REFUSED} (found *{shorten(ev.anchor, 40)})")
        assert isinstance(ev, yaml.CollectionStartEvent)
        if ev.anchor is not None:
            raise self.fail(line, "", f"{ALIASES_REFUSED} (found &{shorten(ev.anchor, 40)})")
        if self.stack and self.stack[-1].key is _NO_KEY and isinstance(self.stack[-1].value, dict):
            raise self.fail(line, "", "mapping keys must be scalars")
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(line, "", f"nested more than {MAX_DEPTH} levels deep")
        value: LineDict | LineList
        if isinstance(ev, yaml.MappingStartEvent):
            value = LineDict()
            value.key_lines = {}
        else:
            value = LineList()
            value.item_lines = []
        value.line = line or 0
        self.stack.append(_Frame(value))

    def scalar(self, ev: yaml.ScalarEvent, line: int | None) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        if tag == _STR:
            return ev.value  # most scalars: no constructor needed
        start: Any = ev.start_mark  # libyaml's marks serve as well as PyYAML's
        end: Any = ev.end_mark
        node = yaml.ScalarNode(tag, ev.value, start, end, style=ev.style)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as e:
            why = shorten(str(e).split(": ")[0], 80)
            kind = tag.rsplit(":", 1)[-1]
            raise self.fail(
                line, "", f"'{shorten(ev.value)}' is not a valid {kind} ({why})"
            ) from None
        finally:
            self.constructor.constructed_objects.clear()

    def add(self, value: Any, line: int | None) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        target = frame.value
        if isinstance(target, LineList):
            target.append(value)
            target.item_lines.append(line or 0)
        elif frame.key is _NO_KEY:
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise self.fail(line, "", "mapping keys must be scalars")
            key = str(value)
            if key in target:
                raise self.fail(line, f"key '{shorten(key)}'", "duplicate key")
            frame.key, frame.key_line = key, line or 0
        else:
            target[frame.key] = value
            target.key_lines[frame.key] = frame.key_line
            frame.key = _NO_KEY


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse one YAML document into LineDict/LineList/scalars, raising ConfigError.

    Refuses aliases and anchors, nesting deeper than MAX_DEPTH and files (or ``text``) larger
    than MAX_CONFIG_BYTES, each with the file and line.
    """
    path = str(path)
    if text is None:
        try:
            raw = read_regular_file(path, MAX_CONFIG_BYTES)
        except OSError as e:
            raise ConfigError(path, None, "", f"cannot read file: {e.strerror or e}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(path, None, "", f"not UTF-8 text (byte {e.start})") from None
    elif len(text) > MAX_CONFIG_BYTES:
        big = _too_large(path, len(text), MAX_CONFIG_BYTES)
        raise ConfigError(path, None, "", f"cannot read file: {big.strerror}")
    composer = _Composer(path)
    parser = _PARSER(text)
    try:
        while parser.check_event():
            composer.feed(parser.get_event())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, "", f"invalid YAML: {e.problem or e.context}") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise ConfigError(path, line, "", f"invalid YAML: {e.reason}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, None, "", f"invalid YAML: {e}") from None
    finally:
        parser.dispose()
    return composer.root


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
            out += ("." if out else "") + shorten(part)
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
