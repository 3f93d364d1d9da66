"""FHIR date, dateTime and instant values as UTC ranges (R4 search.html#date).

Every date is an interval: ``2025`` is the whole year, ``2025-03-04T09:00`` the whole minute.
Bounds are inclusive UTC timestamps written ``YYYY-MM-DDTHH:MM:SS.ffffff`` (fixed width, so text
comparison is time order on every database). A value without a time zone is read as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

#: Bounds of an open end (a Period without start or end).
MIN_BOUND = "0001-01-01T00:00:00.000000"
MAX_BOUND = "9999-12-31T23:59:59.999999"

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d{1,9})?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@lru_cache(maxsize=4096)
def date_bounds(text: str) -> tuple[str, str]:
    """``(low, high)`` of a FHIR date/dateTime/instant; ValueError when it is not one. Cached:
    a record's resources repeat a few date-times many times."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"'{text}' is not a FHIR date, dateTime or instant")
    g = match.groupdict()
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    try:
        start = datetime(year, month, day, int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0),
                         int(((g["f"] or ".")[1:] + "000000")[:6]), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid date: {exc}") from None
    end = _end(start, g)
    if g["tz"] and g["tz"] != "Z":
        sign = 1 if g["tz"][0] == "+" else -1
        offset = timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6])) * sign
        try:
            start, end = start - offset, end - offset
        except OverflowError:
            raise ValueError(f"'{text}' is out of range") from None
    return _fmt(start), _fmt(end)


def _end(start: datetime, g: dict[str, str | None]) -> datetime:
    """The last microsecond of the value's precision."""
    if g["m"] is None:
        return start.replace(month=12, day=31, hour=23, minute=59, second=59, microsecond=999999)
    if g["d"] is None:
        last = calendar.monthrange(start.year, start.month)[1]
        return start.replace(day=last, hour=23, minute=59, second=59, microsecond=999999)
    if g["H"] is None:
        return start.replace(hour=23, minute=59, second=59, microsecond=999999)
    if g["S"] is None:
        return start.replace(second=59, microsecond=999999)
    if g["f"] is None:
        return start.replace(microsecond=999999)
    return start


def _fmt(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` of a UTC datetime (its ISO form without the ``+00:00``)."""
    return value.isoformat(timespec="microseconds")[:26]


def period_bounds(start: str | None, end: str | None) -> tuple[str, str]:
    """``(low, high)`` of a Period: from the start's low to the end's high; open ends unbounded."""
    low = date_bounds(start)[0] if start else MIN_BOUND
    high = date_bounds(end)[1] if end else MAX_BOUND
    return low, high


def instant(bound: str) -> str:
    """A bound as a FHIR instant (``meta.lastUpdated``)."""
    return bound + "Z"


__all__ = ["MAX_BOUND", "MIN_BOUND", "date_bounds", "instant", "period_bounds"]
