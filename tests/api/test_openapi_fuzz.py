"""Schema-driven fuzzing of the records API (schemathesis) from the app's own ``/openapi.json``.

The WSGI app runs in-process on a temporary SQLite store (nothing leaves the process). For every
documented operation, a bounded number of generated requests — valid and invalid bodies, query
and path values — must never produce a 5xx, and every 4xx must be a FHIR OperationOutcome with
the ``application/fhir+json`` media type (docs/decisions.md#d14: one error format everywhere).
``FUZZ_EXAMPLES`` raises or lowers the per-operation bound (default 50).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from fhir_iastm.api import create_app
from tests.strategies import example

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The service on an empty SQLite file, with two stored sessions for path values to hit."""
    db = Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "FHIR_BASE_URL": None, "API_TOKENS": None})
    client = app.test_client()
    for name in ("good-01", "good-07"):
        assert client.post("/api/sessions", json=example(name)).status_code == 201
    yield app
    app.extensions["fhir_iastm"].store.close()


#: The documented operations (``api.openapi.DOCUMENTED``); a test keeps this list in step.
OPERATIONS = [
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/{session_id}"),
    ("GET", "/api/sessions/{session_id}/fhir"),
    ("POST", "/api/sessions/{session_id}/push"),
    ("GET", "/api/sessions/{session_id}/sync"),
]


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Flask) -> Any:
    """The app's /openapi.json, loaded by schemathesis with the app as its WSGI transport.

    (``schemathesis.pytest.from_fixture`` would be the idiomatic loader, but schemathesis 4.32
    writes ``Function._nodeid``, which pytest 9 no longer has; the operations are therefore
    parametrized here and each one runs its own hypothesis loop.)
    """
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def assert_client_errors_are_outcomes(response: Any, case: Any) -> None:
    """A 4xx answer is an OperationOutcome, served as application/fhir+json."""
    if not 400 <= response.status_code < 500:
        return
    label = f"{case.method} {case.formatted_path} -> {response.status_code}"
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.split(";")[0].strip() == FHIR_JSON, f"{label}: {content_type}"
    body = json.loads(response.content)
    assert body.get("resourceType") == "OperationOutcome", f"{label}: {body}"
    issues = body.get("issue")
    assert isinstance(issues, list), f"{label}: {body}"
    assert issues, f"{label}: {body}"
    assert all(i.get("severity") in ("fatal", "error") and i.get("code") for i in issues), body


def test_every_documented_operation_is_fuzzed(api_schema: Any) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


#: Negative data needs an input that can break the schema: a body or a typed/enum query value.
#: (An operation whose only input is a free string path segment has no invalid value.)
NEGATABLE = {
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/{session_id}"),
}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (method, path) in NEGATABLE
]


@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES]
)
def test_no_server_errors_and_every_client_error_is_an_operation_outcome(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Any) -> None:
        response = case.call()
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        assert_client_errors_are_outcomes(response, case)

    run()
    assert statuses, "no request was generated"


@pytest.mark.parametrize(
    "query",
    [
        "/api/sessions/RBPT-2025-000311?version=%C2%B2",  # '²': str.isdigit() yet not int()
        "/api/sessions/RBPT-2025-000311?version=99999999999999999999999",  # DB integer overflow
        "/api/sessions/RBPT-2025-000311?version=0",
        "/api/sessions?limit=%C2%B2",
        "/api/sessions?limit=1000000000000",
    ],
)
def test_integer_query_values_the_database_cannot_take_are_400(fuzz_app: Flask, query: str) -> None:
    """Found by the fuzzer: these were 500s (ValueError / driver OverflowError)."""
    response = fuzz_app.test_client().get(query)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    [issue] = response.get_json()["issue"]
    assert issue["details"]["coding"][0]["code"] == "E_BAD_REQUEST"
    assert fuzz_app.test_client().get(query.split("?")[0]).status_code == 200
