"""The searchset's fast path writes what the plain path wrote: ``searchset_json`` splices each
stored body's text (SQLite) instead of encoding the decoded body again; every answer is the same,
byte for byte, as ``json.dumps(searchset(...))``, on SQLite and PostgreSQL (whose JSONB text is
never spliced), for the examples, every served type and the search features; and for generated
bodies with their own elements anywhere, in either text form."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.api import fhir as fhir_views
from fhir_iastm.facade import bundle as bundle_module
from fhir_iastm.facade.bundle import resource_json, searchset, with_meta
from fhir_iastm.facade.parse import parse_search
from fhir_iastm.storage import Store
from fhir_iastm.storage.fhir_types import StoredResource, compact_json

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "data" / "examples")
                  .glob("good-*.json"))
SESSION = "https://iastm.example.org/fhir/sid/iastm-session"
TYPES = ("Procedure", "Condition", "Observation", "Patient", "Practitioner", "Organization",
         "Encounter")


def _plain(base: str, parsed: Any, result: Any, args: Any, outcome: Any) -> str:
    """What the facade wrote before the fast path: the searchset encoded whole."""
    return json.dumps(searchset(base, parsed, result, args, outcome), separators=(",", ":"),
                      ensure_ascii=False)


@pytest.fixture
def client(app_for: Callable[..., Any]) -> FlaskClient:
    client = app_for().test_client()
    for path in EXAMPLES:
        assert client.post("/api/sessions", json=json.loads(path.read_text())).status_code == 201
    return client


def _headers(response: Any) -> list[tuple[str, str]]:
    """The response headers but the request id (new on every request)."""
    return [(k, v) for k, v in response.headers.items() if k.lower() != "x-request-id"]


def _queries(client: FlaskClient) -> list[str]:
    patient = client.get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]
    mrn = patient["identifier"][0]
    queries = [f"/fhir/{t}" for t in TYPES] + [f"/fhir/{t}?_count=2" for t in TYPES] + [
        f"/fhir/Patient?identifier={mrn['system']}|{mrn['value']}",
        f"/fhir/Procedure?patient={patient['id']}&_include=Procedure:patient",
        f"/fhir/Patient?_id={patient['id']}&_revinclude=Procedure:patient",
        "/fhir/Observation?_include=Observation:part-of&_sort=-date",
        "/fhir/Procedure?_include=Procedure:reason-reference&_count=3",
        "/fhir/Procedure?_summary=true", "/fhir/Observation?_elements=code,status",
        "/fhir/Procedure?_summary=data&_count=1", "/fhir/Procedure?_summary=count",
        "/fhir/Procedure?_total=accurate&_count=1", "/fhir/Procedure?unknown=1&_count=1",
        "/fhir/Procedure?status=completed&_count=1&_pretty=true", "/fhir/Patient?gender=nobody",
    ]
    first = client.get("/fhir/Procedure?_count=1").get_json()
    queries += [link["url"].split("/fhir", 1)[1].join(["/fhir", ""])
                for link in first["link"] if link["relation"] == "next"]
    return queries


def test_every_answer_is_the_plain_answer(client: FlaskClient, store: Store,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    queries = _queries(client)
    fast = [client.get(q) for q in queries]
    monkeypatch.setattr(fhir_views, "searchset_json", _plain)
    plain = [client.get(q) for q in queries]
    for query, a, b in zip(queries, fast, plain, strict=True):
        assert a.status_code == b.status_code == 200, query
        assert _headers(a) == _headers(b), query
        assert a.get_data() == b.get_data(), query
    entries = sum(len(r.get_json().get("entry", [])) for r in fast)
    assert entries > 50  # the queries answered resources, not only empty bundles


def test_the_stored_text_is_spliced_on_sqlite_only(client: FlaskClient, store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spliced: list[StoredResource] = []
    text_only: list[StoredResource] = []
    original, original_text_only = bundle_module._rest_text, bundle_module._text_only

    def spy(stored: StoredResource) -> str | None:
        rest = original(stored)
        if rest is not None:
            spliced.append(stored)
        return rest

    def spy_text_only(stored: StoredResource) -> Any:
        found = original_text_only(stored)
        if found is not None:
            text_only.append(stored)
            assert stored.decoded is None  # the body was never decoded
        return found

    monkeypatch.setattr(bundle_module, "_rest_text", spy)
    monkeypatch.setattr(bundle_module, "_text_only", spy_text_only)
    assert client.get("/fhir/Procedure?_count=5").status_code == 200
    sqlite = store.engine.dialect.name == "sqlite"
    # the stored layout is read from the text alone; the decoding splice is its fallback
    assert len(text_only) == (5 if sqlite else 0)
    assert spliced == []
    assert all(s.text == compact_json(s.body) for s in text_only)


def test_a_search_result_keeps_the_body_text_on_sqlite(store: Store, client: FlaskClient) -> None:
    result = store.search(parse_search("Observation", [], "http://x/fhir", 10).query)
    assert result.matches
    for found in result.matches:
        expected = compact_json(found.body) if store.engine.dialect.name == "sqlite" else None
        assert found.text == expected


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)
_keys = st.sampled_from(["resourceType", "id", "meta", "text", "status", "subject", "é", ""])


@st.composite
def _bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):  # as stored bodies begin
        body["resourceType"] = draw(st.text(max_size=8))
    for key in draw(st.lists(_keys | st.text(max_size=5), max_size=7, unique=True)):
        if key == "meta":
            body[key] = draw(st.none() | st.dictionaries(
                st.sampled_from(["versionId", "lastUpdated", "profile", "tag"]), _values,
                max_size=3))
        else:
            body[key] = draw(st.text(max_size=8)) if key == "resourceType" else draw(_values)
    return body


@given(_bodies(), st.booleans())
def test_resource_json_is_with_meta_encoded(body: dict[str, Any], compact: bool) -> None:
    text = compact_json(body) if compact else json.dumps(body)
    stored = StoredResource(7, "Procedure", "abc-1", 3, "2025-01-02T03:04:05.000006", False,
                            body, text)
    assert resource_json(stored) == json.dumps(with_meta(stored), separators=(",", ":"),
                                               ensure_ascii=False)


def test_a_stored_body_with_its_id_last_is_spliced() -> None:
    body = {"resourceType": "Observation", "meta": {"profile": ["p"], "versionId": "9"},
            "status": "final", "note": [{"text": "Schmerz \u00e9\u2028\n\"x\""}],
            "valueQuantity": {"value": 1e16}, "id": "stale"}
    stored = StoredResource(1, "Observation", "o-1", 2, "2025-01-02T03:04:05", False, body,
                            compact_json(body))
    assert bundle_module._rest_text(stored) is not None
    assert resource_json(stored) == json.dumps(with_meta(stored), separators=(",", ":"),
                                               ensure_ascii=False)


@given(st.sampled_from(["http://localhost/fhir", 'http://a/"q"\\b', "https://exämple.org/fhir",
                        "http://a/\x01\u2028/fhir", ""]) | st.text(max_size=12),
       st.sampled_from(["Procedure", "Patient", "Pro cedure", 'P"x']) | st.text(max_size=6),
       st.sampled_from(["abc-1.2", "ab/c", "é", 'a"b', "a\\b", "\n"]) | st.text(max_size=6))
def test_a_full_url_is_its_encoded_url(base: str, rtype: str, rid: str) -> None:
    stored = StoredResource(1, rtype, rid, 1, "2024-01-01T00:00:00.000000", False, {})
    quoted = compact_json(base)[:-1]
    assert bundle_module.full_url_json(base, quoted, stored) == compact_json(
        bundle_module.resource_url(base, stored))
