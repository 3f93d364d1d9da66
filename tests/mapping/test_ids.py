"""mapping.ids: the conditional-URL value written without ``quote`` for plain values is the one
``quote(fhir_escape(value), safe="")`` writes."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.mapping.ids import _quoted_value, fhir_escape, identifier_query

_ALPHABET = st.sampled_from("aZ09_.~-/|,$\\ %&?#+=:é\u00a0😀\x00")


@given(st.text(_ALPHABET) | st.text())
def test_a_value_is_quoted_as_quote_of_its_fhir_escape(value: str) -> None:
    assert _quoted_value(value) == quote(fhir_escape(value), safe="")


def test_a_session_resource_value() -> None:
    assert identifier_query("http://x/sid/a", "BS-1.2_x~/obs/rom/knee-flexion") == (
        "identifier=http%3A%2F%2Fx%2Fsid%2Fa|BS-1.2_x~%2Fobs%2From%2Fknee-flexion")
