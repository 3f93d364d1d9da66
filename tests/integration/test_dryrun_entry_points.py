"""``fhir-iastm push --dry-run`` and ``POST /api/sessions/{id}/push?dry_run=true`` against the
real HAPI: the plan is printed or returned, nothing is written or queued
(docs/targets.md#dry-run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient
from fhir_iastm.records import load_record
from fhir_iastm.sync.bundle_ops import Systems
from fhir_iastm.sync.push import push_record
from tests.api.conftest import app_for  # noqa: F401, F811 (the HTTP tests' app fixture)
from tests.integration.test_push_pull import GOOD, variant

pytestmark = pytest.mark.integration
SYS = Systems.of("https://iastm.example.org/fhir")


def on_server(client: FhirClient, session_id: str) -> int:
    return client.count("Procedure", [("identifier", f"{SYS.session}|{session_id}")])


def test_push_dry_run_prints_the_plan_and_writes_nothing(hapi_base_url: str,
                                                         tmp_path: Path) -> None:
    data = variant(GOOD[0])
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    runner = CliRunner()
    result = runner.invoke(main, ["push", "--dry-run", "--server", hapi_base_url, str(path)])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert (line["dry_run"], line["status"]) == (True, "pushed")
    assert line["actions"]["create"] >= 10
    assert all(e["patch"][0]["op"] == "add" for e in line["entries"] if e["action"] == "create")
    client = FhirClient(hapi_base_url)
    assert on_server(client, data["session_id"]) == 0
    push_record(client, load_record(data))
    changed = {**data, "record_version": 2, "notes": "dry-run CLI"}
    path.write_text(json.dumps(changed))
    result = runner.invoke(main, ["push", "--dry-run", "--server", hapi_base_url, str(path)])
    [line] = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    procedure = next(e for e in line["entries"] if e["action"] == "update"
                     and {"op": "replace", "path": "/note/0/text", "value": "dry-run CLI"}
                     in e["patch"])
    assert procedure["resourceType"] == "Procedure"
    assert line["actions"]["create"] == 0
    query = [("identifier", f"{SYS.session}|{data['session_id']}")]
    [server] = client.search_all("Procedure", query)
    assert server["meta"]["versionId"] == procedure["versionId"], "nothing written"


def test_api_dry_run_returns_the_plan_and_queues_nothing(
    app_for: Callable[..., Any], hapi_base_url: str  # noqa: F811
) -> None:
    app = app_for(IASTM_FHIR_BASE_URL=hapi_base_url)
    http = app.test_client()
    data = variant(GOOD[1])
    assert http.post("/api/sessions", json=data).status_code == 201
    sid = data["session_id"]
    before = http.get(f"/api/sessions/{sid}/sync").get_json()
    response = http.post(f"/api/sessions/{sid}/push?dry_run=true")
    assert response.status_code == 200, response.get_data(as_text=True)
    plan = response.get_json()
    assert (plan["dry_run"], plan["status"], plan["session_id"]) == (True, "pushed", sid)
    assert plan["actions"]["create"] == len(plan["entries"]) - plan["actions"]["unchanged"]
    assert http.get(f"/api/sessions/{sid}/sync").get_json() == before
    assert on_server(FhirClient(hapi_base_url), sid) == 0
    bad = http.post(f"/api/sessions/{sid}/push?dry_run=maybe")
    assert bad.status_code == 400


def test_api_dry_run_without_a_configured_server_says_so(
    app_for: Callable[..., Any],  # noqa: F811
) -> None:
    http = app_for().test_client()
    data = variant(GOOD[2])
    assert http.post("/api/sessions", json=data).status_code == 201
    response = http.post(f"/api/sessions/{data['session_id']}/push?dry_run=true")
    assert response.status_code == 409
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert "IASTM_FHIR_BASE_URL" in response.get_data(as_text=True)


def test_push_review_applies_the_shown_plan_only_when_confirmed(hapi_base_url: str,
                                                                tmp_path: Path) -> None:
    data = variant(GOOD[0])
    client = FhirClient(hapi_base_url)
    push_record(client, load_record(data))
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({**data, "record_version": 2, "notes": "reviewed"}))
    query = [("identifier", f"{SYS.session}|{data['session_id']}")]
    [before] = client.search_all("Procedure", query)
    runner = CliRunner()
    args = ["push", "--review", "--server", hapi_base_url, str(path)]
    declined = runner.invoke(main, args, input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "apply this plan" in declined.stderr
    assert "~ /note/0/text: \"reviewed\"" in declined.stderr
    [same] = client.search_all("Procedure", query)
    assert same["meta"]["versionId"] == before["meta"]["versionId"]
    accepted = runner.invoke(main, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    plan, outcome = [json.loads(x) for x in accepted.stdout.splitlines() if x.startswith("{")]
    assert (plan["dry_run"], outcome["status"]) == (True, "pushed")
    [after] = client.search_all("Procedure", query)
    assert after["note"][0]["text"] == "reviewed"
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1


def _procedure(hapi: str, session_id: str) -> dict[str, Any]:
    [found] = FhirClient(hapi).search_all("Procedure", [("identifier",
                                                         f"{SYS.session}|{session_id}")])
    return found


def _edit_on_server(hapi: str, session_id: str, text: str) -> str:
    """Another writer changes the session's Procedure on the server; its new version."""
    procedure = _procedure(hapi, session_id)
    procedure["note"] = [{"text": text}]
    answer = requests.put(f"{hapi}/Procedure/{procedure['id']}", json=procedure, timeout=30,
                          headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["meta"]["versionId"])


def _plan(http: Any, sid: str) -> dict[str, Any]:
    response = http.post(f"/api/sessions/{sid}/push?dry_run=true")
    assert response.status_code == 200, response.get_data(as_text=True)
    plan: dict[str, Any] = response.get_json()
    assert len(plan["plan_id"]) == 32
    return plan


def test_api_applies_the_plan_it_showed_with_if_match(
    app_for: Callable[..., Any], hapi_base_url: str  # noqa: F811
) -> None:
    """First push and a version 2 applied over HTTP; a server change after the dry run makes
    the old plan a 409 (E_PLAN_CHANGED) and the other writer's change stays."""
    app = app_for(IASTM_FHIR_BASE_URL=hapi_base_url)
    http = app.test_client()
    data = variant(GOOD[3])
    sid = data["session_id"]
    assert http.post("/api/sessions", json=data).status_code == 201
    first = _plan(http, sid)
    assert first["status"] == "pushed"
    assert _plan(http, sid)["plan_id"] == first["plan_id"]  # the same server, the same plan
    applied = http.post(f"/api/sessions/{sid}/push?plan={first['plan_id']}")
    assert applied.status_code == 200, applied.get_data(as_text=True)
    assert applied.get_json()["status"] == "pushed"
    assert on_server(FhirClient(hapi_base_url), sid) == 1
    again = http.post(f"/api/sessions/{sid}/push?plan={first['plan_id']}")
    assert again.status_code == 409  # that plan created everything: it no longer holds
    assert "E_PLAN_CHANGED" in again.get_data(as_text=True)

    v2 = {**data, "record_version": 2, "notes": "applied over HTTP"}
    assert http.post("/api/sessions", json=v2).status_code == 201
    second = _plan(http, sid)
    ours = f"Procedure/{_procedure(hapi_base_url, sid)['id']}"
    [update] = [e for e in second["entries"] if e.get("resource") == ours]
    assert update["action"] == "update"
    other = _edit_on_server(hapi_base_url, sid, "another writer")
    stale = http.post(f"/api/sessions/{sid}/push?plan={second['plan_id']}")
    assert stale.status_code == 409, stale.get_data(as_text=True)
    [issue] = stale.get_json()["issue"]
    assert issue["details"]["coding"][0]["code"] == "E_PLAN_CHANGED"
    assert "nothing was written" in issue["diagnostics"]
    kept = _procedure(hapi_base_url, sid)
    assert (kept["meta"]["versionId"], kept["note"]) == (other, [{"text": "another writer"}])
    assert int(other) == int(update["versionId"]) + 1

    fresh = _plan(http, sid)
    done = http.post(f"/api/sessions/{sid}/push?plan={fresh['plan_id']}")
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "pushed"
    after = _procedure(hapi_base_url, sid)
    assert after["note"] == [{"text": "applied over HTTP"}]
    assert int(after["meta"]["versionId"]) == int(other) + 1
    unchanged = _plan(http, sid)
    assert unchanged["status"] == "unchanged"
    same = http.post(f"/api/sessions/{sid}/push?plan={unchanged['plan_id']}")
    assert (same.status_code, same.get_json()["status"]) == (200, "unchanged")
    assert _procedure(hapi_base_url, sid)["meta"]["versionId"] == after["meta"]["versionId"]


def test_a_change_between_the_check_and_the_write_is_a_conflict(
    app_for: Callable[..., Any], hapi_base_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server changes after the plan was checked again and before its transaction: HAPI
    refuses the If-Match (the whole transaction rolls back): 409, nothing overwritten."""
    import fhir_iastm.plan_service as plan_service

    app = app_for(IASTM_FHIR_BASE_URL=hapi_base_url)
    http = app.test_client()
    data = variant(GOOD[4])
    sid = data["session_id"]
    push_record(FhirClient(hapi_base_url), load_record(data))
    assert http.post("/api/sessions", json={**data, "record_version": 2,
                                            "notes": "raced"}).status_code == 201
    plan = _plan(http, sid)
    real = plan_service.apply_plan
    edited: list[str] = []

    def racing(client: Any, run: Any) -> Any:
        edited.append(_edit_on_server(hapi_base_url, sid, "won the race"))
        return real(client, run)

    monkeypatch.setattr(plan_service, "apply_plan", racing)
    raced = http.post(f"/api/sessions/{sid}/push?plan={plan['plan_id']}")
    assert raced.status_code == 409, raced.get_data(as_text=True)
    assert raced.get_json()["issue"][0]["details"]["coding"][0]["code"] == "E_PUSH_REJECTED"
    kept = _procedure(hapi_base_url, sid)
    assert (kept["meta"]["versionId"], kept["note"]) == (edited[0], [{"text": "won the race"}])
    both = http.post(f"/api/sessions/{sid}/push?plan=x&dry_run=true")
    assert both.status_code == 400
