"""The spool: an append-only JSON-lines file of incident events the store could not take yet.

One line per event (:func:`event_line`), fsync'd on every append; replayed in order by the
recorder once the store answers, then truncated. One spool per process: a file lock refuses a
second writer.

An append is all or nothing: the file is written unbuffered, and when a write or the fsync
fails part-way (a full disk writes what fits, then raises ENOSPC) the file is cut back to its
size before the append and fsync'd, so no fragment is left for the next append to merge into
and no line of the failed batch (which the recorder counts as dropped) is replayed later.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from monitor.incidents.events import IncidentEvent

log = logging.getLogger(__name__)


class SpoolFullError(OSError):
    """The spool reached its size limit."""


_FIELDS = tuple(f.name for f in fields(IncidentEvent))
_values = attrgetter(*_FIELDS)
_encode = json.JSONEncoder(separators=(",", ":")).encode


def event_line(ev: IncidentEvent) -> bytes:
    """One event as a spool or journal line: compact JSON of :meth:`IncidentEvent.to_dict`
    (the same object, built without ``dataclasses.fields`` and with one prebuilt encoder:
    the journal encodes every incident on the event loop)."""
    d = dict(zip(_FIELDS, _values(ev), strict=True))
    d["time"] = ev.time.isoformat()
    return _encode(d).encode("ascii") + b"\n"


def write_all(f: Any, data: bytes) -> None:
    """Write all of ``data`` to the unbuffered file ``f``: a short write (a filling disk, a
    signal) is continued; an error raises with part of ``data`` possibly written."""
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[n:]


class Spool:
    """Append-only JSON-lines file of events that could not be written to the store."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.invalid = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered, kept open for the recorder's lifetime: a failed write must not leave
        # bytes in a buffer that a later write would flush behind a fragment.
        self._f: Any = open(path, "ab", buffering=0)
        try:
            # One spool per process: two writers interleaving and truncating one file would
            # lose events. (Several proxies and sensors: each its own instance name.)
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            self._f.close()
            raise ValueError(
                f"incident spool {path} is in use by another recorder: give each process that "
                "shares the state directory its own instance name (proxy: --set "
                "monitor_instance=NAME; sensor: --instance NAME)"
            ) from e
        self._repair_tail()
        self.pending = sum(1 for _ in self._lines())
        self._size = os.fstat(self._f.fileno()).st_size

    def _repair_tail(self) -> None:
        # A crash during an append leaves a partial last line. Its batch was never fully on
        # disk (the append had not returned), so drop the fragment rather than let the next
        # append glue a valid line onto it.
        size = os.fstat(self._f.fileno()).st_size
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
        os.ftruncate(self._f.fileno(), keep)
        os.fsync(self._f.fileno())

    def _lines(self) -> Iterator[bytes]:
        with open(self.path, "rb") as r:
            for line in r:
                if line.strip():
                    yield line

    def append(self, events: Sequence[IncidentEvent]) -> None:
        """Append events and fsync, all or nothing; raises OSError (SpoolFullError at the size
        limit), and then the file is as it was before."""
        data = b"".join(event_line(ev) for ev in events)
        if self.max_bytes is not None and self._size + len(data) > self.max_bytes:
            raise SpoolFullError(f"incident spool {self.path} would exceed {self.max_bytes} bytes")
        good = self._size
        fd = self._f.fileno()
        try:
            if os.fstat(fd).st_size != good:
                # an earlier failed append could not be cut back then: do it now
                os.ftruncate(fd, good)
            write_all(self._f, data)
            os.fsync(fd)
            if good == 0:
                # The file's directory entry must be durable too, or a crash could lose it.
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError:
            self._cut_back(good)
            raise
        self._size += len(data)
        self.pending += len(events)

    def _cut_back(self, size: int) -> None:
        """Truncate to ``size`` (the end of the last whole append) and fsync. Never raises:
        if this fails too, the next append tries again first, and reads stop at ``size``."""
        try:
            os.ftruncate(self._f.fileno(), size)
            os.fsync(self._f.fileno())
        except OSError as e:
            log.error("incident spool %s: cannot cut a failed append back to %d bytes: %s",
                      self.path, size, e)  # fmt: skip

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
        os.ftruncate(self._f.fileno(), 0)
        os.fsync(self._f.fileno())
        self._size = 0
        self.pending = 0

    def close(self) -> None:
        self._f.close()
