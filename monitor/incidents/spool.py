"""The spool: an append-only JSON-lines file of incident events the store could not take yet.

One line per event (:meth:`IncidentEvent.to_dict`), fsync'd on every append; replayed in order
by the recorder once the store answers, then truncated. One spool per process: a file lock
refuses a second writer.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from monitor.incidents.events import IncidentEvent

log = logging.getLogger(__name__)


class SpoolFullError(OSError):
    """The spool reached its size limit."""


class Spool:
    """Append-only JSON-lines file of events that could not be written to the store."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.invalid = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "ab")  # kept open for the recorder's lifetime
        try:
            # One spool per process: two writers interleaving and truncating one file would
            # lose events. (Several proxy processes: give each its own spool path.)
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            self._f.close()
            raise ValueError(f"incident spool {path} is in use by another recorder") from e
        self._repair_tail()
        self.pending = sum(1 for _ in self._lines())
        self._size = self._f.tell()

    def _repair_tail(self) -> None:
        # A crash during an append leaves a partial last line. Its batch was never fully on
        # disk (the append had not returned), so drop the fragment rather than let the next
        # append glue a valid line onto it.
        size = self._f.seek(0, os.SEEK_END)
        if size == 0:
            return
        with open(self.path, "rb") as r:
            data = r.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning(
            "incident spool %s: dropping a partial last line (%d bytes)", self.path, size - keep
        )
        self._f.truncate(keep)
        self._f.seek(keep)
        os.fsync(self._f.fileno())

    def _lines(self) -> Iterator[bytes]:
        with open(self.path, "rb") as r:
            for line in r:
                if line.strip():
                    yield line

    def append(self, events: Sequence[IncidentEvent]) -> None:
        """Append events and fsync; raises OSError (SpoolFullError at the size limit)."""
        data = b"".join(
            json.dumps(ev.to_dict(), separators=(",", ":")).encode("utf-8") + b"\n" for ev in events
        )
        if self.max_bytes is not None and self._size + len(data) > self.max_bytes:
            raise SpoolFullError(f"incident spool {self.path} would exceed {self.max_bytes} bytes")
        new_file = self._size == 0
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        if new_file:
            # The file's directory entry must be durable too, or a crash could lose the file.
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._size += len(data)
        self.pending += len(events)

    def read(self, chunk: int) -> Iterator[list[IncidentEvent]]:
        """The spooled events in order, ``chunk`` at a time, up to the end of the file as it is
        when each chunk is taken (so events appended meanwhile are included); bad lines are
        counted and skipped."""
        offset = 0
        while offset < self._size:
            events, offset = self._read_from(offset, chunk)
            if events:
                yield events

    def _read_from(self, offset: int, limit: int) -> tuple[list[IncidentEvent], int]:
        events: list[IncidentEvent] = []
        with open(self.path, "rb") as r:
            r.seek(offset)
            while len(events) < limit and offset < self._size:
                line = r.readline()
                if not line:
                    break
                at, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                try:
                    events.append(IncidentEvent.from_dict(json.loads(line)))
                except (ValueError, TypeError) as e:
                    self.invalid += 1
                    log.error("incident spool %s, byte %d: skipping unreadable line: %s",
                              self.path, at, e)  # fmt: skip
        return events, offset

    def truncate(self) -> None:
        self._f.truncate(0)
        self._f.seek(0)
        os.fsync(self._f.fileno())
        self._size = 0
        self.pending = 0

    def close(self) -> None:
        self._f.close()
