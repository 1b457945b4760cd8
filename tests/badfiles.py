"""Hostile and broken input files for error-handling tests: an alias bomb, deep nesting, a FIFO
that no writer ever opens, and a watchdog that releases a reader stuck on such a FIFO (so that a
regression fails the test instead of hanging it)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ALIASES = "aliases (&anchor/*alias) are not allowed in monitor configuration"


def billion_laughs(key: str = "lol") -> str:
    """About 300 bytes that expand to 9**9 (387 million) scalars when aliases are followed."""
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    names = "abcdefghi"
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append(f"{key}: *i")
    return "\n".join(lines) + "\n"


def deep_flow(key: str = "rules", depth: int = 5000) -> str:
    """``key: [[[…]]]``: a RecursionError for a recursive reader."""
    return f"{key}: " + "[" * depth + "]" * depth + "\n"


def deep_block(depth: int = 400) -> str:
    """A block sequence nested ``depth`` levels, one level per line."""
    return "x:\n" + "".join(f"{' ' * i}- \n" for i in range(depth))


def replace_with_fifo(path: Path) -> None:
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    os.mkfifo(path)


@contextmanager
def fifo_watchdog(path: Path, every: float = 5.0) -> Iterator[list[int]]:
    """Release a reader blocked on the FIFO at ``path`` (it then reads an empty file) every
    ``every`` seconds; the list yielded counts the readers that had to be released."""
    released: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # nobody is waiting
            os.close(fd)
            released.append(1)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield released
    finally:
        stop.set()
        t.join()
