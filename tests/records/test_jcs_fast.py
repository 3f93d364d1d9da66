"""``records.load.jcs_fast``: whenever it answers, its bytes are the ``rfc8785`` library's, so a
record's hash (docs/decisions.md#d7) does not depend on which of the two wrote it."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.records import load_record
from fhir_iastm.records.load import (
    LEGACY_NON_CONTENT_KEYS,
    NON_CONTENT_KEYS,
    _content,
    _record_jcs,
    canonical_json,
    jcs_fast,
)
from fhir_iastm.records.model import to_dict
from tests.strategies import valid_records

ROOT = Path(__file__).resolve().parents[2]
_TEXT = st.text(st.characters(codec=None, categories=None, exclude_categories=()), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True, allow_infinity=True) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _library(value: Any) -> bytes | None:
    try:
        return rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 — values JCS refuses (NaN, 2^60, lone surrogates)
        return None


@settings(max_examples=1500)
@given(_JSON)
def test_fast_bytes_are_the_libraries(value: Any) -> None:
    fast = jcs_fast(value)
    if fast is not None:
        assert fast == _library(value)


def test_tricky_values() -> None:
    cases: list[Any] = [
        {"b": "\u2028\u007f\x00\x1f\b\t\n\f\r\"\\/é😀", "a": [0.1, 123.456, -2.5e-3, 1e15 + 0.5]},
        {"n": 2**53 - 1, "m": -(2**53) + 1, "t": True, "z": None},
    ]
    for value in cases:
        assert jcs_fast(value) == rfc8785.dumps(value)
    for refused in (1.0, -0.0, 1e-5, 1e16 + 2.0, 2**53, {"é": 1}, "\ud800", float("nan")):
        assert jcs_fast(refused) is None


def test_generated_records_take_the_fast_path_and_hash_the_same() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gen_sessions import records

    fast = 0
    for raw in records(60, "JCS"):
        record = load_record(raw)
        content = _content({k: v for k, v in to_dict(record).items()
                            if k not in NON_CONTENT_KEYS})
        fast += jcs_fast(content) is not None
        assert canonical_json(record) == rfc8785.dumps(content)
    assert fast == 60
    assert json.loads(canonical_json(record))["session_id"] == "BS-JCS-0000059"


def _general(record: Any, left_out: tuple[str, ...]) -> bytes | type[Exception]:
    """``canonical_json`` of a record the general way (``to_dict``, ``_content``, JCS), or the
    class of the exception it raises."""
    content = _content({k: v for k, v in to_dict(record).items() if k not in left_out})
    try:
        return jcs_fast(content) or rfc8785.dumps(content)
    except Exception as exc:  # noqa: BLE001 — values JCS refuses (2^53, lone surrogates)
        return type(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.sampled_from([None, 90.0, 12.5, 1e-6, 2**53, "\ud800"]))
def test_the_one_walk_content_of_a_record_is_the_general_ones(
    data: dict[str, Any], odd: Any
) -> None:
    """``_record_jcs`` (no ``to_dict``) gives the general path's bytes, legacy or not, or None
    for values the general path hands to the library (integral floats, 2^53, lone surrogates)."""
    record = load_record(data)
    if isinstance(odd, str):  # values a record cannot carry, set directly on the dataclass
        record = dataclasses.replace(
            record, session=dataclasses.replace(record.session, plan_of_care_id=odd))
    elif odd is not None:
        record = dataclasses.replace(
            record, rom=tuple(dataclasses.replace(r, degrees=odd) for r in record.rom))
    for left_out in (NON_CONTENT_KEYS, LEGACY_NON_CONTENT_KEYS):
        general = _general(record, left_out)
        fast = _record_jcs(record, left_out)
        if fast is not None:
            assert fast == general
        try:
            found: bytes | type[Exception] = canonical_json(
                record, legacy=left_out == LEGACY_NON_CONTENT_KEYS)
        except Exception as exc:  # noqa: BLE001
            found = type(exc)
        assert found == general
