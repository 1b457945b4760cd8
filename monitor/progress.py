"""Progress of long commands on standard error (rich): what is being done, how far it is and
how long is left; silent when standard error is not a terminal, or with ``quiet``.

Use it as a context manager around the work, and advance it as the work goes::

    with progress("reading capture", total=size, unit="bytes", quiet=quiet) as bar:
        for chunk in ...:
            bar.advance(len(chunk))

or wrap an iterable: ``for row in track(rows, "checking roster", total=len(rows))``.
Nothing is written anywhere but standard error, so piped output stays clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

Unit = Literal["items", "bytes"]
QUIET_ENV = "MONITOR_QUIET"  # set (to anything but 0): no progress anywhere (scripts, cron)


class Progress:
    """One task's progress; every method is a no-op when the display is off."""

    def __init__(self, bar: object | None, task: object | None) -> None:
        self._bar = bar
        self._task = task

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def advance(self, n: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)  # type: ignore[attr-defined]

    def update(self, *, completed: float | None = None, total: float | None = None,
               description: str | None = None) -> None:  # fmt: skip
        """Set how far it is, a newly known total, or what is being done now."""
        if self._bar is not None:
            self._bar.update(  # type: ignore[attr-defined]
                self._task, completed=completed, total=total, description=description
            )


def enabled(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether progress would be shown: not quiet, MONITOR_QUIET unset, stderr a terminal."""
    if quiet or os.environ.get(QUIET_ENV, "").strip() not in ("", "0"):
        return False
    s = stream if stream is not None else sys.stderr
    try:
        return s.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        return False


@contextmanager
def progress(
    description: str,
    total: float | None = None,
    *,
    unit: Unit = "items",
    quiet: bool = False,
    stream: TextIO | None = None,
) -> Iterator[Progress]:
    """A progress display on ``stream`` (stderr) while the block runs; ``total`` None for
    work of unknown size (a spinner and a count)."""
    if not enabled(quiet, stream):
        yield Progress(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    bar = RichProgress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        count,
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(file=stream if stream is not None else sys.stderr),
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield Progress(bar, task)


def track[T](
    items: Iterable[T],
    description: str,
    total: float | None = None,
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Iterate over ``items`` with a progress display (``total`` defaults to ``len(items)``
    when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(description, total, quiet=quiet, stream=stream) as bar:
        for item in items:
            yield item
            bar.advance()
