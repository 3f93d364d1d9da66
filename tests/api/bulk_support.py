"""Helpers of the Bulk Data tests: an app with SMART on and stored examples, kick-off, worker,
polling and downloads (as a Bulk Data client does them)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient

from tests.smart.helpers import bearer, register, token

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"
GOOD = sorted(EXAMPLES.glob("good-*.json"))
KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
STATIC = {"Authorization": "Bearer dev"}


def other_clinic() -> dict[str, Any]:
    """good-01 as a session of a second clinic, with its own patient."""
    raw = json.loads(GOOD[0].read_text())
    other = copy.deepcopy(raw)
    other["session_id"] = "OTHR-2025-000001"
    other["clinic"]["clinic_id"] = "OTHR-01"
    other["clinic"]["name"] = "Other Clinic"
    other["patient"]["mrn"] = "MRN-900001"
    return other


def load(client: FlaskClient, *, second_clinic: bool = True) -> None:
    for path in GOOD:
        response = client.post("/api/sessions", json=json.loads(path.read_text()), headers=STATIC)
        assert response.status_code == 201, response.get_json()
    if second_clinic:
        response = client.post("/api/sessions", json=other_clinic(), headers=STATIC)
        assert response.status_code == 201, response.get_json()


class Bulk:
    """One app and one registered client with a token."""

    def __init__(self, app: Any, scope: str = "system/*.rs") -> None:
        self.app = app
        self.client = app.test_client()
        self.client_id = register(app, scope=scope)
        self.auth = bearer(token(self.client, self.client_id, scope=scope))

    def kick_off(self, path: str = "/fhir/$export", headers: dict[str, str] | None = None,
                 **kwargs: Any) -> Any:
        sent = {**KICKOFF, **self.auth, **(headers or {})}
        method = self.client.post if "json" in kwargs else self.client.get
        return method(path, headers={k: v for k, v in sent.items() if v is not None}, **kwargs)

    def work(self) -> int:
        ran = 0
        while self.app.extensions["fhir_iastm"].exporter.run_next():
            ran += 1
        return ran

    def status(self, location: str, method: str = "GET") -> Any:
        path = urlsplit(location).path
        return self.client.open(path, method=method, headers={**self.auth,
                                                               "Accept": "application/json"})

    def export(self, path: str = "/fhir/$export", **kwargs: Any) -> dict[str, Any]:
        """Kick-off, run the worker, poll: the manifest."""
        response = self.kick_off(path, **kwargs)
        assert response.status_code == 202, response.get_data(as_text=True)
        self.work()
        done = self.status(response.headers["Content-Location"])
        assert done.status_code == 200, done.get_data(as_text=True)
        return dict(done.get_json())

    def download(self, url: str, auth: bool = True) -> Any:
        headers = {"Accept": "application/fhir+ndjson", **(self.auth if auth else {})}
        response = self.client.get(urlsplit(url).path, headers=headers)
        response.get_data()  # read the streamed file (kept on the response), then close it
        response.close()
        return response

    def resources(self, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for item in manifest["output"]:
            response = self.download(item["url"])
            assert response.status_code == 200
            lines = response.get_data(as_text=True).splitlines()
            out.setdefault(item["type"], []).extend(json.loads(line) for line in lines)
        return out
