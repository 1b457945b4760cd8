"""A report's period: whole days in the district's time zone, first and last day included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True, slots=True)
class Period:
    """Days ``start`` to ``end``, both included; ValueError when ``end`` is before ``start``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(
                f"the period ends ({self.end}) before it starts ({self.start}): "
                "--to must be on or after --from"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        """From ISO dates (``2026-11-01``); ValueError naming the bad one."""
        days = []
        for name, value in (("from", start), ("to", end)):
            try:
                days.append(date.fromisoformat(value.strip()))
            except ValueError:
                raise ValueError(
                    f"--{name} {value!r}: expected a date such as 2026-11-01"
                ) from None
        return cls(days[0], days[1])

    @classmethod
    def last_week(cls, today: date) -> Period:
        """The Monday to Sunday before the week of ``today``."""
        monday = today - timedelta(days=today.weekday())
        return cls(monday - timedelta(days=7), monday - timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[first instant, first instant after) of the period in ``tz``."""
        return (
            datetime.combine(self.start, time(0), tz),
            datetime.combine(self.end + timedelta(days=1), time(0), tz),
        )

    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches."""
        first = self.start - timedelta(days=self.start.weekday())
        return [first + timedelta(weeks=i) for i in range((self.end - first).days // 7 + 1)]

    def describe(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"
