"""The stretch of time a report covers: an ISO week, or any run of whole days, in school time.

A `Period` starts and ends at local midnights of the school's timezone (so a
week across a clock change is 167 or 169 hours, as the school lived it) and
knows its bounds as unix seconds for the `visits.ts` / `dns_queries.ts`
columns and as ISO text for the `*_at` columns.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from proxy.db import utc_iso

_WEEK_RE = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


class PeriodError(ValueError):
    """A week or date range that cannot be understood."""


@dataclass(frozen=True)
class Period:
    first_day: dt.date          # inclusive
    last_day: dt.date           # inclusive
    tz: ZoneInfo
    label: str                  # "2026-W47" or "2026-09-01 to 2027-08-31"

    @property
    def start(self) -> dt.datetime:
        """The first local midnight, as an aware datetime."""
        return dt.datetime.combine(self.first_day, dt.time(0), self.tz)

    @property
    def end(self) -> dt.datetime:
        """The local midnight after the last day (exclusive)."""
        return dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(0), self.tz)

    @property
    def start_ts(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        return int(self.end.timestamp())

    @property
    def start_iso(self) -> str:
        return utc_iso(self.start)

    @property
    def end_iso(self) -> str:
        return utc_iso(self.end)

    @property
    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        length = (self.last_day - self.first_day).days + 1
        first = self.first_day - dt.timedelta(days=length)
        last = self.first_day - dt.timedelta(days=1)
        if self.is_week:
            return week_of(first, self.tz)
        return days_between(first, last, self.tz)

    @property
    def is_week(self) -> bool:
        return bool(_WEEK_RE.match(self.label))

    def describe(self) -> str:
        """'Monday 16 to Sunday 22 November 2026' style words for headings."""
        a, b = self.first_day, self.last_day
        if a.year != b.year:
            return f"{a:%A} {a.day} {a:%B %Y} to {b:%A} {b.day} {b:%B %Y}"
        if a.month != b.month:
            return f"{a:%A} {a.day} {a:%B} to {b:%A} {b.day} {b:%B %Y}"
        return f"{a:%A} {a.day} to {b:%A} {b.day} {b:%B %Y}"


def week_of(day: dt.date, tz: ZoneInfo) -> Period:
    """The ISO week (Monday to Sunday) containing `day`."""
    year, week, _ = day.isocalendar()
    monday = day - dt.timedelta(days=day.weekday())
    return Period(monday, monday + dt.timedelta(days=6), tz, f"{year}-W{week:02d}")


def parse_week(text: str, tz: ZoneInfo) -> Period:
    """'2026-W47' (or '2026W47') -> that ISO week."""
    match = _WEEK_RE.match(text.strip())
    if match is None:
        raise PeriodError(f"expected a week such as 2026-W47; got {text!r}")
    year, week = int(match[1]), int(match[2])
    try:
        monday = dt.date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise PeriodError(f"{text!r}: {exc}") from exc
    return week_of(monday, tz)


def last_complete_week(now: dt.datetime, tz: ZoneInfo) -> Period:
    """The ISO week before the one `now` falls in (school time)."""
    today = now.astimezone(tz).date()
    return week_of(today - dt.timedelta(days=today.weekday() + 7), tz)


def days_between(first: dt.date, last: dt.date, tz: ZoneInfo) -> Period:
    if last < first:
        raise PeriodError(f"the period ends ({last}) before it starts ({first})")
    return Period(first, last, tz, f"{first.isoformat()} to {last.isoformat()}")


def parse_days(first: str, last: str, tz: ZoneInfo) -> Period:
    try:
        a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError as exc:
        raise PeriodError(f"expected dates as YYYY-MM-DD: {exc}") from exc
    return days_between(a, b, tz)
