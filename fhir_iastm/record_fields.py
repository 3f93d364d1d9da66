"""Core: strict marshmallow fields and single-value checks for the internal record (MAPPING.md §1).

Layer: core. Imports the standard library, marshmallow and simple-icd-10-cm only.

Every error message starts with our stable code and a ``|``: ``"E_RANGE|pain must be 0-10, got 11"``.
``records`` splits it back into ``Issue.details`` and ``Issue.diagnostics``. Each field reports at
most one error (checks short-circuit), so one defect gives one issue.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

from marshmallow import ValidationError, fields

from fhir_iastm.errors import Issue

with warnings.catch_warnings():
    # simple-icd-10-cm 1.5.0 loads its data with the deprecated importlib.resources.read_text.
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10_cm as icd

#: Decision 16: clinic_id, condition_id, mrn.
IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: §1.1: session_id (no underscore, unlike decision 16's identifiers).
SESSION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
#: Decision 20: RFC 3339 date-time with an explicit offset.
DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-](0\d|1[0-3]):[0-5]\d|[+-]14:00)"
)
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
PARTIAL_DATE_RE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
#: Decision 19: upper-case, dotted ICD-10-CM.
ICD_RE = re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?")
NPI_RE = re.compile(r"\d{10}")
CPT_RE = re.compile(r"\d{4}[0-9FTU]")
POSTAL_RE = re.compile(r"\d{5}(-\d{4})?")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Control characters FHIR strings should not carry (tab, CR and LF are allowed).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: USPS state, district, territory and military codes.
USPS_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY"
    " NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR VI UM FM MH PW AA AE AP"
    .split()
)

#: FHIR integer maximum (positiveInt, integer).
INT_MAX = 2_147_483_647

#: Our stable codes -> (FHIR R4 IssueType, severity). MAPPING.md §1.6 plus decisions 15, 17, 19;
#: E_UNKNOWN_FIELD is ours: a field that is not in the contract is a structural error.
CATALOGUE: dict[str, tuple[str, str]] = {
    "E_SCHEMA_VERSION": ("not-supported", "error"),
    "E_REQUIRED": ("required", "error"),
    "E_FORMAT": ("value", "error"),
    "E_TYPE": ("value", "error"),
    "E_RANGE": ("value", "error"),
    "E_UNKNOWN_FIELD": ("structure", "error"),
    "E_CODE_UNKNOWN": ("code-invalid", "error"),
    "E_CODE_MISMATCH": ("code-invalid", "error"),
    "E_ICD_INVALID": ("code-invalid", "error"),
    "E_ICD_NOT_BILLABLE": ("code-invalid", "error"),
    "E_NPI_INVALID": ("value", "error"),
    "E_PERIOD_ORDER": ("invariant", "error"),
    "E_DURATION_MISMATCH": ("invariant", "error"),
    "E_LATERALITY_CONFLICT": ("invariant", "error"),
    "E_MULTIPLE_PRIMARY": ("invariant", "error"),
    "E_DUPLICATE_KEY": ("duplicate", "error"),
    "E_REF": ("value", "error"),
    "E_STATUS_CONFLICT": ("business-rule", "error"),
    "E_DUPLICATE_SESSION": ("duplicate", "error"),
    "E_STALE_VERSION": ("conflict", "error"),
    "W_PLAN_EXCEEDED": ("business-rule", "warning"),
    "W_IDEMPOTENT_REPEAT": ("informational", "information"),
}


def make_issue(code: str, path: str, message: str) -> Issue:
    """An Issue for one of our codes; ``path`` "" (the whole record) gives no expression."""
    issue_type, severity = CATALOGUE[code]
    return Issue(severity, issue_type, path or None, message, code)


def err(code: str, message: str) -> ValidationError:
    """A ValidationError whose message carries our stable code."""
    return ValidationError(f"{code}|{message}")


def _messages(required: bool, what: str) -> dict[str, str]:
    need = "E_REQUIRED|" if required else "E_TYPE|"
    return {
        "required": f"E_REQUIRED|{what} is required",
        "null": f"{need}{what} must not be null",
        "validator_failed": "E_FORMAT|invalid value",
    }


class Text(fields.Field):
    """A JSON string (never bytes or a number), non-blank, with a length bound and an optional check."""

    def __init__(
        self,
        *,
        max_len: int,
        required: bool = False,
        check: Callable[[str], None] | None = None,
        what: str = "value",
    ) -> None:
        super().__init__(
            required=required,
            allow_none=not required,
            error_messages=_messages(required, what),
        )
        self.max_len = max_len
        self.check = check
        self.what = what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise err("E_TYPE", f"{self.what} must be a string, got {json_type(value)}")
        if not value.strip():
            code = "E_REQUIRED" if self.required else "E_FORMAT"
            raise err(code, f"{self.what} must not be empty (omit an optional field instead)")
        if len(value) > self.max_len:
            raise err("E_FORMAT", f"{self.what} is {len(value)} characters; at most {self.max_len}")
        if _CONTROL_RE.search(value):
            raise err("E_FORMAT", f"{self.what} contains control characters")
        if self.check is not None:
            self.check(value)
        return value


class Int(fields.Field):
    """A JSON integer: not a bool, not a float (6.5 or 7.0), not a string ("7")."""

    def __init__(
        self,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int = INT_MAX,
        range_code: str = "E_RANGE",
        what: str = "value",
    ) -> None:
        super().__init__(
            required=required, allow_none=not required, error_messages=_messages(required, what)
        )
        self.minimum, self.maximum, self.range_code, self.what = minimum, maximum, range_code, what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise err("E_TYPE", f"{self.what} must be an integer, got {json_type(value)} {value!r:.40}")
        low, high = self.minimum, self.maximum
        if low is not None and high != INT_MAX and not low <= value <= high:
            raise err(self.range_code, f"{self.what} must be {low}-{high}, got {value}")
        if low is not None and value < low:
            raise err(self.range_code, f"{self.what} must be >= {low}, got {value}")
        if value > high:
            raise err("E_RANGE", f"{self.what} must be <= {high}, got {value}")
        return value


class Number(fields.Field):
    """A finite JSON number (int or float, never bool or string) within [minimum, maximum]."""

    def __init__(
        self, *, minimum: float, maximum: float, required: bool = True, what: str = "value"
    ) -> None:
        super().__init__(
            required=required, allow_none=not required, error_messages=_messages(required, what)
        )
        self.minimum, self.maximum, self.what = minimum, maximum, what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise err("E_TYPE", f"{self.what} must be a number, got {json_type(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise err("E_TYPE", f"{self.what} must be a finite number, got {value}")
        if not self.minimum <= value <= self.maximum:
            raise err("E_RANGE", f"{self.what} must be {self.minimum:g}-{self.maximum:g}, got {value}")
        return value


class Bool(fields.Field):
    """A JSON boolean only (never 0/1 or "true")."""

    def __init__(self, *, what: str = "value") -> None:
        super().__init__(allow_none=True, error_messages=_messages(False, what))
        self.what = what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise err("E_TYPE", f"{self.what} must be true or false, got {json_type(value)}")
        return value


class Code(Text):
    """A code from a closed list (E_CODE_UNKNOWN names the allowed values)."""

    def __init__(self, allowed: Collection[str], *, required: bool = True, what: str = "code") -> None:
        self.allowed = tuple(allowed)
        super().__init__(max_len=64, required=required, check=self._in_list, what=what)

    def _in_list(self, value: str) -> None:
        if value not in self.allowed:
            expected = "|".join(self.allowed)
            raise err("E_CODE_UNKNOWN", f"unknown {self.what} {value!r:.70}; expected {expected}")


class Array(fields.List):
    """A JSON array (list or tuple) with at most ``max_items`` entries; ``min_items`` ⇒ E_REQUIRED."""

    def __init__(
        self,
        inner: fields.Field,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int = 100,
        what: str = "array",
    ) -> None:
        messages = _messages(required, what) | {"invalid": f"E_TYPE|{what} must be an array"}
        super().__init__(
            inner, required=required, allow_none=not required, error_messages=messages
        )
        self.min_items, self.max_items, self.what = min_items, max_items, what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise err("E_TYPE", f"{self.what} must be an array, got {json_type(value)}")
        if len(value) < self.min_items:
            raise err("E_REQUIRED", f"{self.what} needs at least {self.min_items} entry")
        if len(value) > self.max_items:
            raise err("E_FORMAT", f"{self.what} has {len(value)} entries; at most {self.max_items}")
        return list(super()._deserialize(value, attr, data, **kwargs))


def json_type(value: Any) -> str:
    """The JSON type name of a Python value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- single-value checks (raise ValidationError with a coded message) -------------------------


def pattern(regex: re.Pattern[str], what: str) -> Callable[[str], None]:
    """A check that the whole value matches ``regex`` (E_FORMAT)."""

    def check(value: str) -> None:
        if not regex.fullmatch(value):
            raise err("E_FORMAT", f"{what} {value!r:.80} does not match {regex.pattern}")

    return check


def check_datetime(value: str) -> None:
    """Decision 20 date-time with an offset, and a real calendar instant."""
    if not DATETIME_RE.fullmatch(value):
        raise err("E_FORMAT", f"date-time {value!r:.80} must be RFC 3339 with a UTC offset")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise err("E_FORMAT", f"date-time {value!r} is not a real instant: {exc}") from exc


def check_date(value: str) -> None:
    """A full date YYYY-MM-DD that exists."""
    if not DATE_RE.fullmatch(value):
        raise err("E_FORMAT", f"date {value!r:.80} must be YYYY-MM-DD")
    _real_date(value)


def check_partial_date(value: str) -> None:
    """YYYY, YYYY-MM or YYYY-MM-DD (FHIR partial dateTime)."""
    if not PARTIAL_DATE_RE.fullmatch(value):
        raise err("E_FORMAT", f"date {value!r:.80} must be YYYY, YYYY-MM or YYYY-MM-DD")
    _real_date((value + "-01-01")[:10] if len(value) < 10 else value)


def _real_date(value: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise err("E_FORMAT", f"date {value!r} does not exist: {exc}") from exc


def npi_is_valid(npi: str) -> bool:
    """10 digits and the Luhn check over ``80840`` + the NPI (US Core us-core-16/17)."""
    if not NPI_RE.fullmatch(npi):
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        digit = int(ch)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_npi(value: str) -> None:
    """E_NPI_INVALID unless a 10-digit NPI with a good Luhn check digit."""
    if not npi_is_valid(value):
        raise err("E_NPI_INVALID", f"NPI {value!r:.40} is not 10 digits with a valid check digit")


def check_icd10cm(value: str) -> None:
    """Decision 19 format, then validity and billability in simple-icd-10-cm's FY tabular."""
    if not ICD_RE.fullmatch(value):
        raise err("E_FORMAT", f"ICD-10-CM {value!r:.40} must be upper-case and dotted (e.g. M77.11)")
    if not icd.is_valid_item(value):
        raise err("E_ICD_INVALID", f"{value} is not an ICD-10-CM code of the configured FY")
    if not icd.is_leaf(value):
        raise err("E_ICD_NOT_BILLABLE", f"{value} is a category, not a billable code")


def check_usps(value: str) -> None:
    """A USPS two-letter state code (E_CODE_UNKNOWN)."""
    if value not in USPS_STATES:
        raise err("E_CODE_UNKNOWN", f"unknown USPS state code {value!r:.20}")


def one_of(allowed: Collection[str], what: str) -> Callable[[str], None]:
    """A membership check (E_CODE_UNKNOWN)."""

    def check(value: str) -> None:
        if value not in allowed:
            raise err("E_CODE_UNKNOWN", f"{what} {value!r:.40} is not one of {', '.join(allowed)}")

    return check


__all__ = [
    "CATALOGUE",
    "Array",
    "Bool",
    "Code",
    "Int",
    "Number",
    "Text",
    "check_date",
    "check_datetime",
    "check_icd10cm",
    "check_npi",
    "check_partial_date",
    "err",
    "make_issue",
    "npi_is_valid",
    "pattern",
]
