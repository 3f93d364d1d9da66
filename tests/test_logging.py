"""The JSON log line: what ``json.dumps(..., separators=(",", ":"))`` wrote, field for field."""

from __future__ import annotations

import json
import logging
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.logging import JsonFormatter

_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


@given(st.text(max_size=20), st.dictionaries(st.text(max_size=8), _values, max_size=6),
       st.booleans())
def test_a_line_is_the_record_dumped_compactly(message: str, fields: dict[str, Any],
                                               failed: bool) -> None:
    record = logging.LogRecord("fhir_iastm.access", logging.INFO, __file__, 1, message, None,
                               (ValueError, ValueError("x"), None) if failed else None)
    record.fields = fields
    body: dict[str, Any] = {"ts": round(record.created, 3), "level": "info",
                            "logger": "fhir_iastm.access", "msg": message}
    body.update(fields)
    if failed:
        body["exc_type"] = "ValueError"
    assert JsonFormatter().format(record) == json.dumps(body, separators=(",", ":"))
