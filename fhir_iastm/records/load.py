"""The validated loading of an internal IASTM session record
(docs/validation.md#record-validation, docs/decisions.md#d14 to #d22).

``load_record`` checks every field (``records.schemas``), then every cross-field rule
(``records.cross_field``),
and reports *all* errors at once as ``Issue``s whose ``expression`` is a FHIRPath-style path into
the record (``treatment_sites[0].laterality``; ``None`` = the record as a whole) and whose
``details`` is the stable code. Values are kept exactly as sent.

Error catalogue (code, FHIR IssueType, HTTP, when):

* ``E_SCHEMA_VERSION`` not-supported 422 — ``schema_version`` is not ``"1.0"`` or ``"2.0"``, or
  a 1.0 record carries a 2.0 field.
* ``E_REQUIRED`` required 422 — missing, null, blank or empty array; also the conditional
  requirements (status_reason, session.end, pain.pre, technique.text, clinical_status).
* ``E_TYPE`` value 422 — wrong JSON type (pain ``"7"``, ``6.5``, ``true``); record not an object.
* ``E_FORMAT`` value 422 — patterns, dates, date-times, lengths, integers >= 1, array sizes.
* ``E_RANGE`` value 422 — pain 0–10, ROM −30…180, LEFS/QuickDASH/PSFS, FHIR integer maximum.
* ``E_UNKNOWN_FIELD`` structure 422 — a field that is not in the contract (``unknown = RAISE``).
* ``E_CODE_UNKNOWN`` code-invalid 422 — value outside its code list (allowed values named).
* ``E_CODE_MISMATCH`` code-invalid 422 — SNOMED/ICD pair not in ``condition_snomed_by_icd_prefix``.
* ``E_ICD_INVALID`` / ``E_ICD_NOT_BILLABLE`` code-invalid 422 — unknown code / category.
* ``E_NPI_INVALID`` value 422 — not 10 digits, or the Luhn check (prefix 80840) fails.
* ``E_PERIOD_ORDER`` invariant 422 — ``session.end`` <= ``session.start`` (offset-aware).
* ``E_DURATION_MISMATCH`` invariant 422 — ``duration_min`` off end − start by more than 1 min.
* ``E_LATERALITY_CONFLICT`` invariant 422 — ICD side character vs laterality
  (docs/decisions.md#d18), or a
  side with no treatment site on it.
* ``E_MULTIPLE_PRIMARY`` invariant 422 — more than one ``is_primary: true``.
* ``E_DUPLICATE_KEY`` duplicate 422 — repeated condition_id, ICD code, (site, laterality), ROM
  key, instrument or adjunct type (docs/decisions.md#d17).
* ``E_REF`` value 422 — ``site_index`` outside ``treatment_sites``.
* ``E_STATUS_CONFLICT`` business-rule 422 — docs/decisions.md#d21; an entered-in-error condition
  with a
  clinical_status (R4 con-5).
* ``E_DUPLICATE_SESSION`` duplicate 409 — batch: same session_id and version, other content.
* ``E_STALE_VERSION`` conflict 409 — batch: same session_id with a lower record_version.
* ``E_SCORE_MISMATCH`` invariant 422 — a PSFS score that is not the mean of its items (± 0.05).
* ``E_CONTRAINDICATION`` business-rule 422 — a completed session with an absolute
  contraindication in ``screening.findings`` and no ``screening.override_reason``.
* ``E_CONSENT_MISSING`` business-rule 422 — a completed session whose screening says no consent.
* ``W_PLAN_EXCEEDED`` business-rule (warning) — ``session_number`` > ``planned_sessions``.
* ``W_RECORDED_BEFORE_START`` business-rule (warning) — a completed session recorded before it
  started.
* ``W_LONG_SESSION`` business-rule (warning) — a session over ``LONG_SESSION_HOURS`` (3 h).
* ``W_IDEMPOTENT_REPEAT`` informational (information) 200 — batch: identical record repeated.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import rfc8785
from marshmallow import ValidationError

from fhir_iastm.errors import InvalidRecordError, Issue, has_errors
from fhir_iastm.jsonfast import dumps_sorted
from fhir_iastm.records import model
from fhir_iastm.records.cross_field import cross_field_issues
from fhir_iastm.records.fastload import fast_loader
from fhir_iastm.records.fields import CATALOGUE, json_type, make_issue
from fhir_iastm.records.schemas import RECORD_SCHEMA

#: Top-level keys that do not count as content (docs/decisions.md#d15).
NON_CONTENT_KEYS = ("last_modified",)
#: ... and before storage migration 0009, which put ``billing`` into the content
#: (docs/decisions.md#hash-with-billing); only that migration computes the old hash.
LEGACY_NON_CONTENT_KEYS = ("last_modified", "billing")
CONFLICT_CODES = frozenset({"E_DUPLICATE_SESSION", "E_STALE_VERSION", "E_AMBIGUOUS_MATCH"})
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: ``RECORD_SCHEMA.load`` for the data it is sure of, else None (``records.fastload``).
_FAST_LOAD = fast_loader(RECORD_SCHEMA)


def _step(path: str, key: object) -> str:
    """Extend a FHIRPath-style path by an object key or an array index."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    name = str(key)
    if not _NAME_RE.fullmatch(name):
        name = "`" + name[:64].replace("\\", "\\\\").replace("`", "\\`") + "`"
    return f"{path}.{name}" if path else name


def _flatten(messages: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """marshmallow's nested message dict -> (path, coded message) pairs."""
    if isinstance(messages, Mapping):
        for key, sub in messages.items():
            yield from _flatten(sub, path if key == "_schema" else _step(path, key))
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from _flatten(message, path)
    else:
        yield path, str(messages)


def _field_issues(messages: Any) -> list[Issue]:
    issues = []
    for path, text in _flatten(messages):
        code, sep, message = text.partition("|")
        if not sep or code not in CATALOGUE:
            code, message = "E_FORMAT", text
        if code == "E_UNKNOWN_FIELD":
            message = f"unknown field '{path}': {message}"
        issues.append(make_issue(code, path, message))
    return issues


def check_record(data: object) -> tuple[model.SessionRecord | None, list[Issue]]:
    """Validate one record: (record or None, all errors and warnings). Never raises for bad data."""
    if not isinstance(data, Mapping):
        message = f"the record must be a JSON object, got {json_type(data)}"
        return None, [make_issue("E_TYPE", "", message)]
    record: model.SessionRecord | None = _FAST_LOAD(data)
    issues: list[Issue] = []
    if record is None:  # marshmallow decides, and names every error
        try:
            record = RECORD_SCHEMA.load(data)
        except ValidationError as exc:
            issues = _field_issues(exc.messages)
    bad = {issue.expression or "" for issue in issues}
    issues += cross_field_issues(data, bad)
    return (None if has_errors(issues) else record), issues


def load_record(data: object) -> model.SessionRecord:
    """Validate and load one record; raises InvalidRecordError carrying every error found."""
    record, issues = check_record(data)
    if record is None:
        errors = [issue for issue in issues if issue.is_error]
        summary = "; ".join(f"{i.details} at {i.expression or 'record'}" for i in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidRecordError(f"invalid session record: {summary}{more}", errors)
    return record


def _absent(key: str, item: Any) -> bool:
    """The content rule: a null, an empty array and ``is_primary: false`` count as absent."""
    return item is None or item == [] or item == () or (key == "is_primary" and item is False)


def _content(value: Any) -> Any:
    """JSON content for hashing: what ``_absent`` names left out."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = _content(item)
            if _absent(key, item):
                continue
            out[key] = item
        return out
    if isinstance(value, list | tuple):
        return [_content(item) for item in value]
    return value


def canonical_json(
    record_or_dict: model.SessionRecord | Mapping[str, Any], *, legacy: bool = False
) -> bytes:
    """RFC 8785 (JCS) bytes of the record's content (docs/decisions.md#d7, #d15).

    ``last_modified`` is left out (``legacy``: ``billing`` too, the scheme before
    docs/decisions.md#hash-with-billing); so are nulls and empty arrays, and
    ``is_primary: false`` counts as absent (the canonical form of docs/decisions.md#round-trip).
    Key order never matters; array order does (``site_index`` points into ``treatment_sites``).
    """
    left_out = LEGACY_NON_CONTENT_KEYS if legacy else NON_CONTENT_KEYS
    data = record_or_dict
    if isinstance(data, model.SessionRecord):
        fast = _record_jcs(data, left_out)
        if fast is not None:
            return fast
        data = model.to_dict(data)
    content = _content({k: v for k, v in data.items() if k not in left_out})
    return jcs_fast(content) or rfc8785.dumps(content)


class _NotPlainError(Exception):
    """A value ``jcs_fast`` would refuse (the general path then decides)."""


@functools.cache
def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _record_content(value: Any) -> Any:
    """``_content(to_dict(value))`` in one walk of a record's dataclass tree; raises
    :class:`_NotPlainError` on a value ``jcs_fast`` would refuse (see ``_plain``)."""
    if hasattr(value, "__dataclass_fields__"):
        out = {}
        for name in _field_names(value.__class__):
            item = getattr(value, name)
            if _absent(name, item):
                continue
            out[name] = _record_content(item)
        return out
    if type(value) is tuple:
        return [_record_content(item) for item in value]
    if type(value) is str or type(value) is bool or _plain(value):
        return value
    raise _NotPlainError


def _record_jcs(record: model.SessionRecord, left_out: tuple[str, ...]) -> bytes | None:
    """``jcs_fast`` of a record's content without building ``to_dict`` first, or None."""
    try:
        content = _record_content(record)
    except _NotPlainError:
        return None
    for key in left_out:
        content.pop(key, None)
    try:
        return dumps_sorted(content)
    except UnicodeEncodeError:  # a lone surrogate
        return None


#: Python's shortest float form is JCS's (ECMAScript's) in this range of magnitudes.
_SAME_FLOAT_FORM = (1e-4, 1e16)


def jcs_fast(value: Any) -> bytes | None:
    """The RFC 8785 bytes of ``value`` by ``json.dumps``, or None when they might differ.

    Both escape the same characters the same way (``\\b \\t \\n \\f \\r``, ``\\u00xx``
    lower case for the other controls, nothing else); they can differ only in numbers (an
    integral float: ``1.0`` vs ``1``; magnitudes outside ``_SAME_FLOAT_FORM``; integers past
    2^53, which JCS refuses), in key order (UTF-16 vs code points: non-ASCII keys) and on lone
    surrogates. Those values return None (the caller uses the ``rfc8785`` library)."""
    if not _plain(value):
        return None
    try:
        return dumps_sorted(value)
    except UnicodeEncodeError:  # a lone surrogate
        return None


def _plain(value: Any) -> bool:
    """Whether ``json.dumps`` writes ``value`` exactly as JCS does (see ``jcs_fast``)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) < 2**53
    if isinstance(value, float):
        return not value.is_integer() and _SAME_FLOAT_FORM[0] <= abs(value) < _SAME_FLOAT_FORM[1]
    return False


def record_hash(
    record: model.SessionRecord | Mapping[str, Any], *, legacy: bool = False
) -> str:
    """SHA-256 hex digest of ``canonical_json(record)`` (docs/decisions.md#d7:
    ``source-record-hash``; ``legacy``: the hash without ``billing`` that stores migrated by
    0009 held, docs/decisions.md#hash-with-billing)."""
    return hashlib.sha256(canonical_json(record, legacy=legacy)).hexdigest()


def _batch_issue(
    record: model.SessionRecord, seen: dict[str, tuple[model.SessionRecord, str]]
) -> Issue | None:
    """Compare with the last accepted record of the same session_id in the batch
    (docs/decisions.md#d15)."""
    previous = seen.get(record.session_id)
    digest = record_hash(record)
    if previous is None or record.record_version > previous[0].record_version:
        seen[record.session_id] = (record, digest)
        return None
    sid, version, earlier = record.session_id, record.record_version, previous[0].record_version
    if digest == previous[1]:
        message = f"identical to the earlier record {sid} v{version} in this batch; nothing to do"
        return make_issue("W_IDEMPOTENT_REPEAT", "session_id", message)
    if version == earlier:
        message = (
            f"session_id {sid} already used in this batch with different content and "
            f"record_version >= {version}"
        )
        return make_issue("E_DUPLICATE_SESSION", "session_id", message)
    message = f"record_version {version} of {sid} is older than v{earlier} earlier in this batch"
    return make_issue("E_STALE_VERSION", "record_version", message)


def check_batch(items: Sequence[object]) -> list[tuple[model.SessionRecord | None, list[Issue]]]:
    """``check_record`` for each item, then duplicate / stale / repeat checks across the batch."""
    seen: dict[str, tuple[model.SessionRecord, str]] = {}
    results: list[tuple[model.SessionRecord | None, list[Issue]]] = []
    for item in items:
        record, issues = check_record(item)
        if record is not None:
            issue = _batch_issue(record, seen)
            if issue is not None:
                issues = [*issues, issue]
                record = None if issue.is_error else record
        results.append((record, issues))
    return results


def http_status_for(issues: Iterable[Issue]) -> int:
    """409 for a session conflict, 422 for any other error, 200 when there is no error."""
    errors = [issue for issue in issues if issue.is_error]
    if any(issue.details in CONFLICT_CODES for issue in errors):
        return 409
    return 422 if errors else 200

