"""Fuzz every endpoint (records API, facade reads and searches, ``$validate``, Bulk Data export,
Groups, the AuditEvents, SMART discovery and the token endpoint) with hostile input: no answer
is a 5xx, every 4xx is an OperationOutcome (the token endpoint's are RFC 6749 error objects), and
no request that was refused, nor any read or ``$validate``, changes what is stored.

The schema-driven fuzz of the documented records API is ``test_openapi_fuzz.py``; this one adds
what a schema does not describe: the facade, raw bodies (bytes that are not UTF-8, surrogates,
duplicate keys, deep nesting, mutated records), and path and query values of any text.
``FUZZ_EXAMPLES`` scales the bound of each test (default 150; README records the count run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.support import sqlite_app, stored_rows
from tests.strategies import example

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FHIR_JSON = "application/fhir+json"
TYPES = ["Procedure", "Condition", "Observation", "Patient", "Practitioner", "Organization",
         "Encounter", "StructureDefinition", "ValueSet", "Bundle", "$validate", "metadata", ""]
PARAMS = ["patient", "subject", "date", "code", "identifier", "_count", "_offset", "_format",
          "limit", "cursor", "since", "status", "sync", "version", "profile", "x", "_id", "_sort",
          "_cursor", "_lastUpdated", "_include", "_revinclude", "_summary", "_elements"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = sqlite_app(Path(tmp_path_factory.mktemp("fuzz-all")) / "db.sqlite")
    for name in ("good-01", "good-06", "good-07"):
        assert app.test_client().post("/api/sessions", json=example(name)).status_code == 201
    yield app
    app.extensions["fhir_iastm"].store.close()


def check(app: Flask, method: str, url: str, body: bytes | None = None,
          content_type: str = "application/json", headers: dict[str, str] | None = None) -> int:
    before = stored_rows(app)
    client = app.test_client()
    response = client.open(url, method=method, headers=headers or {},
                           **({} if method in ("GET", "DELETE") else
                              {"data": body, "content_type": content_type}))
    label = f"{method} {url[:120]} -> {response.status_code}"
    assert response.status_code < 500, f"{label}: {response.get_data(as_text=True)[:500]}"
    if response.status_code >= 400 and url.startswith("/auth/token"):
        assert isinstance(response.get_json()["error"], str), label  # RFC 6749 section 5.2
    elif response.status_code >= 400:
        assert response.mimetype == FHIR_JSON, label
        outcome = response.get_json()
        assert outcome["resourceType"] == "OperationOutcome", label
        assert all(i["severity"] in ("error", "fatal") for i in outcome["issue"]), label
        assert "Traceback" not in response.get_data(as_text=True), label
    if response.status_code >= 400 or method in ("GET", "DELETE") or "$validate" in url:
        assert stored_rows(app) == before, f"{label} changed stored data"
    return response.status_code


segment = st.one_of(
    st.sampled_from(["RBPT-2025-000311", "iastm-proc-RBPT-2025-000311", "..", "%00", "a" * 300,
                     "_history", "_search"]),
    st.text(min_size=1, max_size=40),
)
query = st.lists(st.tuples(st.sampled_from(PARAMS), st.text(max_size=40)), max_size=4)


def url_of(parts: list[str], args: list[tuple[str, str]]) -> str:
    path = "/".join(quote(p, safe="") for p in parts)
    qs = "&".join(f"{quote(k)}={quote(v)}" for k, v in args)
    return f"/{path}?{qs}" if qs else f"/{path}"


@FUZZ
@given(rtype=st.sampled_from(TYPES), rid=st.none() | segment, args=query)
def test_facade_reads_and_searches(app: Flask, rtype: str, rid: str | None,
                                   args: list[tuple[str, str]]) -> None:
    parts = ["fhir", rtype] + ([rid] if rid is not None else [])
    check(app, "GET", url_of(parts, args))


@FUZZ
@given(sid=segment, tail=st.sampled_from(["", "fhir", "sync"]), args=query)
def test_records_api_reads(app: Flask, sid: str, tail: str, args: list[tuple[str, str]]) -> None:
    check(app, "GET", url_of(["api", "sessions", sid] + ([tail] if tail else []), args))
    check(app, "GET", url_of(["api", "sessions"], args))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def _mutate(record: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**record, key: value}


mutated_record = st.builds(
    _mutate, st.sampled_from([example("good-01"), example("good-07")]),
    st.sampled_from(list(example("good-01")) + ["extra"]), json_value,
)
raw_body = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), json_value),
    st.builds(lambda r: json.dumps(r).encode(), mutated_record),
    st.builds(lambda n: (b"[" * n) + (b"]" * n), st.integers(60, 20_000)),
    st.builds(lambda k: ('{"%s": 1, "%s": 2}' % (k, k)).encode("utf-8", "surrogatepass"),
              st.text(max_size=5)),
    st.builds(lambda s: json.dumps({"notes": s}).encode(), st.text(st.characters(
        min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)),
    st.builds(lambda s: b'{"a": "' + s + b'"}', st.binary(min_size=1, max_size=8)),
)


@FUZZ
@given(body=raw_body, content_type=st.sampled_from(["application/json", FHIR_JSON, "text/plain"]))
def test_records_api_post(app: Flask, body: bytes, content_type: str) -> None:
    check(app, "POST", "/api/sessions", body, content_type)


parameters_body = st.builds(
    lambda p: json.dumps({"resourceType": "Parameters", "parameter": p}).encode(),
    st.one_of(json_value, st.lists(st.dictionaries(st.sampled_from(["name", "resource", "x"]),
                                                   json_value, max_size=3), max_size=3)),
)


@FUZZ
@given(rtype=st.sampled_from(TYPES[:7]), body=st.one_of(raw_body, parameters_body),
       profile=st.none() | st.text(max_size=30))
def test_validate(app: Flask, rtype: str, body: bytes, profile: str | None) -> None:
    url = f"/fhir/{rtype}/$validate" + (f"?profile={quote(profile)}" if profile else "")
    check(app, "POST", url, body, FHIR_JSON)


@FUZZ
@given(sid=segment)
def test_push_of_any_session_id(app: Flask, sid: str) -> None:
    status = check(app, "POST", url_of(["api", "sessions", sid, "push"], []), b"", FHIR_JSON)
    assert status in (202, 404, 405)  # 405: a segment that decodes to a slash


# --- Bulk Data export, Groups, AuditEvents, SMART ---------------------------------------------

BULK_PARAMS = ["_type", "_since", "_outputFormat", "_typeFilter", "_elements", "patient",
               "includeAssociatedData", "identifier", "_id", "x"]
bulk_query = st.lists(st.tuples(st.sampled_from(BULK_PARAMS), st.text(max_size=40)), max_size=4)
bulk_headers = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from([FHIR_JSON, "application/json", "*/*", "text/html"]),
    "Prefer": st.sampled_from(["respond-async", "respond-async, handling=lenient", "x"]),
})


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "DELETE"]),
       path=st.one_of(
           st.sampled_from([["$export"], ["Patient", "$export"], ["Group"]]),
           st.builds(lambda g: ["Group", g, "$export"], segment),
           st.builds(lambda g: ["Group", g], segment),
           st.builds(lambda j: ["$export-poll-status", j], segment),
           st.builds(lambda j, n: ["$export-file", j, n], segment, segment)),
       args=bulk_query, body=st.one_of(raw_body, parameters_body), headers=bulk_headers)
def test_bulk_export_and_groups(app: Flask, method: str, path: list[str],
                                args: list[tuple[str, str]], body: bytes,
                                headers: dict[str, str]) -> None:
    check(app, method, url_of(["fhir", *path], args), body, FHIR_JSON, headers)


AUDIT_PARAMS = ["date", "agent", "altid", "entity", "patient", "_id", "_count", "_cursor",
                "_format", "x"]


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A secured app (an administrator token) holding one record, its reads audited."""
    app = sqlite_app(Path(tmp_path_factory.mktemp("fuzz-admin")) / "db.sqlite",
                     api_tokens={"adm": frozenset({"read", "write", "admin"})})
    client = app.test_client()
    admin = {"Authorization": "Bearer adm"}
    assert client.post("/api/sessions", json=example("good-01"), headers=admin).status_code == 201
    assert client.get("/fhir/Patient", headers=admin).status_code == 200  # one AuditEvent
    yield app
    app.extensions["fhir_iastm"].store.close()


@FUZZ
@given(rid=st.none() | segment, args=st.lists(st.tuples(
    st.sampled_from(AUDIT_PARAMS), st.one_of(st.text(max_size=40), st.sampled_from(
        ["ge2026", "lt2000-01-01T00:00:00Z", "xx2026", "Patient/x", "token:abc", "0", "1001"]))),
    max_size=4))
def test_audit_events(admin_app: Flask, rid: str | None, args: list[tuple[str, str]]) -> None:
    parts = ["fhir", "AuditEvent"] + ([rid] if rid is not None else [])
    check(admin_app, "GET", url_of(parts, args), headers={"Authorization": "Bearer adm"})


@pytest.fixture(scope="module")
def smart_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = sqlite_app(Path(tmp_path_factory.mktemp("fuzz-smart")) / "db.sqlite", smart_auth=True)
    yield app
    app.extensions["fhir_iastm"].store.close()


TOKEN_FIELDS = ["grant_type", "client_assertion_type", "client_assertion", "scope", "x"]
token_value = st.one_of(st.text(max_size=60), st.sampled_from([
    "client_credentials", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "system/*.rs", "system/AuditEvent.rs", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
    "eyJhbGciOiJFUzM4NCIsImtpZCI6IngifQ.e30.AAAA"]))


@FUZZ
@given(form=st.dictionaries(st.sampled_from(TOKEN_FIELDS), token_value, max_size=5),
       raw=st.none() | raw_body,
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json"]))
def test_smart_discovery_and_token_endpoint(smart_app: Flask, form: dict[str, str],
                                            raw: bytes | None, content_type: str) -> None:
    from urllib.parse import urlencode

    body = raw if raw is not None else urlencode(form).encode()
    check(smart_app, "POST", "/auth/token", body, content_type)
    assert check(smart_app, "GET", "/fhir/.well-known/smart-configuration") == 200
    assert check(smart_app, "GET", "/auth/jwks") == 200
