"""Retention: how long incidents and access records live, and the purge that deletes what is due.

Periods are read from a ``retention:`` section, in ``district.yaml`` when it has one, else in
an optional ``retention.yaml`` beside it::

    retention:
      incidents: 365d      # by last_seen; units h, d, w, y (365 days)
      access_log: 6y       # at least as long as incidents
      aggregates: 730d     # daily activity counts (no person in them): two school years

A purge deletes incidents last seen before now - incidents, access records older than now -
access_log, daily activity counts of days before now - aggregates, and writes an access record
saying what it deleted and for which students.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine, delete, func, select

from monitor.incidents.access import AccessLog, Actor
from monitor.incidents.aggregates import purge_aggregates
from monitor.incidents.store.accessschema import access_log
from monitor.incidents.store.schema import incidents
from monitor.incidents.store.sql import write_transaction
from monitor.yamlfile import ConfigError, LineDict, load_yaml, shorten, validate

RETENTION_FILE = "retention.yaml"
DISTRICT_FILE = "district.yaml"
_PERIOD = re.compile(r"(\d+)\s*([hdwy])")
_UNITS = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_CHUNK = 1000


def parse_period(value: object) -> timedelta:
    """``"365d"``, ``"6y"``, ``"52w"``, ``"12h"`` → timedelta (a year is 365 days)."""
    if isinstance(value, timedelta):
        return value
    text = value.strip().lower() if isinstance(value, str) else ""
    m = _PERIOD.fullmatch(text)
    if m is None or int(m.group(1)) <= 0:
        raise PydanticCustomError(
            "invalid", f"'{shorten(value)}' is not a period: write e.g. 365d, 52w or 6y"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_period(td: timedelta) -> str:
    for unit in ("y", "w", "d", "h"):
        size = _UNITS[unit]
        if td >= size and td % size == timedelta(0):
            return f"{td // size}{unit}"
    return f"{int(td.total_seconds())}s"


Period = Annotated[timedelta, BeforeValidator(parse_period)]


class RetentionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incidents: Period = timedelta(days=365)
    access_log: Period = timedelta(days=6 * 365)
    aggregates: Period = timedelta(days=730)

    @model_validator(mode="after")
    def _access_outlives_incidents(self) -> RetentionModel:
        # FERPA keeps the record of access as long as the records it is about.
        if self.access_log < self.incidents:
            raise ValueError("access_log must be kept at least as long as incidents")
        return self


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retention: RetentionModel = RetentionModel()


@dataclass(frozen=True, slots=True)
class Retention:
    incidents: timedelta = timedelta(days=365)
    access_log: timedelta = timedelta(days=6 * 365)
    aggregates: timedelta = timedelta(days=730)

    def describe(self) -> str:
        return (
            f"incidents {format_period(self.incidents)}, "
            f"access records {format_period(self.access_log)}"
        )


def load_retention(config_dir: str | Path) -> Retention:
    """The retention periods of the district at ``config_dir`` (defaults when unset);
    ConfigError naming file, line and field on a bad value."""
    d = Path(config_dir)
    district = d / DISTRICT_FILE
    raw = load_yaml(district) if district.exists() else None
    if isinstance(raw, LineDict) and "retention" in raw:
        if (d / RETENTION_FILE).exists():
            raise ConfigError(
                d / RETENTION_FILE, 1, "", f"retention is set in {DISTRICT_FILE} already: keep one"
            )
        section = {"retention": raw["retention"]}
        m = validate(_FileModel, section, district, root=raw)
        return Retention(m.retention.incidents, m.retention.access_log, m.retention.aggregates)
    path = d / RETENTION_FILE
    if not path.exists():
        return Retention()
    data: Any = load_yaml(path)
    if data is None:
        return Retention()
    if not isinstance(data, LineDict):
        raise ConfigError(path, getattr(data, "line", 1), "", "expected a YAML mapping")
    m = validate(_FileModel, data, path)
    return Retention(m.retention.incidents, m.retention.access_log, m.retention.aggregates)


def check_retention(
    incidents_: timedelta, access_log_: timedelta, aggregates: timedelta = timedelta(days=730)
) -> Retention:
    """A Retention from periods given elsewhere (CLI options), checked like the file."""
    m = RetentionModel(incidents=incidents_, access_log=access_log_, aggregates=aggregates)
    return Retention(m.incidents, m.access_log, m.aggregates)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    incidents: int  # incidents deleted (or due, in a dry run)
    students: int  # distinct students whose incidents were deleted
    access_records: int
    incidents_before: datetime
    access_before: datetime
    dry_run: bool = False
    aggregates: int = 0  # daily activity count rows deleted (not counted in a dry run)

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.incidents} incidents of {self.students} students last seen before "
            f"{self.incidents_before:%Y-%m-%d %H:%M} UTC and {self.access_records} access "
            f"records before {self.access_before:%Y-%m-%d %H:%M} UTC"
            + (f" and {self.aggregates} daily activity count rows" if self.aggregates else "")
        )


def purge(
    engine: Engine,
    log: AccessLog,
    retention: Retention,
    *,
    now: datetime,
    actor: Actor,
    dry_run: bool = False,
) -> PurgeResult:
    """Delete incidents and access records past their retention, in small transactions (a
    proxy keeps writing meanwhile), then record the purge. ``dry_run``: count only."""
    inc_before = now - retention.incidents
    acc_before = now - retention.access_log
    old = incidents.c.last_seen < inc_before
    with engine.connect() as conn:
        people = set(conn.execute(select(incidents.c.person).where(old).distinct()).scalars())
        due = int(conn.execute(select(func.count()).select_from(incidents).where(old)).scalar_one())
    if dry_run:
        with engine.connect() as conn:
            acc = conn.execute(
                select(func.count()).select_from(access_log).where(access_log.c.at < acc_before)
            ).scalar_one()
        return PurgeResult(due, len(people), int(acc), inc_before, acc_before, dry_run=True)
    removed = 0
    while True:
        with write_transaction(engine) as conn:
            ids = list(conn.execute(select(incidents.c.id).where(old).limit(_CHUNK)).scalars())
            if not ids:
                break
            conn.execute(delete(incidents).where(incidents.c.id.in_(ids)))
            removed += len(ids)
    acc_removed = log.purge(acc_before)
    agg_removed = purge_aggregates(engine, (now - retention.aggregates).date())
    result = PurgeResult(
        removed, len(people), acc_removed, inc_before, acc_before, aggregates=agg_removed
    )
    if removed or acc_removed:
        log.record(
            actor,
            "purge",
            detail=f"{result.describe()} (retention: {retention.describe()})",
            reason="retention policy",
            subjects=people,
        )
    return result
