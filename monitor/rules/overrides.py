"""Teacher overrides: a time-boxed permission for a class or some students to use a platform.

An override turns a *block* into an *allow* for its targets while it is active
(``starts <= when < ends``, and before any revocation). It expires by itself. How overrides
combine with the age rules is decided in :mod:`monitor.rules.decide` (never for under-13s on a
platform not designed for children, never for bypass services).

:class:`OverrideBook` holds the rules of granting and revoking (roster-free: the command line
checks people against the roster), over one of two storages:

- :class:`SharedOverrides`: the district's grants, in the incident store that every proxy and
  sensor writes to (a :class:`RecordSource`, given by ``monitor.district``; this module does
  not import the store). A grant made on any host applies on all of them within a reload.
- :class:`OverrideStore`: one JSON file, rewritten atomically (temporary file +
  ``os.replace``) under an exclusive lock. ``STATE_DIR/overrides.json`` was the district's
  store before; the proxy imports it once into the incident store and no longer reads it.
  The file's records, and the store's rows, have these fields::

    {"version": 1, "overrides": [
      {"id": "ov-1a2b3c4d", "platform": "youtube", "granted_by": "t-0001",
       "granted_by_role": "teacher", "class_id": "c-0001", "students": [],
       "starts": "2025-03-03T14:00:00+00:00", "ends": "2025-03-03T15:00:00+00:00",
       "reason": "science video project", "created": "2025-03-03T13:58:12+00:00",
       "revoked_at": null, "revoked_by": null}]}

Grants are never deleted: expired and revoked ones stay for the record.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import re
import secrets
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from monitor.model import Person
from monitor.yamlfile import ConfigError, line_of, load_yaml, read_regular_file, validate

DEFAULT_MAX_LENGTH = timedelta(days=1)
# a start a little in the past is "now" on a clock that differs by a few seconds
START_GRACE = timedelta(minutes=1)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def role_words(role: str) -> str:
    """``"districtAdministrator"`` → ``"a district administrator"``."""
    words = re.sub(r"(?<!^)([A-Z])", r" \1", role).lower() or "staff member"
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone (got {value.isoformat()})")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """One grant. Exactly one of ``class_id`` and ``students`` names the targets."""

    id: str
    platform: str
    granted_by: str  # the granting teacher's sourcedId
    class_id: str | None = None
    students: tuple[str, ...] = ()
    starts: datetime
    ends: datetime
    reason: str = ""
    created: datetime | None = None
    granted_by_role: str = "teacher"  # shown in the decision's reason instead of a name
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def effective_end(self) -> datetime:
        """When it stops applying: its end, or its revocation if that came first."""
        if self.revoked_at is not None and self.revoked_at < self.ends:
            return self.revoked_at
        return self.ends

    def targets(self) -> tuple[tuple[str, str], ...]:
        """(kind, id) pairs: ("class", id) or ("person", sourcedId)."""
        if self.class_id is not None:
            return (("class", self.class_id),)
        return tuple(("person", s) for s in self.students)

    def target_words(self) -> str:
        if self.class_id is not None:
            return f"class {self.class_id}"
        return ("student " if len(self.students) == 1 else "students ") + ", ".join(self.students)

    def active_at(self, when: datetime) -> bool:
        return self.starts <= when < self.effective_end

    def status(self, now: datetime) -> str:
        """active, scheduled, expired or revoked."""
        if self.revoked_at is not None and self.revoked_at <= now and self.revoked_at < self.ends:
            return "revoked"
        if now >= self.ends:
            return "expired"
        return "active" if now >= self.starts else "scheduled"


def _ts(when: datetime | float) -> float:
    if isinstance(when, datetime):
        return _aware(when, "when").timestamp()
    return float(when)


_Entry = tuple[float, float, Override]  # (starts, effective end) as POSIX timestamps


class OverrideSet:
    """An immutable set of overrides indexed by (person or class, platform)."""

    __slots__ = ("_by_person", "_by_class", "_person_platforms", "_classes_of", "_all")

    def __init__(self, overrides: Iterable[Override] = ()) -> None:
        by_person: dict[tuple[str, str], list[_Entry]] = {}
        by_class: dict[tuple[str, str], list[_Entry]] = {}
        items = sorted(overrides, key=lambda o: (o.starts, o.id))
        for ov in items:
            entry = (ov.starts.timestamp(), ov.effective_end.timestamp(), ov)
            if entry[1] <= entry[0]:
                continue  # revoked before it started: never applies
            for kind, target in ov.targets():
                index = by_class if kind == "class" else by_person
                index.setdefault((target, ov.platform), []).append(entry)
        self._by_person = {k: tuple(v) for k, v in by_person.items()}
        self._by_class = {k: tuple(v) for k, v in by_class.items()}
        # fast misses: most decisions are for platforms nobody has an override for
        self._person_platforms = frozenset(p for _, p in self._by_person)
        classes_of: dict[str, set[str]] = {}
        for cls, plat in self._by_class:
            classes_of.setdefault(plat, set()).add(cls)
        self._classes_of = {p: frozenset(c) for p, c in classes_of.items()}
        self._all = tuple(items)

    def __len__(self) -> int:
        return len(self._all)

    def __bool__(self) -> bool:
        return bool(self._all)

    def __iter__(self) -> Iterator[Override]:
        return iter(self._all)

    def active_for(self, person: Person, platform: str, when: datetime | float) -> Override | None:
        """The override active for this person on this platform at ``when``: one granted to
        the person, else one granted to one of their classes (lowest class id first; within a
        target, the earliest start)."""
        ts = when if type(when) is float else _ts(when)
        if platform in self._person_platforms:
            for entry in self._by_person.get((person.sourced_id, platform), ()):
                if entry[0] <= ts < entry[1]:
                    return entry[2]
        classes = self._classes_of.get(platform)
        if classes is not None and not classes.isdisjoint(person.classes):
            mine = classes.intersection(person.classes)
            for cls in mine if len(mine) < 2 else sorted(mine):  # sorted: deterministic
                for entry in self._by_class[(cls, platform)]:
                    if entry[0] <= ts < entry[1]:
                        return entry[2]
        return None


EMPTY = OverrideSet()


# ---------------------------------------------------------------- records


class OverrideRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=_ID_RE.pattern)]
    platform: Annotated[str, Field(min_length=1)]
    granted_by: Annotated[str, Field(min_length=1)]
    granted_by_role: str = "teacher"
    class_id: str | None = None
    students: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    starts: AwareDatetime
    ends: AwareDatetime
    reason: str = ""
    created: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None
    revoked_by: str | None = None


class StoreFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    overrides: list[Any] = Field(default_factory=list)


def _record(ov: Override) -> dict[str, Any]:
    def iso(d: datetime | None) -> str | None:
        return None if d is None else d.astimezone(UTC).isoformat()

    return {
        "id": ov.id,
        "platform": ov.platform,
        "granted_by": ov.granted_by,
        "granted_by_role": ov.granted_by_role,
        "class_id": ov.class_id,
        "students": list(ov.students),
        "starts": iso(ov.starts),
        "ends": iso(ov.ends),
        "reason": ov.reason,
        "created": iso(ov.created),
        "revoked_at": iso(ov.revoked_at),
        "revoked_by": ov.revoked_by,
    }


def record_row(ov: Override) -> dict[str, Any]:
    """A grant as a record source's row: the JSON record's fields, times as datetimes."""
    return {**_record(ov), "starts": ov.starts, "ends": ov.ends, "created": ov.created,
            "revoked_at": ov.revoked_at}  # fmt: skip


def _override(r: OverrideRecord) -> Override:
    return Override(
        id=r.id,
        platform=r.platform,
        granted_by=r.granted_by,
        granted_by_role=r.granted_by_role,
        class_id=r.class_id,
        students=tuple(r.students),
        starts=r.starts,
        ends=r.ends,
        reason=r.reason,
        created=r.created,
        revoked_at=r.revoked_at,
        revoked_by=r.revoked_by,
    )


def parse_row(row: Mapping[str, Any], source: str) -> Override:
    """A record source's row as an Override; ConfigError naming ``source`` and the override."""
    oid = row.get("id")
    where = f"override '{oid}'" if isinstance(oid, str) else "override"
    r = validate(OverrideRecord, dict(row), source, where=where)
    if (r.class_id is None) == (not r.students):
        raise ConfigError(source, None, where, "name either class_id or students")
    return _override(r)


class _Edit(Protocol):
    """The grants while their storage is locked for a change."""

    def records(self, ending_after: datetime) -> builtins.list[Override]:
        """The grants that end after ``ending_after`` (or more)."""
        ...

    def get(self, override_id: str) -> Override | None: ...

    def add(self, ov: Override) -> bool:
        """Add a grant; False (nothing written) when its id is taken."""
        ...

    def replace(self, ov: Override) -> None: ...


class OverrideBook:
    """The rules of granting, revoking and listing teacher overrides, over a storage that a
    subclass provides (:meth:`load`, :meth:`current`, :meth:`_edit`). Methods raise ValueError
    on refused grants and ConfigError (a ValueError naming where) on damaged records."""

    name = ""  # where the grants are, for messages

    # ---- storage (subclasses)

    def load(self) -> builtins.list[Override]:
        """Every grant, in grant order."""
        raise NotImplementedError

    def current(self, now: datetime) -> builtins.list[Override]:
        """The grants that end after ``now`` (revoked ones included), in grant order."""
        return [o for o in self.load() if o.ends > now]

    def _edit(self) -> AbstractContextManager[_Edit]:
        raise NotImplementedError

    # ---- reading

    def list(
        self, active_only: bool = False, now: datetime | None = None
    ) -> builtins.list[Override]:
        """Grants in grant order; ``active_only`` keeps those not ended and not revoked (in
        force now or scheduled)."""
        if not active_only:
            return self.load()
        now = _aware(now, "now") if now is not None else datetime.now(UTC)
        return [o for o in self.current(now) if o.status(now) in ("active", "scheduled")]

    def override_set(self, now: datetime | None = None) -> OverrideSet:
        """The grants that can still apply at or after ``now`` (all of them when None)."""
        if now is None:
            return OverrideSet(self.load())
        return OverrideSet(o for o in self.current(now) if o.effective_end > now)

    # ---- writing

    def grant(
        self,
        *,
        platform: str,
        granted_by: str,
        ends: datetime,
        class_id: str | None = None,
        students: Collection[str] = (),
        starts: datetime | None = None,
        reason: str = "",
        now: datetime | None = None,
        max_length: timedelta = DEFAULT_MAX_LENGTH,
        granted_by_role: str = "teacher",
        known_platforms: Collection[str] | None = None,
        override_id: str | None = None,
    ) -> Override:
        """Record a new grant and return it. Refuses unknown platforms, a window that is
        empty, longer than ``max_length``, ending in the past or starting more than a minute
        ago, and a grant overlapping an existing one for the same target and platform."""
        now = _aware(now, "now") if now is not None else datetime.now(UTC)
        starts = _aware(starts, "starts") if starts is not None else now
        ends = _aware(ends, "ends")
        if known_platforms is not None and platform not in known_platforms:
            raise ValueError(f"unknown platform '{platform}'")
        if not granted_by:
            raise ValueError("granted_by (the teacher's sourcedId) is required")
        targets = tuple(dict.fromkeys(s.strip() for s in students if s.strip()))
        if (class_id is None) == (not targets):
            raise ValueError("name either a class or one or more students")
        if ends <= now:
            raise ValueError(f"the override would end in the past ({_iso(ends)})")
        if starts < now - START_GRACE:
            raise ValueError(f"the override would start in the past ({_iso(starts)})")
        if ends <= starts:
            raise ValueError("the override ends before it starts")
        if ends - starts > max_length:
            raise ValueError(
                f"an override may last at most {_span(max_length)}; "
                f"this one lasts {_span(ends - starts)}"
            )
        if override_id is not None and not _ID_RE.match(override_id):
            raise ValueError(f"'{override_id}' is not a valid override id")
        with self._edit() as edit:
            new = Override(
                id=override_id or _new_id(edit),
                platform=platform,
                granted_by=granted_by,
                granted_by_role=granted_by_role,
                class_id=class_id,
                students=targets,
                starts=starts,
                ends=ends,
                reason=reason.strip(),
                created=now,
            )
            if edit.get(new.id) is not None:
                raise ValueError(f"override id '{new.id}' is already used")
            mine = set(new.targets())
            for old in edit.records(ending_after=starts):
                if old.platform != platform or not mine.intersection(old.targets()):
                    continue
                if old.starts < new.ends and new.starts < old.effective_end:
                    raise ValueError(
                        f"overlaps override {old.id} ({old.target_words()}, {old.platform}, "
                        f"{_iso(old.starts)} to {_iso(old.effective_end)}, granted by "
                        f"{old.granted_by}): revoke it first or choose another window"
                    )
            edit.add(new)
        return new

    def revoke(self, override_id: str, by: str, now: datetime | None = None) -> Override:
        """End a grant now, recording who revoked it and when; the record is kept."""
        now = _aware(now, "now") if now is not None else datetime.now(UTC)
        if not by:
            raise ValueError("revoked_by (a sourcedId) is required")
        with self._edit() as edit:
            old = edit.get(override_id)
            if old is None:
                raise ValueError(f"no override with id '{override_id}'")
            if old.revoked_at is not None:
                raise ValueError(
                    f"override {old.id} was already revoked by {old.revoked_by} at "
                    f"{_iso(old.revoked_at)}"
                )
            if old.ends <= now:
                raise ValueError(f"override {old.id} already expired at {_iso(old.ends)}")
            new = replace(old, revoked_at=now, revoked_by=by)
            edit.replace(new)
            return new

    def add_all(self, records: Iterable[Override]) -> builtins.list[str]:
        """Add grants as they are (an import), skipping ids already present; returns the ids
        added. Idempotent: importing the same grants again adds nothing."""
        added = []
        with self._edit() as edit:
            for ov in records:
                if edit.add(ov):
                    added.append(ov.id)
        return added


# ---------------------------------------------------------------- the JSON file


class _FileEdit:
    def __init__(self, store: OverrideStore, records: builtins.list[Override]) -> None:
        self._store, self._records = store, records

    def records(self, ending_after: datetime) -> builtins.list[Override]:
        return builtins.list(self._records)

    def get(self, override_id: str) -> Override | None:
        return next((o for o in self._records if o.id == override_id), None)

    def add(self, ov: Override) -> bool:
        if self.get(ov.id) is not None:
            return False
        self._store._write([*self._records, ov])
        self._records.append(ov)
        return True

    def replace(self, ov: Override) -> None:
        records = [ov if o.id == ov.id else o for o in self._records]
        self._store._write(records)
        self._records[:] = records


class OverrideStore(OverrideBook):
    """Grants persisted in one JSON file (the format above). Since the store moved into the
    incident store, the proxy and sensor no longer read this file: it is imported once (see
    ``monitor.district``), and ``monitor override --store FILE`` keeps a standalone one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)

    # ---- reading

    def load(self) -> builtins.list[Override]:
        """Every record in the file (a missing file is an empty store)."""
        try:
            text = read_regular_file(self.path).decode("utf-8")
        except FileNotFoundError:
            return []
        except OSError as e:
            raise ConfigError(self.path, None, "", f"cannot read file: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(self.path, None, "", f"not UTF-8 text (byte {e.start})") from None
        return self._parse(text)

    def _parse(self, text: str) -> builtins.list[Override]:
        path = str(self.path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(path, e.lineno, "", f"invalid JSON: {e.msg}") from None
        except RecursionError:
            raise ConfigError(path, None, "", "invalid JSON: nested too deeply") from None
        try:
            return self._records(data, data)
        except ConfigError as first:
            # JSON is YAML: re-read with line numbers only when there is an error to place
            try:
                lines = load_yaml(path, text)
            except ConfigError:
                raise first from None
            self._records(data, lines)
            raise

    def _records(self, data: Any, root: Any) -> builtins.list[Override]:
        path = str(self.path)
        if not isinstance(data, dict):
            raise ConfigError(path, 1, "", "the override store must be a JSON object")
        top = validate(StoreFileModel, data, path, root=root)
        out: list[Override] = []
        seen: set[str] = set()
        for i, entry in enumerate(top.overrides):
            where = (
                f"override '{entry['id']}'"
                if isinstance(entry, dict) and isinstance(entry.get("id"), str)
                else f"overrides[{i}]"
            )
            r = validate(
                OverrideRecord, entry, path, where=where, base_loc=("overrides", i), root=root
            )
            if r.id in seen:
                raise ConfigError(path, _line(root, i), where, "duplicate override id")
            seen.add(r.id)
            if (r.class_id is None) == (not r.students):
                raise ConfigError(path, _line(root, i), where, "name either class_id or students")
            out.append(_override(r))
        return out

    # ---- writing

    @contextmanager
    def _locked(self) -> Iterator[builtins.list[Override]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.load()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _edit(self) -> Iterator[_Edit]:
        with self._locked() as records:
            yield _FileEdit(self, records)

    def _write(self, records: Iterable[Override]) -> None:
        body = json.dumps(
            {"version": 1, "overrides": [_record(o) for o in records]}, indent=2, ensure_ascii=False
        )
        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o640  # sourcedIds of students: not for every local user
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ---------------------------------------------------------------- a shared record source


class RowEditor(Protocol):
    """A record source's locked transaction (rows as :func:`record_row` makes them)."""

    def rows(self, ending_after: datetime | None = None) -> builtins.list[dict[str, Any]]: ...

    def get(self, override_id: str) -> dict[str, Any] | None: ...

    def insert(self, row: dict[str, Any]) -> bool: ...

    def update(self, row: dict[str, Any]) -> None: ...


class RecordSource(Protocol):
    """Where the grants of every proxy and sensor are kept (the incident store's overrides
    table: ``monitor.incidents.store.overrides.SqlOverrideRecords``)."""

    name: str

    def rows(self, ending_after: datetime | None = None) -> builtins.list[dict[str, Any]]: ...

    def version(self) -> int: ...

    def transaction(self) -> AbstractContextManager[RowEditor]: ...


class _RowEdit:
    def __init__(self, txn: RowEditor, name: str) -> None:
        self._txn, self._name = txn, name

    def records(self, ending_after: datetime) -> builtins.list[Override]:
        return [parse_row(r, self._name) for r in self._txn.rows(ending_after)]

    def get(self, override_id: str) -> Override | None:
        row = self._txn.get(override_id)
        return None if row is None else parse_row(row, self._name)

    def add(self, ov: Override) -> bool:
        return self._txn.insert(record_row(ov))

    def replace(self, ov: Override) -> None:
        self._txn.update(record_row(ov))


class SharedOverrides(OverrideBook):
    """The grants in a record source that every proxy and sensor of the district reads."""

    def __init__(self, source: RecordSource) -> None:
        self.source = source
        self.name = source.name

    def load(self) -> builtins.list[Override]:
        return [parse_row(r, self.name) for r in self.source.rows()]

    def current(self, now: datetime) -> builtins.list[Override]:
        return [parse_row(r, self.name) for r in self.source.rows(ending_after=now)]

    def version(self) -> int:
        return self.source.version()

    @contextmanager
    def _edit(self) -> Iterator[_Edit]:
        with self.source.transaction() as txn:
            yield _RowEdit(txn, self.name)


def _iso(d: datetime) -> str:
    return d.isoformat(timespec="seconds")


def _line(root: Any, i: int) -> int | None:
    return line_of(root, ("overrides", i))


def _new_id(edit: _Edit) -> str:
    while True:
        candidate = f"ov-{secrets.token_hex(4)}"
        if edit.get(candidate) is None:
            return candidate


def _span(td: timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    out = (
        (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{mins}m" if mins else "")
    )
    return out or f"{int(td.total_seconds())}s"
