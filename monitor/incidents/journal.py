"""The journal: a per-process write-ahead log of incident events, written before the decision
that raised them returns.

``Recorder.submit`` appends each event as one JSON line (:func:`event_line`, the spool's
format) with a single ``os.write`` on an ``O_APPEND`` descriptor: once that returns, the kernel
holds the line, so a killed process (SIGKILL, OOM, a crash) loses nothing that a block page was
sent for. A sync thread ``fdatasync``s it at most every ``sync_interval`` seconds (never the
event loop), which bounds what a power cut can take.

The journal only holds events that are not yet anywhere else: the writer thread marks a
position *done* once every event before it is durably in the store or in the spool (or was
dropped), and the journal is cut back then. So it is short: what the in-memory queue holds,
plus at most one segment. Its files, in the state directory, for an instance named ``NAME``
(empty: no suffix):

    incident-journal-NAME.jsonl     the active segment, appended to
    incident-journal-NAME.jsonl.1   the sealed segment: the active one, renamed once it grew past
                                    ``rotate_bytes`` while events kept arriving (a busy writer
                                    never sees the whole journal done); removed once done
    incident-journal-NAME.lock      flock'd while a process uses the journal

On start, whatever an earlier process left (sealed first, then active) is read back by the
recorder and written again; the store applies each event id once, so events that had reached
the store before the crash count as duplicates, not twice.

Positions are logical byte offsets that never go back: the active segment's byte 0 is at
``_base``, which grows by the segment's size whenever it is cut back or sealed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from monitor.incidents.events import IncidentEvent
from monitor.incidents.spool import event_line

__all__ = ["Journal", "event_line"]

log = logging.getLogger(__name__)

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


class Journal:
    """The write-ahead file of one recorder. ``lock`` is the recorder's submit lock: appends,
    and anything that moves the active segment, happen under it."""

    def __init__(self, path: Path, lock: threading.Lock, rotate_bytes: int = 4 << 20) -> None:
        self.path = path
        self.sealed_path = path.with_name(path.name + ".1")
        self.rotate_bytes = rotate_bytes
        self.invalid = 0  # unreadable lines skipped when reading back an earlier run
        self._lock = lock
        self._fd_lock = threading.Lock()  # closing a descriptor vs. fsync'ing it
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.stem + ".lock")
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # never two live processes on one journal: each would cut back the other's events
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lock_fd)
            raise ValueError(
                f"incident journal {path} is in use by another process: give each process "
                "that shares the state directory its own instance name (proxy: --set "
                "monitor_instance=NAME; sensor: --instance NAME)"
            ) from e
        try:
            self._fd = os.open(path, _FLAGS, 0o600)
            sealed = self.sealed_path.stat().st_size if self.sealed_path.exists() else 0
            self._sealed_end: int | None = sealed if self.sealed_path.exists() else None
            self._sealed_fd: int | None = None  # open only while it may need an fsync
            self._base = sealed
            self._size = _cut_torn_tail(self._fd, path)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self.recover_end = self._base + self._size  # an earlier run's events lie below this
        self._done = 0
        self._synced = self.recover_end
        self._torn = False  # a failed append could not be cut back yet
        self._dir_dirty = True

    @property
    def end(self) -> int:
        return self._base + self._size

    # -- event loop side (under the recorder's lock) ---------------------------------------

    def append(self, data: bytes) -> int:
        """Append one or more whole lines; returns the logical end after them. On OSError the
        file is cut back to where it was (or will be, before the next append)."""
        size = self._size
        fd = self._fd
        try:
            if self._torn:
                os.ftruncate(fd, size)
                self._torn = False
            n = os.write(fd, data)
            while n < len(data):  # a short write: a filling disk, or a signal
                n += os.write(fd, data[n:])
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                self._torn = True
            raise
        self._size = size + len(data)
        return self._base + self._size

    # -- writer thread -----------------------------------------------------------------------

    def leftovers(self, chunk: int) -> Iterator[tuple[list[IncidentEvent], int]]:
        """The events an earlier process journaled, sealed segment first, ``chunk`` at a time,
        each chunk with the logical position after it (mark it done once the chunk is)."""
        segments = []
        if self._sealed_end:
            segments.append((self.sealed_path, 0, self._sealed_end))
        if self.recover_end > self._base:
            segments.append((self.path, self._base, self.recover_end))
        for path, start, stop in segments:
            with open(path, "rb") as r:
                events: list[IncidentEvent] = []
                pos = start
                while pos < stop:
                    line = r.readline(stop - pos)
                    if not line:
                        break
                    pos += len(line)
                    try:
                        events.append(IncidentEvent.from_dict(json.loads(line)))
                    except (ValueError, TypeError) as e:
                        self.invalid += 1
                        log.error("incident journal %s: skipping an unreadable line: %s",
                                  path, e)  # fmt: skip
                    if len(events) >= chunk:
                        yield events, pos
                        events = []
                yield events, stop

    def mark_done(self, upto: int) -> None:
        """Every event before logical position ``upto`` is in the store or the spool (or
        was dropped): the journal may forget it."""
        if upto > self._done:
            self._done = upto

    def compact(self) -> None:
        """Forget what is done: remove the sealed segment once done past it; cut the active
        segment back to empty when all of it is done, or seal it when it grew too long."""
        if self._sealed_end is not None and self._done >= self._sealed_end:
            with self._fd_lock:
                if self._sealed_fd is not None:
                    os.close(self._sealed_fd)
                    self._sealed_fd = None
            self.sealed_path.unlink(missing_ok=True)
            self._sealed_end = None
            self._dir_dirty = True
        with self._lock:
            end = self._base + self._size
            if self._size and self._done >= end:
                os.ftruncate(self._fd, 0)
                self._torn = False
                self._base, self._size = end, 0
            elif self._size >= self.rotate_bytes and self._sealed_end is None:
                os.rename(self.path, self.sealed_path)
                fd = os.open(self.path, _FLAGS, 0o600)
                self._sealed_fd, self._sealed_end = self._fd, end
                self._fd, self._base, self._size = fd, end, 0
                self._dir_dirty = True

    # -- sync thread -------------------------------------------------------------------------

    def sync(self) -> None:
        """fdatasync what was appended since the last call (and a newly sealed segment)."""
        with self._lock:
            end, fd, sealed, dir_dirty = self.end, self._fd, self._sealed_fd, self._dir_dirty
            self._dir_dirty = False
        if end == self._synced and sealed is None and not dir_dirty:
            return
        with self._fd_lock:  # the writer closes descriptors only under it
            try:
                if sealed is not None and sealed == self._sealed_fd:
                    os.fdatasync(sealed)
                    os.close(sealed)
                    self._sealed_fd = None
                if end != self._synced:
                    os.fdatasync(fd)
                if dir_dirty:
                    _sync_dir(self.path.parent)
            except OSError as e:
                if e.errno != errno.EBADF:
                    log.error("incident journal %s: fsync failed: %s", self.path, e)
                self._dir_dirty = self._dir_dirty or dir_dirty
                return
        self._synced = end

    def close(self) -> None:
        """Compact, sync and release (the sync thread has stopped). What is not done yet stays
        for the next start."""
        try:
            self.compact()
            self.sync()
        finally:
            for fd in (self._sealed_fd, self._fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._sealed_fd = None


def _cut_torn_tail(fd: int, path: Path) -> int:
    """A partial last line (power cut mid-append) was never acknowledged: drop it, so the next
    append does not glue onto it. Returns the size kept."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    with open(path, "rb") as r:
        r.seek(max(0, size - 1))
        if r.read(1) == b"\n":
            return size
        r.seek(0)
        keep = r.read().rfind(b"\n") + 1
    log.warning("incident journal %s: dropping a partial last line (%d bytes)", path, size - keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return keep


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
