"""End to end through the whole service: POST records to the Flask app (SQLite file or PostgreSQL)
-> outbox -> worker -> the real local HAPI FHIR server, then count what arrived by identifier.

Every batch of records is unique (``e2e_support.batch``): HAPI keeps its state across the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from fhir_iastm.api import create_app
from fhir_iastm.client import FhirClient
from fhir_iastm.service import drain_outbox, make_client
from fhir_iastm.storage import Store
from tests.integration.e2e_support import (
    SESSION_SYSTEM,
    HapiCounter,
    assert_exactly_once,
    batch,
    dedicated_database,
    reaches_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a dedicated database on the run's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'e2e.db'}"
        return
    with dedicated_database(request.getfixturevalue("pg_url")) as url:
        yield url


@pytest.fixture
def counter(hapi_base_url: str) -> Iterator[HapiCounter]:
    counter = HapiCounter(hapi_base_url)
    yield counter
    counter.close()


@pytest.fixture
def app_client(database_url: str, hapi_base_url: str) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": database_url, "FHIR_BASE_URL": hapi_base_url})
    yield app.test_client()
    app.extensions["fhir_iastm"].store.close()


def store_of(client: FlaskClient) -> Store:
    return client.application.extensions["fhir_iastm"].store


def post_all(client: FlaskClient, records: list[dict[str, Any]]) -> None:
    for record in records:
        response = client.post("/api/sessions", json=record)
        assert response.status_code == 201, response.get_data(as_text=True)


def sync_of(client: FlaskClient, session_id: str) -> dict[str, Any]:
    response = client.get(f"/api/sessions/{session_id}/sync")
    assert response.status_code == 200
    return response.get_json()


def test_every_good_example_posted_to_the_api_lands_on_hapi_exactly_once(
    app_client: FlaskClient, counter: HapiCounter, hapi_base_url: str
) -> None:
    records = batch(8)  # the 8 good examples; good-07 (entered-in-error) shares good-01's patient
    post_all(app_client, records)
    for record in records:
        sync = sync_of(app_client, record["session_id"])
        assert (sync["state"], sync["pending"], sync["pushed_version"]) == ("queued", 1, None)
        assert counter.sessions(record["session_id"]) == 0

    stats = drain_outbox(store_of(app_client), make_client(hapi_base_url))

    assert (stats.claimed, stats.retried, stats.dead_lettered) == (8, 0, 0)
    # docs/decisions.md#d10: good-07 sends nothing
    assert stats.done == {"pushed": 7, "unchanged": 1}
    assert_exactly_once(counter, records)
    for record in records:
        sync = sync_of(app_client, record["session_id"])
        assert sync["pending"] == 0
        assert sync["last_error_code"] is None
        assert sync["pushed_version"] == record["record_version"]
        if reaches_server(record):
            assert sync["state"] == "pushed", sync
            key = f"{SESSION_SYSTEM}|{record['session_id']}"
            assert sync["fhir_ids"][key].startswith("Procedure/"), sync["fhir_ids"]
        else:
            assert sync["state"] == "unchanged", sync
            assert sync["fhir_ids"] == {}


def test_a_push_requested_again_changes_nothing_on_hapi(
    app_client: FlaskClient, counter: HapiCounter, hapi_base_url: str
) -> None:
    records = batch(8)
    post_all(app_client, records)
    client = make_client(hapi_base_url)
    drain_outbox(store_of(app_client), client)
    assert drain_outbox(store_of(app_client), client).claimed == 0  # nothing left over

    for record in records:  # POST .../push: queued again; the worker finds it on the server
        response = app_client.post(f"/api/sessions/{record['session_id']}/push")
        assert response.status_code == 202
        assert sync_of(app_client, record["session_id"])["state"] == "queued"
    # a repeated POST of the same content is "unchanged" and queues nothing
    assert app_client.post("/api/sessions", json=records[0]).status_code == 200
    stats = drain_outbox(store_of(app_client), client)

    assert (stats.claimed, stats.done, stats.dead_lettered) == (8, {"unchanged": 8}, 0)
    assert_exactly_once(counter, records)
    assert {sync_of(app_client, r["session_id"])["state"] for r in records} == {"unchanged"}


def test_a_new_version_through_the_api_updates_the_session_in_place(
    app_client: FlaskClient, counter: HapiCounter, hapi_base_url: str
) -> None:
    [record] = batch(1)
    post_all(app_client, [record])
    newer = record | {"record_version": record["record_version"] + 1, "notes": "amended"}
    assert app_client.post("/api/sessions", json=newer).status_code == 201
    assert sync_of(app_client, record["session_id"])["pending"] == 2  # both versions, in order

    stats = drain_outbox(store_of(app_client), make_client(hapi_base_url))

    assert (stats.claimed, stats.done) == (2, {"pushed": 2})
    assert_exactly_once(counter, [newer])
    sync = sync_of(app_client, record["session_id"])
    assert (sync["state"], sync["pushed_version"]) == ("pushed", newer["record_version"])
    bundle = counter.http.get(
        f"{counter.base}/Procedure",
        params={"identifier": f"{SESSION_SYSTEM}|{record['session_id']}"},
        timeout=30,
    ).json()
    [procedure] = [e["resource"] for e in bundle["entry"]]
    assert procedure["meta"]["versionId"] == "2"  # updated in place, not created twice
    assert [n["text"] for n in procedure.get("note", [])] == ["amended"]


class RecordingSession(requests.Session):
    """A real HTTP session that records the method of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.methods.append(method)
        return super().request(method, url, *args, **kwargs)


def test_an_entered_in_error_session_never_pushed_sends_nothing(
    app_client: FlaskClient, counter: HapiCounter, hapi_base_url: str
) -> None:
    """docs/decisions.md#d10, through the service: only reads reach the server, no resource is
    written."""
    [record] = batch(1, ["good-07"])  # its own patient: nothing of it may appear on the server
    post_all(app_client, [record])
    session = RecordingSession()

    stats = drain_outbox(store_of(app_client), FhirClient(hapi_base_url, session=session))

    assert (stats.claimed, stats.done, stats.dead_lettered) == (1, {"unchanged": 1}, 0)
    assert set(session.methods) == {"GET"}, session.methods  # metadata and a search, no write
    assert counter.sessions(record["session_id"]) == 0
    assert counter.patients(record) == 0
    sync = sync_of(app_client, record["session_id"])
    assert (sync["state"], sync["pending"], sync["fhir_ids"]) == ("unchanged", 0, {})
