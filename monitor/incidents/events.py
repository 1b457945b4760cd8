"""Incident model: what the proxy or sensor observed, pseudonyms, and the dedupe window.

Pure: no I/O. An :class:`IncidentEvent` is one observation worth a counselor's attention; the
store folds events that share a person, platform and rule within one window into one
:class:`Incident` with a count. Events carry metadata only (principle 2): a bare host name,
never a URL, query string, body or name; the person is a keyed pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast, get_args

from monitor.model import ACTIONS, AGE_BANDS, SEVERITIES, Action, Severity

Source = Literal["proxy", "sensor"]
SOURCES: tuple[Source, ...] = get_args(Source)
Status = Literal["new", "acknowledged", "resolved"]
STATUSES: tuple[Status, ...] = get_args(Status)

SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

# Incidents of one person + platform + rule fold together within this window.
DEFAULT_WINDOW = timedelta(hours=1)

# The person of an event whose identity could not be resolved (no roster entry).
UNKNOWN_PERSON = "unknown"

MIN_KEY_BYTES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PSEUDONYM = re.compile(r"p-[0-9a-f]{16}")
_EVENT_ID = re.compile(r"[0-9a-f]{32}")
# A bare host: no scheme, path, query, fragment, user info or whitespace.
_BAD_HOST = re.compile(r"[/?#@\s\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Longest accepted value per text field (they are stored in bounded columns).
_MAX_LEN = {
    "school": 64,
    "grade": 16,
    "role": 32,
    "platform": 64,
    "activity": 32,
    "rule_id": 128,
    "reason": 1000,
    "host": 253,
}
_REQUIRED = ("platform", "activity", "rule_id", "host")


def pseudonym(key: bytes, sourced_id: str) -> str:
    """The stable pseudonym of a person: ``p-`` + first 16 hex of HMAC-SHA256(key, sourcedId).

    Keyed, so nobody without the district's key can map roster ids to pseudonyms.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    if not sourced_id:
        raise ValueError("pseudonym: empty sourcedId")
    digest = hmac.new(key, sourced_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "p-" + digest[:16]


# The label whose HMAC with the pseudonym key identifies the key without revealing it.
_FINGERPRINT_LABEL = b"student-monitor pseudonym key fingerprint v1"


def key_fingerprint(key: bytes) -> str:
    """What a store remembers of the pseudonym key: HMAC-SHA256(key, a fixed label), hex.

    Two writers with the same key have the same fingerprint; the fingerprint tells nothing
    about the key (nor lets anyone compute pseudonyms), so it may sit in the store."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def new_event_id(at: datetime | None = None) -> str:
    """A unique event id: 32 hex digits, the first 12 the creation time (``at``, default now)
    in Unix milliseconds as in UUIDv7, the rest random. The store applies each id at most once;
    the time prefix keeps its id index append-mostly and lets it forget ids by age."""
    prefix = event_id_floor(at) if at is not None else f"{time.time_ns() // 1_000_000:012x}"
    return prefix + secrets.token_hex(10)


def event_id_floor(t: datetime) -> str:
    """The smallest event id created at or after ``t``: ids below it are older."""
    ms = max(0, (t - _EPOCH) // timedelta(milliseconds=1))
    return f"{ms:012x}"


def dedupe_key(person: str, platform: str, rule_id: str) -> str:
    """Fixed-width key of the dedupe group (person + platform + rule), 32 hex characters."""
    raw = "\x1f".join((person, platform, rule_id)).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:32]


def window_start(t: datetime, window: timedelta = DEFAULT_WINDOW) -> datetime:
    """Start of the fixed window that holds ``t``: windows are aligned to the Unix epoch.

    Fixed buckets (not "within ``window`` of the last event") make the bucket a pure function
    of the event, so concurrent writers, replays and out-of-order events all agree on which
    incident an event belongs to, and one INSERT … ON CONFLICT settles it atomically.
    """
    if window <= timedelta(0):
        raise ValueError(f"dedupe window must be positive, got {window}")
    if t.tzinfo is None:
        raise ValueError(f"window_start: naive datetime {t.isoformat()}")
    n = (t - _EPOCH) // window
    return _EPOCH + n * window


def more_severe(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One observation from the proxy or sensor, validated on construction (ValueError)."""

    time: datetime  # aware; normalised to UTC
    person: str  # pseudonym (``p-`` + 16 hex) or UNKNOWN_PERSON
    school: str  # school identifier (short code), "" if unknown
    grade: str
    age_band: str  # an AgeBand, or "" (unknown)
    role: str
    platform: str  # platform id from the catalogue
    activity: str
    action: Action
    rule_id: str
    reason: str
    host: str  # bare host name only
    source: Source
    severity: Severity
    event_id: str = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise ValueError(
                f"incident event: field 'time' must be an aware datetime: {self.time!r}"
            )
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        if self.person != UNKNOWN_PERSON and not _PSEUDONYM.fullmatch(self.person):
            # Do not echo the value: it may be a real id or name that must not reach logs.
            raise ValueError(
                "incident event: field 'person' must be a pseudonym (p- and 16 hex digits) "
                f"or {UNKNOWN_PERSON!r}"
            )
        for name, limit in _MAX_LEN.items():
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"incident event: field {name!r} must be text, got {value!r}")
            if len(value) > limit:
                raise ValueError(f"incident event: field {name!r} longer than {limit} characters")
            if _CONTROL.search(value):
                raise ValueError(f"incident event: field {name!r} contains control characters")
        for name in _REQUIRED:
            if not getattr(self, name):
                raise ValueError(f"incident event: field {name!r} is empty")
        if _BAD_HOST.search(self.host):
            # Never echo: a URL here could carry a query string or credentials.
            raise ValueError("incident event: field 'host' must be a bare host name, not a URL")
        if self.age_band and self.age_band not in AGE_BANDS:
            raise ValueError(f"incident event: field 'age_band': unknown band {self.age_band!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"incident event: field 'action': unknown action {self.action!r}")
        if self.source not in SOURCES:
            raise ValueError(f"incident event: field 'source': unknown source {self.source!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"incident event: field 'severity': unknown severity {self.severity!r}"
            )
        if not _EVENT_ID.fullmatch(self.event_id):
            raise ValueError(
                f"incident event: field 'event_id' must be 32 hex digits: {self.event_id!r}"
            )

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.person, self.platform, self.rule_id)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (the spool's line format); ``time`` as ISO 8601 with offset."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["time"] = self.time.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentEvent:
        """Inverse of :meth:`to_dict`; ValueError on missing, unknown or bad fields."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"incident event: unknown fields {sorted(unknown)}")
        missing = names - set(data) - {"event_id"}
        if missing:
            raise ValueError(f"incident event: missing fields {sorted(missing)}")
        values = dict(data)
        try:
            values["time"] = datetime.fromisoformat(str(values["time"]))
        except ValueError as e:
            raise ValueError(f"incident event: field 'time': {e}") from e
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Bucket:
    """The events of one batch that fall into one incident (same dedupe key and window).

    Descriptive fields come from the bucket's earliest event; the store merges a bucket into an
    existing incident with count += count, first_seen = min, last_seen = max, severity = max.
    These merges commute, so the order in which writers or replays apply buckets does not
    change the result.
    """

    dedupe_key: str
    window_start: datetime
    first_seen: datetime
    last_seen: datetime
    count: int
    severity: Severity
    first: IncidentEvent


def aggregate(events: Iterable[IncidentEvent], window: timedelta = DEFAULT_WINDOW) -> list[Bucket]:
    """Fold events into buckets, sorted by (window_start, dedupe_key).

    The sort is the order of the store's unique index: concurrent writers lock rows in one
    order (no deadlocks), and a batch's inserts walk the index instead of jumping around.
    """
    if window <= timedelta(0):
        raise ValueError(f"dedupe window must be positive, got {window}")
    acc: dict[tuple[datetime, str], list[Any]] = {}
    starts: dict[int, datetime] = {}  # window number -> start; a batch spans few windows
    for ev in events:
        t = ev.time
        n = (t - _EPOCH) // window
        start = starts.get(n)
        if start is None:
            start = starts[n] = _EPOCH + n * window
        k = (start, dedupe_key(ev.person, ev.platform, ev.rule_id))
        b = acc.get(k)
        if b is None:
            acc[k] = [ev, t, t, 1, ev.severity]
            continue
        if t < b[1]:
            b[0], b[1] = ev, t
        if t > b[2]:
            b[2] = t
        b[3] += 1
        if SEVERITY_RANK[ev.severity] > SEVERITY_RANK[b[4]]:
            b[4] = ev.severity
    return [
        Bucket(key, start, b[1], b[2], b[3], cast(Severity, b[4]), b[0])
        for (start, key), b in sorted(acc.items(), key=lambda kv: kv[0])
    ]


@dataclass(frozen=True, slots=True)
class Incident:
    """A stored incident: one dedupe group in one window, with its review state."""

    id: int
    first_seen: datetime
    last_seen: datetime
    count: int
    school: str
    grade: str
    age_band: str
    role: str
    person: str
    platform: str
    activity: str
    decision: str
    rule_id: str
    reason: str
    host: str
    source: str
    severity: str
    status: str
    assignee: str | None
    notes: str
    window_start: datetime
    dedupe_key: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; datetimes as ISO 8601 (UTC)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("first_seen", "last_seen", "window_start"):
            out[name] = out[name].isoformat()
        return out
