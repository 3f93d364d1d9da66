"""push_record against `responses` mocks: guard, ifMatch rewrite, retries, retractions, fallback.

The real-server behaviour is proven in tests/integration/test_push_pull.py; these tests pin the
decisions a real HAPI cannot easily be made to show (409 races, missing capabilities, 412 kinds).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.errors import FhirConflictError, FhirServerError, FhirUnavailableError
from fhir_iastm.mapping import canonical_for_roundtrip, to_fhir
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records import load_record
from fhir_iastm.sync.bundle_ops import Systems, is_session_procedure, retracted, rewrite_references
from fhir_iastm.sync.fallback import missing_features
from fhir_iastm.sync.pull import PullError, pull_query, pull_records
from fhir_iastm.sync.push import PushOutcome, push_record

BASE = "http://fhir.test/fhir"
CANON = "https://iastm.example.org/fhir"
SYS = Systems.of(CANON)
SID = "RBPT-2025-000518"
EXAMPLES = Path(__file__).parents[1] / "data" / "examples"
EXAMPLE = EXAMPLES / "good-03-plantar-fasciitis-hawkgrips-bruising.json"
SETTINGS = MappingSettings()


@dataclass
class History:
    record_version: int
    record_hash: str
    identifiers: tuple[str, ...] = ()
    fhir_ids: dict[str, str] = field(default_factory=dict)


def res_key(role: str) -> str:
    return f"{SYS.resource}|{SID}/{role}"


def version_exts(version: int, digest: str) -> list[dict[str, Any]]:
    return [
        {"url": SYS.version_ext, "valuePositiveInt": version},
        {"url": SYS.hash_ext, "valueString": digest},
    ]


def make_bundle(
    version: int = 2, digest: str = "h2", with_pain_post: bool = True
) -> dict[str, Any]:
    """A small Bundle in the shape to_fhir emits (docs/decisions.md#d5 to #d7)."""

    def owned(rtype: str, role: str, **extra: Any) -> dict[str, Any]:
        resource = {
            "resourceType": rtype,
            "extension": version_exts(version, digest),
            "identifier": [{"system": SYS.resource, "value": f"{SID}/{role}"}],
            **extra,
        }
        url = f"{rtype}?identifier={SYS.resource}|{SID}/{role}"
        return {
            "fullUrl": f"urn:uuid:{role}",
            "resource": resource,
            "request": {"method": "PUT", "url": url},
        }

    procedure = owned(
        "Procedure",
        "procedure",
        status="completed",
        encounter={"reference": "urn:uuid:encounter"},
        subject={"reference": "urn:uuid:patient"},
    )
    procedure["resource"]["identifier"].insert(0, {"system": SYS.session, "value": SID})
    entries = [
        {
            "fullUrl": "urn:uuid:patient",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "mrn", "value": "M1"}],
            },
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=mrn%7CM1"},
        },
        owned(
            "Encounter", "encounter", status="finished", subject={"reference": "urn:uuid:patient"}
        ),
        procedure,
        owned(
            "Observation", "obs/pain-pre", status="final", subject={"reference": "urn:uuid:patient"}
        ),
    ]
    if with_pain_post:
        entries.append(owned("Observation", "obs/pain-post", status="final"))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def capability(
    *, transaction: bool = True, cond_update: bool = True, cond_create: bool = True
) -> dict[str, Any]:
    types = [
        "Patient",
        "Practitioner",
        "Organization",
        "Encounter",
        "Condition",
        "Procedure",
        "Observation",
        "Provenance",
    ]
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}] if transaction else [],
                "resource": [
                    {
                        "type": t,
                        "conditionalUpdate": cond_update,
                        "conditionalCreate": cond_create,
                        "updateCreate": True,
                    }
                    for t in types
                ],
            }
        ],
    }


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def server_error(code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome reply with one error issue, as a FHIR server sends it."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def server_procedure(version: int, digest: str, vid: str = "3") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": "p1",
        "meta": {"versionId": vid},
        "status": "completed",
        "extension": version_exts(version, digest),
        "encounter": {"reference": "Encounter/e1"},
        "identifier": [
            {"system": SYS.session, "value": SID},
            {"system": SYS.resource, "value": f"{SID}/procedure"},
        ],
    }


def tx_response(request: Any) -> tuple[int, dict[str, str], str]:
    sent = json.loads(request.body)
    entries = [
        {
            "response": {
                "status": "200 OK",
                "location": f"{e['resource']['resourceType']}/id{i}/_history/1",
            }
        }
        for i, e in enumerate(sent["entry"])
    ]
    return (
        200,
        {},
        json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
    )


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        unmocked = [c for c in mock.calls if "Connection refused by Responses" in str(c.response)]
        assert not unmocked, f"unmocked request: {unmocked[0].request.url}"


@pytest.fixture
def client() -> FhirClient:
    return FhirClient(BASE, retry=RetryPolicy(max_attempts=1), sleep=lambda _s: None)


@pytest.fixture
def record() -> Any:
    return load_record(json.loads(EXAMPLE.read_text()))


def mock_metadata(server: responses.RequestsMock, **kw: bool) -> None:
    server.add(responses.GET, f"{BASE}/metadata", json=capability(**kw))


def mock_lookup(server: responses.RequestsMock, *pages: dict[str, Any]) -> None:
    for page in pages:
        server.add(responses.GET, f"{BASE}/Procedure", json=page)


def sent_transactions(server: responses.RequestsMock) -> list[dict[str, Any]]:
    """The transactions POSTed, without the audit entries every one ends with (the Device and
    the Provenance, checked here; their content: tests/mapping/test_provenance.py)."""
    out = []
    for call in server.calls:
        if call.request.method == "POST" and call.request.url == BASE:
            tx = json.loads(call.request.body)
            *rest, device, provenance = tx["entry"]
            assert device["resource"]["resourceType"] == "Device"
            assert provenance["request"]["method"] == "PUT"
            assert provenance["request"]["url"].startswith("Provenance/")
            out.append({**tx, "entry": rest})
    return out


def push(client: FhirClient, record: Any, **kw: Any) -> PushOutcome:
    kw.setdefault("bundle", make_bundle())
    return push_record(client, record, settings=SETTINGS, sleep=lambda _s: None, **kw)


def test_new_session_sends_the_mapped_bundle_unchanged(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset())
    server.add_callback(responses.POST, BASE, callback=tx_response)
    outcome = push(client, record)
    assert outcome.status == "pushed"
    assert outcome.sent
    [tx] = sent_transactions(server)
    assert tx == make_bundle()
    assert outcome.identifiers == tuple(
        sorted(res_key(r) for r in ("encounter", "procedure", "obs/pain-pre", "obs/pain-post"))
    )
    assert outcome.fhir_ids[f"{SYS.session}|{SID}"] == "Procedure/id2"
    lookup = server.calls[1].request
    assert lookup.headers["Cache-Control"] == "no-cache, no-store"
    assert parse_qs(urlsplit(lookup.url).query)["identifier"] == [f"{SYS.session}|{SID}"]


def test_same_version_and_hash_is_unchanged_and_sends_nothing(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(2, "h2")))
    outcome = push(client, record)
    assert (outcome.status, outcome.sent, outcome.server_version) == ("unchanged", False, 2)
    assert sent_transactions(server) == []


def test_higher_server_version_is_superseded_and_sends_nothing(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(3, "h3")))
    outcome = push(client, record)
    assert (outcome.status, outcome.server_version) == ("superseded", 3)
    assert outcome.ok
    assert sent_transactions(server) == []


@pytest.mark.parametrize(("version", "digest"), [(1, "h1"), (2, "other-hash")])
def test_older_or_different_server_copy_is_overwritten_with_if_match(
    server, client, record, version: int, digest: str
) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(version, digest, vid="7")))
    server.add_callback(responses.POST, BASE, callback=tx_response)
    assert push(client, record, last_pushed=History(version, digest)).status == "pushed"
    [tx] = sent_transactions(server)
    entry = tx["entry"][2]
    assert entry["request"] == {"method": "PUT", "url": "Procedure/p1", "ifMatch": 'W/"7"'}
    assert entry["resource"]["id"] == "p1"
    assert entry["fullUrl"] == "urn:uuid:procedure"
    others = [e for i, e in enumerate(tx["entry"]) if i != 2]
    assert others == [e for i, e in enumerate(make_bundle()["entry"]) if i != 2]


def test_version_conflict_rereads_and_then_finds_it_unchanged(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(1, "h1")), searchset(server_procedure(2, "h2")))
    server.add(
        responses.POST,
        BASE,
        status=409,
        json=server_error("conflict", "HAPI-0989: not current version"),
    )
    outcome = push(client, record, last_pushed=History(1, "h1"))
    assert outcome.status == "unchanged"
    assert len(sent_transactions(server)) == 1
    assert sum(c.request.url.startswith(f"{BASE}/Procedure") for c in server.calls) == 2


def test_persistent_conflict_is_rejected_after_a_bounded_number_of_attempts(
    server, client, record
) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(1, "h1")))
    server.add(
        responses.POST,
        BASE,
        status=412,
        json=server_error("conflict", "version mismatch"),
    )
    outcome = push(client, record, max_attempts=3, last_pushed=History(1, "h1"))
    assert (outcome.status, outcome.error_code) == ("rejected", "E_PUSH_REJECTED")
    assert len(sent_transactions(server)) == 3
    assert outcome.operation_outcome["issue"][0]["diagnostics"] == "version mismatch"


def test_persistent_409_is_raised_for_the_outbox_to_retry_later(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(1, "h1")))
    server.add(
        responses.POST,
        BASE,
        status=409,
        json=server_error("conflict", "HAPI-0989: not current version"),
    )
    with pytest.raises(FhirConflictError) as caught:
        push(client, record, max_attempts=3, last_pushed=History(1, "h1"))
    assert caught.value.status == 409
    assert len(sent_transactions(server)) == 3


def test_412_multiple_matches_is_ambiguous_and_not_retried(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset())
    server.add(
        responses.POST,
        BASE,
        status=412,
        json=server_error(
            "processing",
            "HAPI-0988: Failed to UPDATE resource with match URL because "
            "this search matched 2 resources",
        ),
    )
    outcome = push(client, record)
    assert (outcome.status, outcome.error_code) == ("rejected", "E_AMBIGUOUS_MATCH")
    assert len(sent_transactions(server)) == 1


def test_two_session_procedures_on_the_server_are_ambiguous(server, client, record) -> None:
    mock_metadata(server)
    other = {**server_procedure(1, "h1"), "id": "p2"}
    mock_lookup(server, searchset(server_procedure(1, "h1"), other))
    outcome = push(client, record)
    assert (outcome.status, outcome.error_code) == ("rejected", "E_AMBIGUOUS_MATCH")
    assert outcome.operation_outcome["issue"][0]["expression"] == ["Procedure.identifier"]
    assert sent_transactions(server) == []


def test_entered_in_error_never_pushed_sends_nothing(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset())
    eie = record.__class__(
        **{
            **{f: getattr(record, f) for f in record.__dataclass_fields__},
            "status": "entered-in-error",
        }
    )
    outcome = push(client, eie)
    assert (outcome.status, outcome.sent) == ("unchanged", False)
    assert "never pushed" in outcome.note
    assert sent_transactions(server) == []


def test_server_rejection_is_kept_and_unavailability_raises(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset())
    server.add(
        responses.POST,
        BASE,
        status=422,
        json=server_error("invalid", "Procedure.status: bad"),
    )
    outcome = push(client, record)
    assert (outcome.status, outcome.error_code) == ("rejected", "E_FHIR_SERVER")
    server.replace(responses.POST, BASE, status=503)
    with pytest.raises(FhirUnavailableError):
        push(client, record)


def test_dropped_elements_from_local_history_are_retracted_in_the_same_transaction(
    server, client, record
) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(1, "h1", vid="4")))
    old_post = {
        "resourceType": "Observation",
        "id": "o9",
        "meta": {"versionId": "2"},
        "status": "final",
        "extension": version_exts(1, "h1"),
        "identifier": [{"system": SYS.resource, "value": f"{SID}/obs/pain-post"}],
    }
    server.add(responses.GET, f"{BASE}/Observation", json=searchset(old_post))
    server.add_callback(responses.POST, BASE, callback=tx_response)
    history = History(
        1,
        "h1",
        identifiers=(res_key("obs/pain-pre"), res_key("obs/pain-post")),
        fhir_ids={res_key("obs/pain-post"): "Observation/o9"},
    )
    outcome = push(client, record, bundle=make_bundle(with_pain_post=False), last_pushed=history)
    assert outcome.retracted == ("Observation/o9",)
    [tx] = sent_transactions(server)
    retraction = tx["entry"][-1]
    assert retraction["request"] == {"method": "PUT", "url": "Observation/o9", "ifMatch": 'W/"2"'}
    assert retraction["resource"]["status"] == "entered-in-error"
    assert retraction["resource"]["extension"] == version_exts(1, "h1")
    assert res_key("obs/pain-post") not in outcome.identifiers
    search = [c.request.url for c in server.calls if "/Observation" in c.request.url]
    assert len(search) == 1
    assert "pain-post" in search[0]


def test_without_history_the_encounter_search_finds_what_to_retract(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(1, "h1")))
    stale = {
        "resourceType": "Observation",
        "id": "o9",
        "meta": {"versionId": "1"},
        "status": "final",
        "identifier": [{"system": SYS.resource, "value": f"{SID}/obs/pain-post"}],
    }
    current = {
        **stale,
        "id": "o8",
        "identifier": [{"system": SYS.resource, "value": f"{SID}/obs/pain-pre"}],
    }
    foreign = {**stale, "id": "o7", "identifier": [{"system": "other", "value": "x"}]}
    done = {
        **stale,
        "id": "o6",
        "status": "entered-in-error",
        "identifier": [{"system": SYS.resource, "value": f"{SID}/obs/rom/x"}],
    }
    server.add(responses.GET, f"{BASE}/Observation", json=searchset(stale, current, foreign, done))
    server.add(responses.GET, f"{BASE}/Procedure", json=searchset(server_procedure(1, "h1")))
    server.add(responses.GET, f"{BASE}/Condition", json=searchset())
    server.add_callback(responses.POST, BASE, callback=tx_response)
    outcome = push(client, record, bundle=make_bundle(with_pain_post=False))
    assert outcome.retracted == ("Observation/o9",)
    enc_searches = [
        c.request.url for c in server.calls if "encounter=Encounter%2Fe1" in c.request.url
    ]
    assert len(enc_searches) == 3


def test_condition_retraction_follows_con_5() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "meta": {"versionId": "3", "lastUpdated": "2025-01-01T00:00:00Z", "profile": ["p"]},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
    }
    out = retracted(condition)
    assert "clinicalStatus" not in out
    assert out["meta"] == {"profile": ["p"]}
    assert out["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert condition["clinicalStatus"]  # the input is not modified


def test_missing_conditional_update_falls_back_to_search_then_put_or_post(
    server, client, record
) -> None:
    mock_metadata(server, cond_update=False)
    mock_lookup(server, searchset())  # the session lookup
    server.add(
        responses.GET,
        f"{BASE}/Encounter",
        json=searchset({"resourceType": "Encounter", "id": "e5"}),
    )
    mock_lookup(server, searchset())  # the Procedure entry: no match
    server.add(responses.GET, f"{BASE}/Observation", json=searchset())
    server.add_callback(responses.POST, BASE, callback=tx_response)
    assert push(client, record).status == "pushed"
    [tx] = sent_transactions(server)
    requests_sent = [e["request"] for e in tx["entry"]]
    assert requests_sent[0]["method"] == "POST"
    assert requests_sent[0]["ifNoneExist"]
    assert requests_sent[1] == {"method": "PUT", "url": "Encounter/e5"}
    assert tx["entry"][1]["resource"]["id"] == "e5"
    assert requests_sent[2:] == [
        {"method": "POST", "url": t} for t in ("Procedure", "Observation", "Observation")
    ]


def test_missing_conditional_create_references_the_found_shared_resource(
    server, client, record
) -> None:
    mock_metadata(server, cond_create=False)
    mock_lookup(server, searchset())
    server.add(
        responses.GET, f"{BASE}/Patient", json=searchset({"resourceType": "Patient", "id": "pat9"})
    )
    server.add_callback(responses.POST, BASE, callback=tx_response)
    assert push(client, record).status == "pushed"
    [tx] = sent_transactions(server)
    assert [e["resource"]["resourceType"] for e in tx["entry"]][0] == "Encounter"
    assert tx["entry"][0]["resource"]["subject"] == {"reference": "Patient/pat9"}
    assert "urn:uuid:patient" not in json.dumps(tx)


def test_no_transaction_support_is_a_server_failure(server, client, record) -> None:
    mock_metadata(server, transaction=False)
    with pytest.raises(FhirServerError, match="transaction"):
        push(client, record)


def test_capabilities_are_read_once_per_client(server, client, record) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(2, "h2")))
    push(client, record)
    push(client, record)
    assert sum(c.request.url.endswith("/metadata") for c in server.calls) == 1


def test_outcome_json_line_names_the_session_version_and_status() -> None:
    outcome = PushOutcome(
        "rejected", "S1", 3, operation_outcome={"resourceType": "OperationOutcome"}
    )
    line = outcome.to_json()
    assert line == {
        "session_id": "S1",
        "record_version": 3,
        "status": "rejected",
        "operationOutcome": {"resourceType": "OperationOutcome"},
    }
    assert not outcome.ok


# ---------------------------------------------------------------- capability flags


def test_update_create_counts_as_missing_only_when_declared_false() -> None:
    statement = capability()
    for resource in statement["rest"][0]["resource"]:
        resource.pop("updateCreate")
    assert missing_features(Capabilities(statement)) == frozenset()
    statement["rest"][0]["resource"][-1]["updateCreate"] = False
    assert missing_features(Capabilities(statement)) == {"updateCreate:Provenance"}
    statement["rest"][0]["resource"][0].pop("conditionalCreate")  # silent = not declared true
    assert "create:Patient" in missing_features(Capabilities(statement))


# ---------------------------------------------------------------- CLI push / pull


def write_records(tmp_path: Path, *items: dict[str, Any]) -> str:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return str(path)


def test_cli_push_prints_one_line_per_record_and_exits_1_for_an_invalid_one(
    server, tmp_path
) -> None:
    good = json.loads(EXAMPLE.read_text())
    bad = {**good, "session_id": "S-BAD", "pain": {"scale": "NRS-11", "pre": 11}}
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(2, "stale-hash")))
    server.add(responses.GET, f"{BASE}/Observation", json=searchset())
    server.add(responses.GET, f"{BASE}/Procedure", json=searchset())
    server.add(responses.GET, f"{BASE}/Condition", json=searchset())
    server.add_callback(responses.POST, BASE, callback=tx_response)
    result = CliRunner().invoke(
        main, ["push", "--server", BASE, write_records(tmp_path, good, bad)]
    )
    assert result.exit_code == 1, result.output
    [line] = [json.loads(x) for x in result.stdout.splitlines()]
    assert (line["session_id"], line["record_version"], line["status"]) == (SID, 2, "pushed")
    [outcome] = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    assert outcome["issue"][0]["details"]["text"] == "E_RANGE"


def test_cli_push_exit_3_when_the_server_is_unavailable(server, tmp_path, monkeypatch) -> None:
    import fhir_iastm.sync_service as sync_service

    monkeypatch.setattr(
        sync_service,
        "make_client",
        lambda base, token=None, **_: FhirClient(
            base, token=token, retry=RetryPolicy(max_attempts=3), sleep=lambda _s: None
        ),
    )
    good = json.loads(EXAMPLE.read_text())
    second = {**good, "session_id": "S-2"}
    server.add(responses.GET, f"{BASE}/metadata", status=503)
    result = CliRunner().invoke(
        main,
        ["push", "--server", BASE, write_records(tmp_path, good, second)],
        env={"IASTM_FHIR_TOKEN": ""},
    )
    assert result.exit_code == 3
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["error", "error"]
    assert lines[0]["operationOutcome"]["issue"][0]["details"]["text"] == "E_FHIR_UNAVAILABLE"
    assert len([c for c in server.calls if c.request.url.endswith("/metadata")]) == 3


def test_cli_push_superseded_is_not_exit_0(server, tmp_path) -> None:
    mock_metadata(server)
    mock_lookup(server, searchset(server_procedure(9, "h9")))
    result = CliRunner().invoke(
        main, ["push", "--server", BASE, write_records(tmp_path, json.loads(EXAMPLE.read_text()))]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "superseded"


def test_cli_pull_rejects_a_bad_since_as_usage_error() -> None:
    result = CliRunner().invoke(main, ["pull", "--server", BASE, "--since", "2025-13-40"])
    assert result.exit_code == 2
    assert "--since" in result.stderr


# ---------------------------------------------------------------- pull


def as_searchset(bundle: dict[str, Any], prefix: str, drop: tuple[str, ...] = ()) -> list[Any]:
    """A mapped transaction Bundle as a server would return it: ids, literal references."""
    refs = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{prefix}{n}"
        for n, e in enumerate(bundle["entry"])
    }
    entries = []
    for entry in bundle["entry"]:
        resource: Any = entry["resource"]
        for old, new in refs.items():
            resource = rewrite_references(resource, old, new)
        resource = {**resource, "id": refs[entry["fullUrl"]].split("/")[1]}
        mode = "match" if is_session_procedure(resource, SYS) else "include"
        if resource["resourceType"] not in drop:
            entries.append({"resource": resource, "search": {"mode": mode}})
    return entries


def mapped(path: Path, **changes: Any) -> tuple[Any, dict[str, Any]]:
    record = load_record({**json.loads(path.read_text()), **changes})
    return record, to_fhir(record, SETTINGS)


def test_pull_query_is_decision_11() -> None:
    params = pull_query(SYS, base=CANON, patient_mrn="M,1", clinic_id="C1", since="2025-01-01")
    assert params[:3] == [
        ("identifier", f"{SYS.session}|"),
        ("patient.identifier", f"{CANON}/sid/clinic/C1/mrn|M\\,1"),
        ("_lastUpdated", "ge2025-01-01"),
    ]
    assert ("_include:iterate", "Encounter:service-provider") in params
    assert {v for k, v in params if k == "_revinclude"} == {
        "Observation:part-of",
        "Procedure:part-of",
    }
    assert {v for k, v in params if k == "_include"} == {
        "Procedure:encounter",
        "Procedure:reason-reference",
        "Procedure:patient",
        "Procedure:performer",
    }


def test_pull_follows_paging_and_yields_a_failing_session_as_an_error(server, client) -> None:
    first, bundle_a = mapped(EXAMPLE)
    _, bundle_b = mapped(EXAMPLES / "good-01-lateral-epicondylitis-graston.json")
    page2_url = f"{BASE}?_getpages=abc&_getpagesoffset=1"
    server.add(
        responses.GET,
        f"{BASE}/Procedure",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": as_searchset(bundle_a, "a"),
            "link": [{"relation": "next", "url": page2_url}],
        },
    )
    page2 = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": as_searchset(bundle_b, "b", drop=("Patient",)),
    }
    server.add(responses.GET, page2_url, json=page2)
    results = list(pull_records(client, clinic_id="RBPT-01"))
    assert len(results) == 2
    assert canonical_for_roundtrip(results[0]) == canonical_for_roundtrip(first)
    error = results[1]
    assert isinstance(error, PullError)
    assert error.session_id == "RBPT-2025-000311"
    assert error.to_json()["error"]["issue"][0]["severity"] == "error"


def test_pull_leaves_out_children_retracted_by_a_later_version(server, client) -> None:
    record, bundle = mapped(EXAMPLE, record_version=3)
    entries = as_searchset(bundle, "x")
    [post] = [
        e["resource"]
        for e in entries
        if any(i["value"].endswith("/obs/pain-post") for i in e["resource"].get("identifier", []))
    ]
    stale = json.loads(json.dumps(post))
    stale["id"] = "stale-1"
    stale["identifier"][0]["value"] += "-v1"
    for ext in stale["extension"]:
        if ext["url"] == SYS.version_ext:
            ext["valuePositiveInt"] = 1
    entries.append({"resource": stale, "search": {"mode": "include"}})
    server.add(
        responses.GET,
        f"{BASE}/Procedure",
        json={"resourceType": "Bundle", "type": "searchset", "entry": entries},
    )
    [pulled] = pull_records(client, session_id=record.session_id)
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(record)


def test_push_and_pull_import_no_edge_library() -> None:
    """push/pull take the client as a parameter: importing them loads no HTTP, DB or web library."""
    import subprocess
    import sys

    code = (
        "import sys, fhir_iastm.sync.push, fhir_iastm.sync.pull\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'flask', 'sqlalchemy', 'click')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
