"""``r4prim.real_day`` (days per month from a table, 29 February by the leap-year rule) agrees
with the calendar module for every day of every month over four centuries and their edges."""

from __future__ import annotations

import calendar

from fhir_iastm.validation.r4prim import real_day


def test_real_day_agrees_with_the_calendar() -> None:
    years = [*range(1, 20), *range(1890, 2110), *range(2390, 2410), 9996, 9999]
    for year in years:
        for month in range(1, 13):
            last = calendar.monthrange(year, month)[1]
            for day in range(1, 32):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                assert real_day(text) is (day <= last), text
                assert real_day(text + "T10:00:00Z") is (day <= last), text


def test_year_and_month_precision_pass() -> None:
    assert real_day("2025")
    assert real_day("2025-02")
