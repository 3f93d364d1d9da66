"""The R4 primitive types' rules (docs/validation.md#stages): each type's JSON kind, the spec's
regex and, for date, dateTime and instant, a day that exists; a quick check per string type for
the walk (``r4check``) and the full check naming what is wrong."""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from fhir_iastm.validation import r4defs as defs

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_DATED = frozenset({"date", "dateTime", "instant"})
#: the days of each month (February: 28, a leap year's 29th checked apart); index 0 unused
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def real_day(text: str) -> bool:
    """A day that exists (the regexes allow 2025-02-30); year or month precision passes."""
    if len(text) < 10:
        return True
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    if day <= _MONTH_DAYS[month]:
        return True
    return month == 2 and day == 29 and calendar.isleap(year)


def _dated_ok(pattern: re.Pattern[str], text: str) -> bool:
    """A date, dateTime or instant of the spec's form on a day that exists."""
    return pattern.fullmatch(text) is not None and real_day(text)


#: primitive code -> (JSON kind, the spec's regex or None, a calendar date to check), once
PRIMITIVE_RULES: dict[str, tuple[str, re.Pattern[str] | None, bool]] = {
    code: (defs.json_kind(code), defs.primitive_pattern(code), code in _DATED)
    for code in defs.primitives()
}
#: string primitive code -> a quick check of a string value: truthy when ``primitive_problem``
#: would find nothing wrong with its format (falsy: ask it); ``len`` where the type has no regex
PLAIN: dict[str, Callable[[str], object]] = {
    code: len if pattern is None else (partial(_dated_ok, pattern) if dated else pattern.fullmatch)
    for code, (kind, pattern, dated) in PRIMITIVE_RULES.items()
    if kind == defs.STRING
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_ok(kind: str, value: Any) -> bool:
    """The JSON type (and range) of a boolean, integer or decimal value."""
    if kind == defs.BOOLEAN:
        return isinstance(value, bool)
    if kind == defs.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok and _INT_MIN <= value <= _INT_MAX
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)


def primitive_problem(value: Any, code: str) -> tuple[str, str, str] | None:
    """What is wrong with a value of primitive type ``code``, as (issue code, message, rule
    id); None: nothing (JSON type, range, the spec's regex, a real calendar day)."""
    kind, pattern, dated = PRIMITIVE_RULES[code]
    if kind == defs.STRING:
        if not isinstance(value, str):
            return ("structure", f"{_show(value)} is not a valid {code}", "structure:type")
        text = value
    else:
        if not _kind_ok(kind, value):
            return ("structure", f"{_show(value)} is not a valid {code}", "structure:type")
        if kind == defs.DECIMAL:
            return None
        text = str(value).lower()
    if pattern is not None and not pattern.fullmatch(text):
        return ("value", f"{_show(value)} is not a valid {code}", "structure:format")
    if dated and not real_day(text):
        return ("value", f"{_show(value)} is not a calendar date", "structure:format")
    return None


__all__ = ["PLAIN", "PRIMITIVE_RULES", "primitive_problem", "real_day"]
