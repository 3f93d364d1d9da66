"""Native Python twins of the hot FHIRPath invariants (docs/performance.md#targets: "native
checks for the
hottest rules are fine when a test proves they agree with the FHIRPath text").

Each function takes the constraint's context (the resource for
root invariants, the element value for element invariants) and returns True/False, or None when
the input has a shape the twin does not model (then the FHIRPath is evaluated instead). An empty
FHIRPath result is a failure (docs/decisions.md#d3), so every "empty" path below returns False.
``tests/test_validation_native.py`` runs both on every good, generated and mutated resource.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE
from fhir_iastm.validation.laterality import LATERALITY_INVARIANTS, native_check
from fhir_iastm.validation.native_texts import EXPRESSIONS

#: The twins are written for the texts of the default base; under another base the profiles'
#: texts differ and the FHIRPath is evaluated instead (docs/canonical-base.md).
C = DEFAULT_CANONICAL_BASE
SD = f"{C}/StructureDefinition/"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LAT = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
LOC = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-body-location-qualifier"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

Native = Callable[[Any, str], "bool | None"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _has(obj: dict[str, Any], base: str) -> bool:
    """``base.exists()`` for a (choice) element: ``performed`` matches ``performedPeriod``."""
    if obj.get(base) not in (None, [], {}):
        return True
    size = len(base)
    return any(
        k.startswith(base) and k[size : size + 1].isupper() and v not in (None, [], {})
        for k, v in obj.items()
    )


def _value(ext: dict[str, Any]) -> Any:
    for key, val in ext.items():
        if key.startswith("value") and key[5:6].isupper():
            return val
    return None


def _exts(owner: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(owner, dict):
        return []
    return [e for e in _list(owner.get("extension")) if isinstance(e, dict) and e.get("url") == url]


def _codings(cc: Any) -> list[dict[str, Any]]:
    if not isinstance(cc, dict):
        return []
    return [c for c in _list(cc.get("coding")) if isinstance(c, dict)]


def _has_coding(cc: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(cc))


def _implies(premise: bool | None, conclusion: bool) -> bool:
    """FHIRPath ``implies``; ``premise`` None = empty (then only a true conclusion passes)."""
    return conclusion if premise is None or premise else True


def _status_is(res: dict[str, Any], *codes: str) -> bool | None:
    status = res.get("status")
    return None if status is None else status in codes


def _location_qualifiers_ok(res: Any, _type: str) -> bool:
    allowed = {"49370004", "255561001", "255551008"}
    return all(
        any(c.get("system") == SCT and str(c.get("code")) in allowed for c in _codings(_value(e)))
        for site in _list(res.get("bodySite"))
        for e in _exts(site, LOC)
    )


def _each_has_one(element: str, url: str) -> Native:
    def check(res: Any, _type: str) -> bool:
        return all(len(_exts(item, url)) == 1 for item in _list(res.get(element)))

    return check


def _plan_not_exceeded(res: Any, _type: str) -> bool | None:
    numbers = _exts(res, SD + "iastm-session-number")
    planned = _exts(res, SD + "iastm-planned-sessions")
    if not numbers or not planned:
        return True
    if len(numbers) != 1 or len(planned) != 1:
        return None  # FHIRPath comparison of collections: let fhirpathpy report it
    a, b = _value(numbers[0]), _value(planned[0])
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b)):
        return None
    return bool(a <= b)


def _pain_in_range(res: Any, _type: str) -> bool | None:
    if not _has_coding(res.get("code"), LOINC, "72514-3"):
        return True
    qty = res.get("valueQuantity")
    if not isinstance(qty, dict):
        return False if not _has(res, "value") else None
    value = qty.get("value")
    if qty.get("code") != "{score}" or value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return 0 <= value <= 10 and math.floor(value) == value


def _pain_timing(res: Any, _type: str) -> bool | None:
    if not _has_coding(res.get("code"), LOINC, "72514-3"):
        return True
    values = [_value(e) for e in _exts(res, SD + "iastm-measurement-timing")]
    if any(v is not None and not isinstance(v, str) for v in values):
        return None
    return sum(v in ("pre", "post") for v in values) == 1


def _rom_in_degrees(res: Any, _type: str) -> bool:
    rom = any(
        c.get("system") == f"{C}/CodeSystem/iastm-observation"
        and isinstance(c.get("code"), str)
        and c["code"].startswith("rom-")
        for c in _codings(res.get("code"))
    )
    qty = res.get("valueQuantity")
    return _implies(rom, isinstance(qty, dict) and qty.get("code") == "deg")


def _injury_seventh(res: Any, _type: str) -> bool | None:
    for coding in _codings(res.get("code")):
        code = coding.get("code")
        if coding.get("system") != ICD or code is None:
            continue
        if not isinstance(code, str):
            return None
        if code.startswith("S76.") and not re.search(r"^S76\.[0-9]{3}[ADS]$", code, re.DOTALL):
            return False
    return True


def _npi_luhn(identifier: Any, _type: str) -> bool | None:
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if not isinstance(value, str):
        return False if value is None else None
    head = value[:10]
    if len(head) < 10:
        return False
    if any(ch not in "0123456789" for ch in head):
        return None
    total = 24
    for i, ch in enumerate(head):
        digit = int(ch)
        total += (digit * 2 if digit < 5 else digit * 2 - 9) if i % 2 == 0 else digit
    return total % 10 == 0


def _npi_format(identifier: Any, _type: str) -> bool | None:
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if value is None:
        return False
    return None if not isinstance(value, str) else bool(re.search(r"^[0-9]{10}$", value, re.DOTALL))


def _name_or_absent(name: Any, _type: str) -> bool | None:
    if not isinstance(name, dict):
        return None
    return (_has(name, "family") or _has(name, "given")) != bool(_exts(name, DAR))


def _ucum(value: Any, type_name: str) -> bool:
    return (
        type_name != "Quantity"
        or not isinstance(value, dict)
        or value.get("system") in (None, "http://unitsofmeasure.org")
    )


def _effective_precision(value: Any, type_name: str) -> bool | None:
    if type_name != "dateTime":
        return True
    return None if not isinstance(value, str) else len(value) >= 10


def _entered_in_error(res: dict[str, Any]) -> bool:
    return _has_coding(res.get("verificationStatus"), VER, "entered-in-error")


BY_KEY: dict[str, Native] = {
    "us-core-7": lambda r, _t: _implies(
        _status_is(r, "completed", "in-progress"), _has(r, "performed")
    ),
    "iastm-proc-3": lambda r, _t: _implies(_status_is(r, "not-done"), _has(r, "statusReason")),
    "iastm-proc-7": lambda r, _t: _implies(
        _status_is(r, "completed"), _has(r, "reasonReference") or _has(r, "reasonCode")
    ),
    "iastm-proc-9": lambda r, _t: _implies(
        _status_is(r, "completed"), isinstance(r.get("performedPeriod"), dict)
    ),
    "iastm-proc-2": lambda r, _t: _implies(
        _has_coding(r.get("code"), f"{C}/CodeSystem/iastm-technique", "iastm"),
        len(_exts(r, SD + "iastm-technique")) == 1,
    ),
    "iastm-proc-4": _each_has_one("bodySite", LAT),
    "iastm-proc-5": lambda r, _t: (
        sum(
            isinstance(i, dict) and i.get("system") == f"{C}/sid/iastm-session"
            for i in _list(r.get("identifier"))
        )
        == 1
    ),
    "iastm-proc-6": _plan_not_exceeded,
    "iastm-proc-8": _each_has_one("complication", SD + "iastm-adverse-effect-severity"),
    "iastm-proc-10": _location_qualifiers_ok,
    "iastm-cond-4": _location_qualifiers_ok,
    "iastm-obs-5": _location_qualifiers_ok,
    "iastm-cond-1": lambda r, _t: sum(c.get("system") == ICD for c in _codings(r.get("code"))) == 1,
    **{key: native_check(key) for key in LATERALITY_INVARIANTS},
    "iastm-cond-3": _injury_seventh,
    "us-core-2": lambda r, _t: _implies(
        not _has(r, "component") and not _has(r, "hasMember"),
        _has(r, "dataAbsentReason") or _has(r, "value"),
    ),
    "us-core-1": _effective_precision,
    "us-core-3": _ucum,
    "us-core-6": _name_or_absent,
    "us-core-16": _npi_format,
    "us-core-17": _npi_luhn,
    "iastm-obs-1": _pain_in_range,
    "iastm-obs-2": _pain_timing,
    "iastm-obs-3": _rom_in_degrees,
    "iastm-obs-4": lambda r, _t: _has(r, "partOf"),
}

#: Core R4 invariants con-3, con-5, obs-6 (registered by their R4 text in ``r4inv``).
BASE_BY_KEY: dict[str, Native] = {
    "con-3": lambda r, _t: (
        _has(r, "clinicalStatus") or _entered_in_error(r) or not _has(r, "category")
    ),
    "con-5": lambda r, _t: not _entered_in_error(r) or not _has(r, "clinicalStatus"),
    "obs-6": lambda r, _t: not _has(r, "dataAbsentReason") or not _has(r, "value"),
}

#: whitespace-normalised FHIRPath text -> native twin
NATIVE_BY_TEXT: dict[str, Native] = {
    " ".join(EXPRESSIONS[key].split()): fn for key, fn in BY_KEY.items() if key in EXPRESSIONS
}


__all__ = ["BASE_BY_KEY", "BY_KEY", "NATIVE_BY_TEXT", "Native"]
