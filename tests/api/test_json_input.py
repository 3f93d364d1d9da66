"""The strict JSON reader (``fhir_iastm.jsonin``) and the one body reader of every JSON endpoint:
each hostile input found in review is a 4xx OperationOutcome naming where, never a 500, and never
a stored change."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from fhir_iastm.jsonin import JsonInputError, JsonLimits, decode, parse
from tests.api.support import sqlite_app, stored_rows
from tests.strategies import example

FHIR_JSON = "application/fhir+json"
JSON_ENDPOINTS = ("/api/sessions", "/fhir/Procedure/$validate")


# --- the reader ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('{"pain": {"pre": 99, "pre": 7}}', "pain.pre", "duplicate key 'pre'"),
        ('{"a": [{"b": 1}, {"b": 1, "b": 2}]}', "a[1].b", "duplicate key 'b'"),
        ('{"notes": "\\ud800"}', "notes", "lone UTF-16 surrogate (U+D800)"),
        ('["ok", "\\udfff x"]', "[1]", "lone UTF-16 surrogate (U+DFFF)"),
        ('{"\\ud800": 1}', None, "lone UTF-16 surrogate"),
        ('{"a": "' + "x" * 101 + '"}', "a", "longer than 100 characters"),
        ('{"a": ' * 9 + "1" + "}" * 9, "a.a.a.a.a.a.a.a", "deeper than 8 levels"),
        ("[" * 10_000 + "]" * 10_000, None, "deeper than 8 levels"),
        ("{not json", None, "malformed JSON"),
    ],
)
def test_the_reader_refuses_with_a_path(text: str, where: str | None, words: str) -> None:
    with pytest.raises(JsonInputError) as info:
        parse(text, JsonLimits(max_depth=8, max_string=100))
    assert words in info.value.message
    assert info.value.where == where


def test_paired_surrogates_bom_and_limits_at_the_edge_are_accepted() -> None:
    limits = JsonLimits(max_depth=3, max_string=4)
    assert parse('{"a": ["\\ud83d\\ude00"]}', limits) == {"a": ["\U0001f600"]}
    assert parse(b'\xef\xbb\xbf{"abcd": [[1]]}', limits) == {"abcd": [[1]]}
    assert parse('\ufeff[]', limits) == []


@pytest.mark.parametrize(
    ("data", "offset"),
    [(b'{"a": "caf\xe9"}', 10), (b'\xef\xbb\xbf{"a": "\xed\xa0\x80"}', 10), (b"\xff", 0)],
)
def test_bytes_that_are_not_utf8_are_named_by_byte_offset(data: bytes, offset: int) -> None:
    with pytest.raises(JsonInputError, match=f"records.json is not UTF-8: .* offset {offset} "):
        decode(data, "records.json")


# --- the endpoints ------------------------------------------------------------------------------

@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = sqlite_app(tmp_path / "db.sqlite")
    yield app
    app.extensions["fhir_iastm"].store.close()


def assert_outcome(response: Any, status: int, where: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    [issue] = response.get_json()["issue"]
    assert issue["details"]["coding"][0]["code"]
    if where is not None:
        assert issue["expression"] == [where]
    return str(issue["diagnostics"])


def record_text(**changes: str) -> str:
    """good-01 as JSON text with raw members appended (to carry what json.dumps cannot)."""
    text = json.dumps(example("good-01"))
    extra = "".join(f', "{key}": {value}' for key, value in changes.items())
    return text[:-1] + extra + "}"


HOSTILE = [
    ("[" * 10_000 + "]" * 10_000, None),
    (record_text(notes='"\\ud800"'), "notes"),
    (record_text(notes='"' + "x" * 100_001 + '"'), "notes"),
    (record_text(record_version="1"), "record_version"),  # duplicate key: pre 99 / pre 7 kind
]


@pytest.mark.parametrize("url", JSON_ENDPOINTS)
@pytest.mark.parametrize(("text", "where"), HOSTILE, ids=["deep", "surrogate", "long", "dup"])
def test_hostile_bodies_are_400_and_change_nothing(app: Flask, url: str, text: str,
                                                   where: str | None) -> None:
    client = app.test_client()
    assert client.post("/api/sessions", json=example("good-07")).status_code == 201
    before = stored_rows(app)
    response = client.post(url, data=text, content_type="application/json")
    assert_outcome(response, 400, where)
    assert stored_rows(app) == before


def test_duplicate_key_is_not_last_one_wins(app: Flask) -> None:
    text = json.dumps(example("good-01")).replace('"pre": ', '"pre": 99, "pre": ', 1)
    response = app.test_client().post("/api/sessions", data=text, content_type="application/json")
    assert "duplicate key 'pre'" in assert_outcome(response, 400, "pain.pre")
    assert app.test_client().get("/api/sessions").get_json()["items"] == []


def test_raw_surrogate_bytes_are_400_with_the_byte_offset(app: Flask) -> None:
    data = record_text(notes='"X"').encode().replace(b'"X"', b'"\xed\xa0\x80"')
    response = app.test_client().post("/api/sessions", data=data, content_type="application/json")
    offset = data.index(b"\xed")
    assert f"offset {offset} " in assert_outcome(response, 400)


@pytest.mark.parametrize(
    ("parameter", "words"),
    [
        ('"text"', "Parameters.parameter must be an array"),
        ("[1, 2]", "Parameters.parameter[0] must be an object"),
        ('[{"name": "mode"}, "x"]', "Parameters.parameter[1] must be an object"),
        ('[{"name": "resource", "resource": "x"}]', "parameter[0].resource must be a resource"),
        ('[{"name": 5}]', "carries no 'resource' parameter"),
        ("null", "must be an array"),
    ],
)
def test_validate_parameters_of_odd_shapes_are_400(app: Flask, parameter: str, words: str) -> None:
    body = '{"resourceType": "Parameters", "parameter": %s}' % parameter
    response = app.test_client().post("/fhir/Procedure/$validate", data=body,
                                      content_type=FHIR_JSON)
    assert words in assert_outcome(response, 400)


def chunked(app: Flask, url: str, data: bytes) -> Any:
    """A body with no Content-Length, framed by the server (as gunicorn does for chunked)."""
    return app.test_client().post(url, input_stream=io.BytesIO(data), content_type=FHIR_JSON,
                                  environ_overrides={"wsgi.input_terminated": True},
                                  headers={"Transfer-Encoding": "chunked"})


@pytest.mark.parametrize("url", JSON_ENDPOINTS)
def test_chunked_body_over_the_limit_is_413_not_cut_and_parsed(tmp_path: Path, url: str) -> None:
    app = sqlite_app(tmp_path / "db.sqlite", max_body_bytes=4096)
    record = example("good-01") | {"notes": "x" * 5000}
    assert_outcome(chunked(app, url, json.dumps(record).encode()), 413)
    small = json.dumps(example("good-01")).encode()
    assert len(small) < 4096
    assert chunked(app, "/api/sessions", small).status_code == 201
    exact = small + b" " * (4096 - len(small))
    assert chunked(app, "/api/sessions", exact).status_code == 200  # the identical repeat
    app.extensions["fhir_iastm"].store.close()
