"""PQL time units on UTC instants: add N units, truncate to a unit, and the [start, end) period of a time word."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

_FIXED = {"millisecond": timedelta(milliseconds=1), "second": timedelta(seconds=1), "minute": timedelta(minutes=1),
          "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
MONTHS = {"month": 1, "year": 12, "decade": 120, "century": 1200, "millennium": 12000}


def utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def add(instant: datetime, amount: int, unit: str) -> datetime:
    if unit in _FIXED:
        return instant + amount * _FIXED[unit]
    months = instant.year * 12 + instant.month - 1 + amount * MONTHS[unit]
    year, month = divmod(months, 12)
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


def truncate(instant: datetime, unit: str) -> datetime:
    if unit == "millisecond":
        return instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    if unit in _FIXED:
        keep = ("second", "minute", "hour", "day", "week").index(unit)
        fields = ("microsecond", "second", "minute", "hour")[: keep + 1]
        instant = instant.replace(**{f: 0 for f in fields})
        return instant - timedelta(days=instant.weekday()) if unit == "week" else instant
    day = instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return day
    span = MONTHS[unit] // 12
    return day.replace(month=1, year=day.year // span * span)


def day_start(instant: datetime) -> datetime:
    return truncate(instant, "day")


def period(rel: str, unit: str, now: datetime) -> tuple[datetime, datetime]:
    """`this|last|next <unit>`: the calendar period holding now, the one before it or the one after it."""
    start = add(truncate(now, unit), {"this": 0, "last": -1, "next": 1}[rel], unit)
    return start, add(start, 1, unit)


def sql_interval(amount: int, unit: str) -> str:
    """INTERVAL literal both engines read: weeks as days, months and longer as months."""
    if unit == "week":
        return f"INTERVAL {amount * 7} DAY"
    if unit in MONTHS:
        return f"INTERVAL {amount * MONTHS[unit]} MONTH"
    return f"INTERVAL {amount} {unit.upper()}"
