"""The dry run against the real HAPI: its per-entry predictions equal what HAPI then does on the
real push (docs/targets.md#dry-run), for first pushes, re-pushes, value changes, retractions and
stale versions; applying a plan writes with If-Match on what it saw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.errors import FhirConflictError
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records import load_record
from fhir_iastm.sync.dryrun import DryRun, apply_dry_run, dry_run, observed_actions
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.push import push_record
from tests.integration.test_push_pull import GOOD, _amended, variant

pytestmark = pytest.mark.integration


class Recording(FhirClient):
    """A real client that keeps every transaction it sent with HAPI's answer, and counts
    writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def transaction(self, bundle: dict[str, Any], *, idempotent: bool | None = None
                    ) -> dict[str, Any]:
        response = super().transaction(bundle, idempotent=idempotent)
        self.sent.append((bundle, response))
        return response


@pytest.fixture
def client(hapi_base_url: str) -> Recording:
    return Recording(hapi_base_url, retry=RetryPolicy(max_attempts=4))


def predicted_then_pushed(client: Recording, data: dict[str, Any],
                          last: PushOutcome | None = None) -> tuple[DryRun, PushOutcome,
                                                                    dict[str, str]]:
    """Dry run, check it wrote nothing, push for real; the actions HAPI reported per fullUrl."""
    record = load_record(data)
    before = len(client.sent)
    run = dry_run(client, record, last_pushed=last)
    assert len(client.sent) == before, "the dry run wrote"
    outcome = push_record(client, record, last_pushed=last)
    if len(client.sent) == before:
        return run, outcome, {}
    tx, response = client.sent[-1]
    return run, outcome, observed_actions(tx["entry"], response, run)


def predicted(run: DryRun) -> dict[str, str]:
    return {e.full_url: e.action for e in run.entries}


CORPUS: list[tuple[str, Any]] = []


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name[:7])
def test_the_dry_run_predicts_first_push_repush_change_and_stale(
    client: Recording, path: Any
) -> None:
    v1 = variant(path)
    run, outcome, seen = predicted_then_pushed(client, v1)
    assert run.status == outcome.status
    if outcome.sent:
        assert seen == predicted(run)
        assert set(seen.values()) <= {"create", "unchanged"}  # shared Device may exist already
        assert "create" in seen.values()
    # the same version again: unchanged, no transaction
    again, outcome, seen = predicted_then_pushed(client, v1)
    assert (again.status, outcome.status, seen) == ("unchanged", "unchanged", {})
    assert {e.action for e in again.entries} <= {"unchanged"}
    if v1["status"] == "entered-in-error":
        return
    # a value change in version 2
    v2 = json.loads(json.dumps(v1))
    v2["record_version"] = v1["record_version"] + 1
    v2["notes"] = "changed by the dry-run oracle"
    if v2.get("pain") and v2["pain"].get("pre") is not None:
        v2["pain"]["pre"] = (v2["pain"]["pre"] + 1) % 11
    run, outcome, seen = predicted_then_pushed(client, v2)
    assert (run.status, outcome.status) == ("pushed", "pushed")
    assert seen == predicted(run)
    assert "update" in seen.values()
    # the older version afterwards: a conflict, nothing written
    stale, outcome, seen = predicted_then_pushed(client, v1)
    assert (stale.status, outcome.status, seen) == ("superseded", "superseded", {})
    assert stale.entries
    assert {e.action for e in stale.entries} == {"conflict"}


@pytest.mark.parametrize("history", ["local-diff", "server-search"])
def test_the_dry_run_predicts_retractions(client: Recording, history: str) -> None:
    v1 = variant(GOOD[5])
    first = push_record(client, load_record(v1))
    run, outcome, seen = predicted_then_pushed(
        client, _amended(v1), first if history == "local-diff" else None)
    assert seen == predicted(run)
    assert list(seen.values()).count("retract") == 5 == len(outcome.retracted)
    retract = next(e for e in run.entries if e.action == "retract")
    assert {"op": "replace", "path": "/status", "value": "entered-in-error"} in retract.patch \
        or any(op["path"].startswith("/verificationStatus") for op in retract.patch)


def test_shared_people_of_a_second_session_are_predicted_unchanged(client: Recording) -> None:
    first = variant(GOOD[0])
    push_record(client, load_record(first))
    second = variant(GOOD[1], shared=first)
    run, _, seen = predicted_then_pushed(client, second)
    assert seen == predicted(run)
    shared = {e.resource_type: e.action for e in run.entries
              if e.resource_type in ("Patient", "Organization", "Practitioner")}
    assert shared
    assert set(shared.values()) == {"unchanged"}


def test_applying_a_plan_writes_what_it_showed(client: Recording) -> None:
    v1 = variant(GOOD[0])
    push_record(client, load_record(v1))
    v2 = {**json.loads(json.dumps(v1)), "record_version": 2, "notes": "applied plan"}
    run = dry_run(client, load_record(v2))
    outcome = apply_dry_run(client, run)
    assert outcome.status == "pushed"
    tx, response = client.sent[-1]
    assert observed_actions(tx["entry"], response, run) == predicted(run)
    pinned = [e["request"] for e in tx["entry"] if e["request"]["method"] == "PUT"
              and e["resource"]["resourceType"] != "Provenance"]
    assert pinned
    assert all("ifMatch" in r and "?" not in r["url"] for r in pinned)


def test_a_change_on_the_server_after_the_dry_run_is_a_conflict_not_an_overwrite(
    client: Recording,
) -> None:
    v1 = variant(GOOD[0])
    push_record(client, load_record(v1))
    v2 = {**json.loads(json.dumps(v1)), "record_version": 2, "notes": "planned"}
    run = dry_run(client, load_record(v2))
    v3 = {**json.loads(json.dumps(v1)), "record_version": 3, "notes": "someone else"}
    assert push_record(client, load_record(v3)).status == "pushed"
    with pytest.raises(FhirConflictError):
        apply_dry_run(client, run)
    after = dry_run(client, load_record(v3))
    assert after.status == "unchanged", "v3 is still what the server holds"


def test_two_resources_with_one_identifier_are_a_conflict_and_the_push_is_rejected(
    client: Recording,
) -> None:
    data = variant(GOOD[0])
    bundle = to_fhir(load_record(data), MappingSettings())
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    duplicate = {"resourceType": "Patient", "identifier": patient["identifier"]}
    client.create("Patient", duplicate)
    client.create("Patient", duplicate)  # someone else's duplicate: two matches now
    run, outcome, seen = predicted_then_pushed(client, data)
    assert (run.status, outcome.status, seen) == ("rejected", "rejected", {})
    [conflict] = [e for e in run.entries if e.action == "conflict"]
    assert conflict.resource_type == "Patient"
    assert "matched 2 resources" in (conflict.note or "")
    assert run.transaction is None
