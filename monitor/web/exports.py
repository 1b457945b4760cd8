"""CSV and JSON documents: incident exports, a student's whole record, access reports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.incidents.access import AccessRecord
from monitor.incidents.events import Incident
from monitor.web.people import Revealed

INCIDENT_COLUMNS = (
    "id",
    "first_seen",
    "last_seen",
    "count",
    "school",
    "grade",
    "age_band",
    "person",
    "platform",
    "activity",
    "decision",
    "rule_id",
    "reason",
    "host",
    "source",
    "severity",
    "status",
    "assignee",
    "notes",
)
ACCESS_COLUMNS = (
    "at",
    "account",
    "role",
    "position",
    "action",
    "what",
    "person",
    "sourced_id",
    "incident_id",
    "detail",
    "reason",
)
# A spreadsheet runs a cell that starts with one of these as a formula: a host name from the
# network such as "=HYPERLINK(…)" must stay text.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _iso(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).isoformat(timespec="seconds")


def incident_row(i: Incident, tz: ZoneInfo) -> dict[str, Any]:
    out = {name: getattr(i, name) for name in INCIDENT_COLUMNS}
    out["first_seen"] = _iso(i.first_seen, tz)
    out["last_seen"] = _iso(i.last_seen, tz)
    return out


def access_row(r: AccessRecord, tz: ZoneInfo) -> dict[str, Any]:
    out = {name: getattr(r, name) for name in ACCESS_COLUMNS}
    out["at"] = _iso(r.at, tz)
    return out


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([cell(row[c]) for c in columns])
    return buf.getvalue()


def incidents_csv(items: Iterable[Incident], tz: ZoneInfo) -> str:
    return to_csv(INCIDENT_COLUMNS, (incident_row(i, tz) for i in items))


def access_csv(records: Iterable[AccessRecord], tz: ZoneInfo) -> str:
    return to_csv(ACCESS_COLUMNS, (access_row(r, tz) for r in records))


def student_record_json(
    student: Revealed,
    items: Sequence[Incident],
    access: Sequence[AccessRecord],
    *,
    district: str,
    tz: ZoneInfo,
    made_at: datetime,
    made_by: str,
) -> str:
    """A student's whole record, for a parent's or eligible student's request."""
    doc = {
        "district": district,
        "made_at": _iso(made_at, tz),
        "made_by": made_by,
        "student": {
            "sourced_id": student.sourced_id,
            "given_name": student.given_name,
            "family_name": student.family_name,
            "grades": list(student.grades),
            "schools": list(student.school_names),
            "pseudonym": student.pseudonym,
        },
        "incidents": [incident_row(i, tz) for i in items],
        "record_of_access": [access_row(r, tz) for r in access],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
