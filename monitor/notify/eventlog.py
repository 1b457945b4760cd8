"""The incident event log: one JSON line per incident event the store newly applied, appended
to a file that Vector, Promtail/Loki or a SIEM can tail, rotated by size.

Each writing process (proxy worker, sensor) has its own file, named like its journal
(``incident-events-<instance>.jsonl``), so no two processes append to or rotate one file. A
line is written after the store committed the event, once per event (a replayed event the
store had applied already is not logged again). Fields (all text; people by pseudonym only):

=============  ==============================================================================
``ts``         when the event happened (ISO 8601, UTC)
``event_id``   the event's unique id (32 hex digits)
``incident``   the incident it folds into: ``<window start>/<dedupe key>``
``person``     the student's keyed pseudonym (``p-`` + 16 hex) or ``unknown``
``school``     school identifier; ``grade``, ``age_band``, ``role`` as in the incident
``platform``   catalogue platform id; ``activity``; ``decision`` (block, restrict, allow)
``rule_id``    the policy rule; ``severity`` (low, medium, high); ``host`` (a bare host name)
``source``     proxy or sensor
=============  ==============================================================================
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.incidents.events import DEFAULT_WINDOW, IncidentEvent
from monitor.notify.config import EventLogModel

FIELDS = (
    "ts", "event_id", "incident", "person", "school", "grade", "age_band", "role", "platform",
    "activity", "decision", "rule_id", "severity", "host", "source",
)  # fmt: skip


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per line
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def event_record(
    ev: IncidentEvent, window: timedelta = DEFAULT_WINDOW, starts: dict[int, str] | None = None
) -> dict[str, str]:
    """The log line of one event, as a dict in FIELDS order (``starts``: a cache of window
    start texts by window number, for a batch)."""
    n = (ev.time - _EPOCH) // window
    start = starts.get(n) if starts is not None else None
    if start is None:
        start = _utc(_EPOCH + n * window)
        if starts is not None:
            starts[n] = start
    return {
        "ts": _utc(ev.time),
        "event_id": ev.event_id,
        "incident": f"{start}/{ev.dedupe_key}",
        "person": ev.person,
        "school": ev.school,
        "grade": ev.grade,
        "age_band": ev.age_band,
        "role": ev.role,
        "platform": ev.platform,
        "activity": ev.activity,
        "decision": ev.action,
        "rule_id": ev.rule_id,
        "severity": ev.severity,
        "host": ev.host,
        "source": ev.source,
    }


class EventLog:
    """Append JSON lines to ``path``; past ``max_bytes`` the file becomes ``path.1`` (the
    older ones ``.2`` … ``.backups``, the oldest dropped) and a new one is started."""

    def __init__(self, path: Path, max_bytes: int = 50 << 20, backups: int = 5,
                 window: timedelta = DEFAULT_WINDOW) -> None:  # fmt: skip
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.window = window
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, events: Sequence[IncidentEvent]) -> None:
        starts: dict[int, str] = {}
        lines = [_ENCODE(event_record(ev, self.window, starts)).encode() + b"\n" for ev in events]
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            chunk: list[bytes] = []
            for line in lines:
                if size and size + len(line) > self.max_bytes:
                    self._append(chunk)
                    self._rotate()
                    chunk, size = [], 0
                chunk.append(line)
                size += len(line)
            self._append(chunk)

    def _append(self, lines: list[bytes]) -> None:
        if not lines:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def event_log_for(
    model: EventLogModel | None,
    state_dir: Path,
    instance: str = "",
    window: timedelta = DEFAULT_WINDOW,
) -> EventLog | None:
    """The event log of one writing process (None when the district keeps none)."""
    if model is None:
        return None
    base = Path(model.path)
    base = base if base.is_absolute() else state_dir / base
    if instance:
        base = base.with_name(f"{base.stem}-{instance}{base.suffix}")
    return EventLog(base, model.max_bytes, model.backups, window)


# The fields of ``monitor incidents export --format jsonl``: an incident's, less its review
# notes (free text that may name someone).
EXPORT_FIELDS = (
    "id", "first_seen", "last_seen", "count", "school", "grade", "age_band", "role", "person",
    "platform", "activity", "decision", "rule_id", "host", "source", "severity", "status",
    "assignee",
)  # fmt: skip


def incident_lines(
    engine: Any, since: datetime, until: datetime | None = None, chunk: int = 1000
) -> Iterator[str]:
    """JSON lines of the incidents last seen in [since, until), oldest id first, read in
    chunks (a long export holds no transaction open and little memory)."""
    from sqlalchemy import select

    from monitor.incidents.store.schema import incidents

    c = incidents.c
    cols = [c[name] for name in EXPORT_FIELDS]
    after = 0
    while True:
        q = select(*cols).where(c.id > after, c.last_seen >= since)
        if until is not None:
            q = q.where(c.last_seen < until)
        with engine.connect() as conn:
            rows = conn.execute(q.order_by(c.id).limit(chunk)).all()
        for r in rows:
            out = dict(r._mapping)
            for name in ("first_seen", "last_seen"):
                out[name] = out[name].isoformat().replace("+00:00", "Z")
            out["type"] = "incident"
            yield _ENCODE(out)
        if len(rows) < chunk:
            return
        after = rows[-1].id
