"""Reading OneRoster values as exports write them: dates, booleans, status, dateLastModified.

The binding asks for ``YYYY-MM-DD`` dates, ``true``/``false`` and ``active``/``tobedeleted``,
all case-sensitive. Some student information systems write other forms; each form below is read
only when it cannot mean anything else, with a warning that says how it was read:

* a date with a time part (``2012-03-04T00:00:00.000Z``, ``2012-03-04 00:00:00``): the date
  part, when the time is midnight or carries no time zone. A time of day *with* a zone
  (``2012-03-03T23:00:00Z``) may be a local midnight moved to another zone, a day off: refused.
* ``YYYY/MM/DD`` and ``YYYYMMDD`` (ISO 8601 basic): year first, one reading only.
* ``M/D/YYYY`` or ``D/M/YYYY``: a number above 12 says which is the day. When both numbers are
  12 or under, the column decides: another row of it with a day above 12 in second place shows
  the export writes month first (and likewise day first). A column that shows both orders, or
  neither, leaves such a date unread (the person's birthDate is unknown, the strict default).
* booleans ``TRUE``/``True``, ``1``/``0``; status ``Active``/``TOBEDELETED``. Anything else
  (``yes``, ``Y``, ``archived``) stays refused for its row.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from monitor.people.roster.tables import Problems, Table
from monitor.yamlfile import shorten

_ISO_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?"
    r" ?(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_YMD_SLASH_RE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_BASIC_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SLASH_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_BOOLEANS = {"true": "true", "false": "false", "1": "true", "0": "false"}
_STATUSES = ("active", "tobedeleted")


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


class DateColumn[T]:
    """The dates of one column, read row by row (see the module docstring for the forms).

    ``read`` answers at once for every form but an ambiguous ``a/b/YYYY``, which waits with its
    ``target`` until ``finish`` has seen the whole column.
    """

    def __init__(self, problems: Problems, t: Table, field: str, refused: str) -> None:
        self.problems = problems
        self.path = t.path
        self.field = field
        self.refused = refused  # what a refused date means, e.g. "birthDate unknown"
        self.month_first: tuple[int, str] | None = None  # the first row showing M/D/YYYY
        self.day_first: tuple[int, str] | None = None
        self.pending: list[tuple[int, str, int, int, int, T]] = []

    def refuse(self, line: int, message: str, topic: str = "") -> None:
        self.problems.skip(self.path, line, self.field, f"{message}: {self.refused}", topic)

    def assumed(self, line: int, value: str, how: str, form: str) -> None:
        self.problems.note(
            "warning", "date", self.path, line, self.field, f"'{shorten(value)}' {how}", form
        )

    def read(self, line: int, value: str, target: T) -> date | None:
        """The date ``value`` (not empty) means, or None: refused, or waiting for ``finish``."""
        m = _ISO_RE.fullmatch(value)
        if m is not None:
            day = _day(int(m[1]), int(m[2]), int(m[3]))
            if day is None:
                self.refuse(line, f"'{shorten(value)}' is not a real date")
            return day
        return self.other_form(line, value, target)

    def other_form(self, line: int, value: str, target: T) -> date | None:
        if (m := _TIME_RE.fullmatch(value)) is not None:
            day = _day(int(m[1]), int(m[2]), int(m[3]))
            if day is None:
                self.refuse(line, f"'{shorten(value)}' is not a real date")
                return None
            midnight = m[4] == "00" and m[5] == "00" and (m[6] or "00") == "00"
            if m[7] and not midnight:
                self.refuse(
                    line,
                    f"'{shorten(value)}' has a time of day in a time zone: the date may have "
                    "moved a day in a time-zone conversion",
                    "ambiguous date",
                )
                return None
            self.assumed(line, value, f"has a time part: ignored, read as {day}", "time")
            return day
        for regex, form in ((_YMD_SLASH_RE, "YYYY/MM/DD"), (_BASIC_RE, "YYYYMMDD")):
            if (m := regex.fullmatch(value)) is not None:
                year = int(m[1])
                day = _day(year, int(m[2]), int(m[3])) if 1900 <= year <= 2100 else None
                if day is None:
                    break
                self.assumed(line, value, f"read as {day} ({form})", form)
                return day
        if (m := _SLASH_RE.fullmatch(value)) is not None:
            return self.slashed(line, value, int(m[1]), int(m[2]), int(m[3]), target)
        self.refuse(line, f"'{shorten(value)}' is not a date (expected YYYY-MM-DD)")
        return None

    def slashed(self, line: int, value: str, a: int, b: int, year: int, target: T) -> date | None:
        if a > 12 and b <= 12:
            day, form, how = _day(year, b, a), "D/M/YYYY", "the first number is above 12"
            self.day_first = self.day_first or (line, value)
        elif b > 12 and a <= 12:
            day, form, how = _day(year, a, b), "M/D/YYYY", "the second number is above 12"
            self.month_first = self.month_first or (line, value)
        elif a == b:
            day, form, how = _day(year, a, a), "M/D/YYYY", "day and month are the same"
        elif a <= 12 and b <= 12:
            self.pending.append((line, value, a, b, year, target))
            return None
        else:
            day = None
        if day is None:
            self.refuse(line, f"'{shorten(value)}' is not a real date")
            return None
        self.assumed(line, value, f"read as {day} ({form}: {how})", form)
        return day

    def finish(self) -> list[tuple[T, int, str, date]]:
        """Settle the ``a/b/YYYY`` dates that read two ways by the order the column shows."""
        out: list[tuple[T, int, str, date]] = []
        evidence = None
        if self.month_first and not self.day_first:
            evidence, form = self.month_first, "M/D/YYYY"
        elif self.day_first and not self.month_first:
            evidence, form = self.day_first, "D/M/YYYY"
        for line, value, a, b, year, target in self.pending:
            if evidence is None:
                why = (
                    "and the column has dates in both orders"
                    if self.month_first
                    else "and no date of the column shows which"
                )
                self.refuse(
                    line,
                    f"'{shorten(value)}' is not a date (expected YYYY-MM-DD): it reads as "
                    f"{year}-{a:02d}-{b:02d} (M/D/YYYY) or {year}-{b:02d}-{a:02d} (D/M/YYYY), "
                    f"{why}",
                    "ambiguous date",
                )
                continue
            month, day_ = (a, b) if form == "M/D/YYYY" else (b, a)
            day = date(year, month, day_)  # both numbers are 1..12: always a real date
            self.assumed(
                line,
                value,
                f"read as {day} ({form}, the order of '{evidence[1]}' on line {evidence[0]})",
                form + " by column",
            )
            out.append((target, line, value, day))
        self.pending = []
        return out


def read_boolean(t: Table, line: int, field: str, value: str) -> str | None:
    """'true', 'false' or '' (empty) for a boolean field, or None: not a boolean."""
    if value in ("true", "false", ""):
        return value
    read = _BOOLEANS.get(value.lower())
    if read is not None:
        t.problems.note(
            "warning", "boolean", t.path, line, field, f"'{value}' read as {read}", value
        )
    return read


def read_status(t: Table, line: int, value: str) -> str | None:
    """'active', 'tobedeleted' or '' for a status field, or None: not a status."""
    if value in ("", "active", "tobedeleted"):
        return value
    folded = value.lower()
    if folded in _STATUSES:
        t.problems.note(
            "warning", "status", t.path, line, "status", f"'{value}' read as {folded}", value
        )
        return folded
    return None


def read_when(value: str) -> datetime | None:
    """A dateLastModified (ISO 8601 date-time, or a date: its midnight) as an aware datetime,
    UTC when it names no zone; None when it is empty or not ISO 8601."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
