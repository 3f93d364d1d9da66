"""Code lists and single-value checks of the internal record
(docs/validation.md#record-validation, docs/codes.md#icd-10-cm).

ICD-10-CM validity and billability come from a table derived from the pinned simple-icd-10-cm
package. Each check raises a ValidationError whose message starts with our stable code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from fhir_iastm.records.fields import err
from fhir_iastm.records.icd10cm import icd10cm_table
from fhir_iastm.records.vocab import SCHEMA_VERSIONS, VERIFIED_CONDITION_SNOMED

#: docs/decisions.md#d16: clinic_id, condition_id, mrn.
IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: docs/validation.md#record-validation: session_id (no underscore, unlike docs/decisions.md#d16's
#: identifiers).
SESSION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
#: docs/decisions.md#d20: RFC 3339 date-time with an explicit offset.
DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-](0\d|1[0-3]):[0-5]\d|[+-]14:00)"
)
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
PARTIAL_DATE_RE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
#: docs/decisions.md#d19: upper-case, dotted ICD-10-CM.
ICD_RE = re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?")
NPI_RE = re.compile(r"\d{10}")
CPT_RE = re.compile(r"\d{4}[0-9FTU]")
POSTAL_RE = re.compile(r"\d{5}(-\d{4})?")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: USPS state, district, territory and military codes.
_USPS = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ"
    " NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR VI UM FM MH PW"
    " AA AE AP"
)
USPS_STATE_CODES = tuple(_USPS.split())
USPS_STATES = frozenset(USPS_STATE_CODES)


@dataclass(frozen=True)
class PatternCheck:
    """A check that the whole value matches ``regex`` (E_FORMAT); ``echo`` quotes the value.

    Patient values (MRN, e-mail, postal code) and dates are never echoed: messages may be logged.
    The record's JSON Schema publishes ``regex`` as the field's ``pattern``.
    """

    regex: re.Pattern[str]
    what: str
    echo: bool = False

    def __call__(self, value: str) -> None:
        if not self.regex.fullmatch(value):
            shown = f" {value!r:.80}" if self.echo else ""
            raise err("E_FORMAT", f"{self.what}{shown} does not match {self.regex.pattern}")


def pattern(regex: re.Pattern[str], what: str, *, echo: bool = False) -> PatternCheck:
    """A :class:`PatternCheck` of ``regex`` for the field ``what``."""
    return PatternCheck(regex, what, echo)


def check_datetime(value: str) -> None:
    """docs/decisions.md#d20 date-time with an offset, and a real calendar instant."""
    if not DATETIME_RE.fullmatch(value):
        raise err("E_FORMAT", "date-time must be RFC 3339 with seconds and a UTC offset")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise err("E_FORMAT", f"date-time is not a real instant: {exc}") from exc


def check_date(value: str) -> None:
    """A full date YYYY-MM-DD that exists."""
    if not DATE_RE.fullmatch(value):
        raise err("E_FORMAT", "date must be YYYY-MM-DD")
    _real_date(value)


def check_partial_date(value: str) -> None:
    """YYYY, YYYY-MM or YYYY-MM-DD (FHIR partial dateTime)."""
    if not PARTIAL_DATE_RE.fullmatch(value):
        raise err("E_FORMAT", "date must be YYYY, YYYY-MM or YYYY-MM-DD")
    _real_date((value + "-01-01")[:10] if len(value) < 10 else value)


def _real_date(value: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise err("E_FORMAT", f"date does not exist: {exc}") from exc


@lru_cache(maxsize=4096)
def npi_is_valid(npi: str) -> bool:
    """10 digits and the Luhn check over ``80840`` + the NPI (US Core us-core-16/17). Cached:
    a clinic's and its therapists' NPIs recur in every record (docs/performance.md#prepare)."""
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
    """docs/decisions.md#d19 format, then validity and billability in simple-icd-10-cm's FY
    tabular."""
    if not ICD_RE.fullmatch(value):
        raise err(
            "E_FORMAT", f"ICD-10-CM {value!r:.40} must be upper-case and dotted (e.g. M77.11)"
        )
    billable = icd10cm_table().get(value)
    if billable is None:
        raise err("E_ICD_INVALID", f"{value} is not an ICD-10-CM code of the configured FY")
    if not billable:
        raise err("E_ICD_NOT_BILLABLE", f"{value} is a category, not a billable code")


def check_usps(value: str) -> None:
    """A USPS two-letter state code (E_CODE_UNKNOWN)."""
    if value not in USPS_STATES:
        raise err("E_CODE_UNKNOWN", f"unknown USPS state code {value!r:.20}")


#: Length bounds (E_FORMAT): notes ≤ 4000; identifier system/value ≤ 200 (docs/decisions.md#d16).
NOTES_MAX = 4000
TEXT_MAX = 1000
SHORT_MAX = 200


def check_snomed(value: str) -> None:
    """One of the verified condition concepts of docs/decisions.md#d19 (E_CODE_UNKNOWN)."""
    if value not in VERIFIED_CONDITION_SNOMED:
        raise err(
            "E_CODE_UNKNOWN",
            f"SNOMED {value!r:.40} is not a verified condition concept; expected "
            + "|".join(VERIFIED_CONDITION_SNOMED),
        )


def check_schema_version(value: str) -> None:
    """schema_version 1.0 or 2.0 (E_SCHEMA_VERSION)."""
    if value not in SCHEMA_VERSIONS:
        supported = " or ".join(SCHEMA_VERSIONS)
        raise err(
            "E_SCHEMA_VERSION", f"schema_version {value!r:.20} is not supported; use {supported}"
        )


#: Score bounds per instrument (docs/validation.md#record-validation); LEFS also must be an integer.
SCORE_RANGES = {
    "LEFS": (0, 80), "QuickDASH": (0, 100), "PSFS": (0, 10), "PRTEE": (0, 100),
    "FAAM-ADL": (0, 100), "FAAM-Sports": (0, 100), "VISA-P": (0, 100), "KOOS-JR": (0, 100),
    "HOOS-JR": (0, 100),
}  # fmt: skip
#: Instruments whose score is a whole number.
INTEGER_SCORES = ("LEFS", "VISA-P")


__all__ = [  # noqa: RUF022 - grouped: patterns, code lists, checks
    "icd10cm_table",
    "SCORE_RANGES",
    "check_schema_version",
    "check_snomed",
    "DATETIME_RE",
    "ICD_RE",
    "IDENTIFIER_RE",
    "SESSION_ID_RE",
    "USPS_STATES",
    "USPS_STATE_CODES",
    "PatternCheck",
    "check_date",
    "check_datetime",
    "check_icd10cm",
    "check_npi",
    "check_partial_date",
    "check_usps",
    "npi_is_valid",
    "pattern",
]
