"""Strict marshmallow fields and the error catalogue of the internal record
(docs/validation.md#record-errors).

Every error message starts with our stable code and a ``|``: ``"E_RANGE|must be 0-10, got 11"``.
``records`` splits it back into ``Issue.details`` and ``Issue.diagnostics``. Each field reports at
most one error (checks short-circuit), so one defect gives one issue.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from typing import Any

from marshmallow import ValidationError, fields

from fhir_iastm.errors import Issue

#: Control characters FHIR strings should not carry (tab, CR and LF are allowed).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: FHIR integer maximum (positiveInt, integer).
INT_MAX = 2_147_483_647

#: Our stable codes -> (FHIR R4 IssueType, severity). docs/validation.md#record-errors plus
#: docs/decisions.md#d15, #d17, #d19;
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
    "E_SCORE_MISMATCH": ("invariant", "error"),
    "E_CONTRAINDICATION": ("business-rule", "error"),
    "E_CONSENT_MISSING": ("business-rule", "error"),
    "W_PLAN_EXCEEDED": ("business-rule", "warning"),
    "W_RECORDED_BEFORE_START": ("business-rule", "warning"),
    "W_LONG_SESSION": ("business-rule", "warning"),
    "W_IDEMPOTENT_REPEAT": ("informational", "information"),
}


def make_issue(code: str, path: str, message: str) -> Issue:
    """An Issue for one of our codes; ``path`` "" (the whole record) gives no expression."""
    issue_type, severity = CATALOGUE[code]
    return Issue(severity, issue_type, path or None, message, code)


def err(code: str, message: str) -> ValidationError:
    """A ValidationError whose message carries our stable code."""
    return ValidationError(f"{code}|{message}")


def _messages(required: bool, what: str) -> dict[str, Any]:
    need = "E_REQUIRED|" if required else "E_TYPE|"
    return {
        "required": f"E_REQUIRED|{what} is required",
        "null": f"{need}{what} must not be null",
        "validator_failed": "E_FORMAT|invalid value",
    }


class Text(fields.Field):
    """A JSON string (never bytes or a number), non-blank, length-bounded, optionally checked."""

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
            raise err("E_TYPE", f"{self.what} must be a string, got {describe(value)}")
        if not value.strip():
            code = "E_REQUIRED" if self.required else "E_FORMAT"
            raise err(code, f"{self.what} must not be empty (omit an optional field instead)")
        if len(value) > self.max_len:
            raise err("E_FORMAT", f"{self.what} is {len(value)} characters; at most {self.max_len}")
        # every control character is unprintable: most values skip the search
        if not value.isprintable() and _CONTROL_RE.search(value):
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
            raise err("E_TYPE", f"{self.what} must be an integer, got {describe(value)}")
        low, high = self.minimum, self.maximum
        if low is not None and high != INT_MAX and not low <= value <= high:
            raise err(self.range_code, f"{self.what} must be {low}-{high}, got {show(value)}")
        if low is not None and value < low:
            raise err(self.range_code, f"{self.what} must be >= {low}, got {show(value)}")
        if value > high:
            raise err("E_RANGE", f"{self.what} must be <= {high}, got {show(value)}")
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
            raise err("E_TYPE", f"{self.what} must be a number, got {describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise err("E_TYPE", f"{self.what} must be a finite number, got {value}")
        if not self.minimum <= value <= self.maximum:
            raise err(
                "E_RANGE",
                f"{self.what} must be {self.minimum:g}-{self.maximum:g}, got {show(value)}",
            )
        return value


class Bool(fields.Field):
    """A JSON boolean only (never 0/1 or "true")."""

    def __init__(self, *, required: bool = False, what: str = "value") -> None:
        super().__init__(
            required=required, allow_none=not required, error_messages=_messages(required, what)
        )
        self.what = what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise err("E_TYPE", f"{self.what} must be true or false, got {describe(value)}")
        return value


class Code(Text):
    """A code from a closed list (E_CODE_UNKNOWN names the allowed values)."""

    def __init__(
        self, allowed: Collection[str], *, required: bool = True, what: str = "code"
    ) -> None:
        self.allowed = tuple(allowed)
        super().__init__(max_len=64, required=required, check=self._in_list, what=what)

    def _in_list(self, value: str) -> None:
        if value not in self.allowed:
            expected = "|".join(self.allowed)
            raise err("E_CODE_UNKNOWN", f"unknown {self.what} {value!r:.70}; expected {expected}")


class Array(fields.List):
    """A JSON array (list or tuple) of at most ``max_items``; under ``min_items``: E_REQUIRED."""

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
        super().__init__(inner, required=required, allow_none=not required, error_messages=messages)
        self.min_items, self.max_items, self.what = min_items, max_items, what

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise err("E_TYPE", f"{self.what} must be an array, got {json_type(value)}")
        if len(value) < self.min_items:
            raise err("E_REQUIRED", f"{self.what} needs at least {self.min_items} entry")
        if len(value) > self.max_items:
            raise err("E_FORMAT", f"{self.what} has {len(value)} entries; at most {self.max_items}")
        return list(super()._deserialize(value, attr, data, **kwargs))


def show(value: Any) -> str:
    """A short, safe rendering of a submitted scalar for messages (never a huge repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, float):
        return "null" if value is None else repr(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, str):
        return repr(value[:40])
    return json_type(value)


def describe(value: Any) -> str:
    """JSON type plus, for a scalar, its short value: ``string '7'``, ``number 6.5``, ``array``."""
    kind = json_type(value)
    return (
        kind
        if kind in ("array", "object", "null") or kind == type(value).__name__
        else (f"{kind} {show(value)}")
    )


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


__all__ = [
    "CATALOGUE",
    "INT_MAX",
    "Array",
    "Bool",
    "Code",
    "Int",
    "Number",
    "Text",
    "err",
    "json_type",
    "describe",
    "make_issue",
    "show",
]
