"""Generated narratives (mapping/narrative.py): valid FHIR XHTML, escaped, emitted by to_fhir."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.mapping import from_fhir, to_fhir
from fhir_iastm.mapping.narrative import XHTML, _html, narrative, with_narratives
from tests.mapping.support import good

ALLOWED = {f"{{{XHTML}}}{name}" for name in ("div", "ul", "li", "b")}
CASES = ("good-03-plantar-fasciitis-hawkgrips-bruising",
         "good-06-post-tka-tecnica-gavilan-rom-lefs", "good-08-cancelled-post-tha")


@pytest.mark.parametrize("case", CASES)
def test_every_mapped_resource_has_a_valid_generated_narrative(case: str) -> None:
    bundle = to_fhir(good(case))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        text = resource["text"]
        assert text["status"] == "generated"
        root = ET.fromstring(text["div"])  # well-formed XML
        assert root.tag == f"{{{XHTML}}}div"
        assert {e.tag for e in root.iter()} <= ALLOWED
        assert "".join(root.itertext()).strip()  # txt-2: not empty
        assert list(resource)[:2] == ["resourceType", "meta"]
        assert list(resource)[2] == "text"


def test_narrative_says_what_the_data_says() -> None:
    bundle = to_fhir(good("good-03-plantar-fasciitis-hawkgrips-bruising"))
    by_type = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], entry["resource"]["text"]["div"])
    assert "<li><b>ICD-10-CM</b>: M72.2</li>" in by_type["Condition"]
    assert "<li><b>Value</b>: 7 score</li>" in by_type["Observation"]
    assert "<b>Performed</b>: 2025-04-02T08:15:00-05:00 to 2025-04-02T08:45:00-05:00" in \
        by_type["Procedure"]


def test_text_is_escaped() -> None:
    div = narrative({"resourceType": "Organization", "name": "A & B <Clinic>"})["div"]
    assert "A &amp; B &lt;Clinic&gt;" in div
    ET.fromstring(div)


def test_round_trip_ignores_the_narrative_and_keeps_an_existing_one() -> None:
    record = good("good-06-post-tka-tecnica-gavilan-rom-lefs")
    bundle = to_fhir(record)
    assert from_fhir(bundle) == from_fhir(with_narratives(bundle))
    theirs = {"resourceType": "Patient", "text": {"status": "additional", "div": "<div/>"}}
    kept = with_narratives({"entry": [{"resource": theirs}]})
    assert kept["entry"][0]["resource"]["text"]["status"] == "additional"


@given(st.text())
def test_text_is_escaped_as_html_escape_escapes_it(text: str) -> None:
    """``_html`` skips ``html.escape`` only for text it would not change."""
    assert _html(text) == escape(text)
