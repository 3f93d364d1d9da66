"""The R4 walk notes extensions, codings and references on its way (``check_r4(collect=True)``)
so that a well-formed resource is walked once less; whenever it returns them, they must equal
what the generic ``scan`` finds — same places, same objects, same order — and on input it did
not fully enter it must return None (then the engine runs ``scan``)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.r4check import check_r4
from fhir_iastm.validation.scan import scan
from tests.validation.test_r4_fuzz import FUZZ, good_bundles, index, mutate, r4_shaped


def walked(resource: dict[str, Any]) -> Any:
    ctx = ValidationContext(index(), root=resource)
    return check_r4(resource, ctx, collect=True)


def test_the_walk_notes_what_scan_finds_on_every_good_resource() -> None:
    seen = 0
    for text in good_bundles():
        for entry in json.loads(text)["entry"]:
            resource = entry["resource"]
            found = walked(resource)
            assert found is not None, resource["resourceType"]  # well formed: noted on the way
            assert found == scan(resource)
            seen += len(found.extensions) + len(found.codings)
    assert seen > 100  # the examples do carry extensions and codings


def test_a_structural_error_falls_back_to_scan() -> None:
    resource = json.loads(good_bundles()[0])["entry"][0]["resource"]
    resource["bogus"] = {"extension": [{"url": "http://example.org/x", "valueString": "a"}]}
    assert walked(resource) is None
    assert any(
        path.startswith(f"{resource['resourceType']}.bogus")
        for path, _ in scan(resource).extensions
    )


def test_contained_and_primitive_extensions_are_not_noted() -> None:
    ext = {"url": "http://example.org/x", "valueString": "a"}
    resource = {
        "resourceType": "Patient",
        "_gender": {"extension": [ext]},
        "gender": "other",
        "contained": [{"resourceType": "Organization", "extension": [ext], "name": "x"}],
        "extension": [ext],
    }
    found = walked(resource)
    assert found is not None
    assert found == scan(resource)
    assert [path for path, _ in found.extensions] == ["Patient.extension[0]"]


@FUZZ
@given(resource=r4_shaped())
def test_r4_shaped_junk_noted_as_scan_finds_or_not_at_all(resource: dict[str, Any]) -> None:
    found = walked(resource)
    assert found is None or found == scan(resource)


@FUZZ
@given(data=st.data())
def test_mutated_resources_noted_as_scan_finds_or_not_at_all(data: st.DataObject) -> None:
    entries = json.loads(data.draw(st.sampled_from(good_bundles())))["entry"]
    resource = copy.deepcopy(data.draw(st.sampled_from(entries))["resource"])
    mutate(data, resource, 3)
    if not isinstance(resource.get("resourceType"), str):
        return
    found = walked(resource)
    assert found is None or found == scan(resource)
