"""push_record / pull_records against the real local HAPI FHIR server (``scripts/hapi start``).

HAPI keeps its state for the whole run, so every test derives its own variants of the examples:
session ids, MRNs, clinic ids and NPIs get a fresh suffix, and every count is made by identifier.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.mapping import canonical_for_roundtrip
from fhir_iastm.mapping.effect import effect_role
from fhir_iastm.mapping.procedure import is_expected_finding
from fhir_iastm.mapping.ids import fhir_escape
from fhir_iastm.records.model import SessionRecord
from fhir_iastm.sync.pull import PullError, pull_records
from fhir_iastm.sync.push import PushOutcome, push_record
from fhir_iastm.sync.bundle_ops import Systems
from fhir_iastm.records import load_record
from tests.strategies import random_npi as npi

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parent.parent / "data" / "examples"
GOOD = sorted(EXAMPLES.glob("good-*.json"))
CANON = "https://iastm.example.org/fhir"
SYS = Systems.of(CANON)
NPI = "http://hl7.org/fhir/sid/us-npi"


class CountingSession(requests.Session):
    """A real session that counts the HTTP methods it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(method)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def counting() -> CountingSession:
    return CountingSession()


@pytest.fixture
def client(hapi_base_url: str, counting: CountingSession) -> FhirClient:
    return FhirClient(hapi_base_url, session=counting, retry=RetryPolicy(max_attempts=4))


def variant(
    path: Path, tag: str | None = None, *, shared: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    """An example with a fresh session id, MRN, clinic id and NPIs.

    ``shared``: another variant whose clinic, patient and therapist are copied (the same people:
    shared resources are matched, never overwritten, so their details must agree).
    """
    data = json.loads(path.read_text())
    tag = tag or uuid.uuid4().hex[:10]
    data["session_id"] = f"{data['session_id']}-{tag}"
    if shared is not None:
        for party in ("clinic", "patient", "therapist"):
            data[party] = json.loads(json.dumps(shared[party]))
    else:
        data["patient"]["mrn"] = f"MRN-{tag}"
        data["clinic"]["clinic_id"] = f"CL-{tag}"
        data["clinic"]["npi"] = npi()
        data["therapist"]["npi"] = npi()
    data.update(changes)
    return data


def people_of(data: dict[str, Any]) -> dict[str, str]:
    return {
        "mrn": data["patient"]["mrn"],
        "clinic": data["clinic"]["clinic_id"],
        "org_npi": data["clinic"]["npi"],
        "pt_npi": data["therapist"]["npi"],
    }


def expected_owned(record: SessionRecord) -> dict[str, str]:
    """docs/push.md#one-transaction/docs/decisions.md#identifiers from the record alone:
    session-owned identifier value -> type."""
    sid = record.session_id
    out = {f"{sid}/encounter": "Encounter", f"{sid}/procedure": "Procedure"}
    out |= {f"{sid}/condition/{c.condition_id}": "Condition" for c in record.conditions}
    out |= {f"{sid}/adjunct/{a.type}": "Procedure" for a in record.adjunct_therapies}
    if record.pain and record.status != "cancelled":
        out |= {
            f"{sid}/obs/pain-{t}": "Observation"
            for t in ("pre", "post")
            if getattr(record.pain, t) is not None
        }
    out |= {f"{sid}/obs/rom/{r.key}": "Observation" for r in record.rom}
    out |= {f"{sid}/obs/prom/{m.instrument}": "Observation" for m in record.outcome_measures}
    if record.status != "cancelled":  # expected mild effects are findings (docs/clinical.md)
        out |= {
            f"{sid}/{effect_role(record, e)}": "Observation"
            for e in record.adverse_effects
            if is_expected_finding(e)
        }
    if record.screening is not None:  # schema 2.0 (docs/clinical.md#screening)
        out[f"{sid}/obs/screening"] = "Observation"
    return out


def count(client: FhirClient, rtype: str, system: str, value: str) -> int:
    return client.count(rtype, [("identifier", f"{system}|{fhir_escape(value)}")])


def find(client: FhirClient, rtype: str, system: str, value: str) -> list[dict[str, Any]]:
    page = client.search(rtype, [("identifier", f"{system}|{fhir_escape(value)}")])
    return [e["resource"] for e in page.get("entry") or []]


def session_census(client: FhirClient, record: SessionRecord) -> dict[str, int]:
    """How many resources the server holds per identifier and per Encounter (nothing extra)."""
    census = {
        value: count(client, rtype, SYS.resource, value)
        for value, rtype in expected_owned(record).items()
    }
    census["session"] = count(client, "Procedure", SYS.session, record.session_id)
    [encounter] = find(client, "Encounter", SYS.resource, f"{record.session_id}/encounter")
    for rtype in ("Observation", "Procedure", "Condition"):
        census[f"{rtype}?encounter"] = client.count(
            rtype, [("encounter", f"Encounter/{encounter['id']}")]
        )
    return census


def shared_census(client: FhirClient, people: dict[str, str]) -> tuple[int, int, int]:
    return (
        count(client, "Patient", f"{CANON}/sid/clinic/{people['clinic']}/mrn", people["mrn"]),
        count(client, "Practitioner", NPI, people["pt_npi"]),
        count(client, "Organization", f"{CANON}/sid/clinic", people["clinic"]),
    )


def assert_lands_exactly(client: FhirClient, record: SessionRecord) -> dict[str, int]:
    census = session_census(client, record)
    owned = expected_owned(record)
    assert {k: census[k] for k in owned} == dict.fromkeys(owned, 1), record.session_id
    assert census["session"] == 1
    types = list(owned.values())
    assert census["Observation?encounter"] == types.count("Observation")
    assert census["Procedure?encounter"] == types.count("Procedure")
    assert census["Condition?encounter"] == types.count("Condition")
    assert shared_census(client, people_of_record(record)) == (1, 1, 1)
    return census


def people_of_record(record: SessionRecord) -> dict[str, str]:
    return {
        "mrn": record.patient.mrn,
        "clinic": record.clinic.clinic_id,
        "org_npi": record.clinic.npi,
        "pt_npi": record.therapist.npi,
    }


def in_threads(
    fn: Callable[[Any], PushOutcome], items: list[Any], workers: int = 4
) -> list[PushOutcome]:
    barrier = threading.Barrier(workers)

    def run(chunk: list[Any]) -> list[PushOutcome]:
        barrier.wait(timeout=30)
        return [fn(item) for item in chunk]

    chunks = [items[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return [o for part in pool.map(run, chunks) for o in part]


def test_every_good_example_lands_once_and_repushes_change_nothing(
    client: FhirClient, hapi_base_url: str
) -> None:
    records = [load_record(variant(p)) for p in GOOD]
    outcomes = [push_record(client, r) for r in records]
    assert [o.status for o in outcomes] == [
        "unchanged" if r.status == "entered-in-error" else "pushed" for r in records
    ]
    landed = {
        r.session_id: assert_lands_exactly(client, r)
        for r in records
        if r.status != "entered-in-error"
    }
    assert [o.status for o in (push_record(client, r) for r in records)] == ["unchanged"] * len(
        records
    )
    # again, concurrently, each record from 4 threads at once (one client per thread)
    clients = [FhirClient(hapi_base_url) for _ in range(4)]
    racing = in_threads(
        lambda pair: push_record(clients[pair[0]], pair[1]),
        [(t, r) for r in records for t in range(4)],
    )
    assert {o.status for o in racing} == {"unchanged"}
    assert {
        r.session_id: session_census(client, r) for r in records if r.status != "entered-in-error"
    } == landed


def test_first_push_of_the_same_sessions_from_4_threads_creates_no_duplicate(
    hapi_base_url: str,
) -> None:
    records = [load_record(variant(p)) for p in GOOD if "entered-in-error" not in p.name]
    clients = [FhirClient(hapi_base_url) for _ in range(4)]
    outcomes = in_threads(
        lambda pair: push_record(clients[pair[0]], pair[1]),
        [(t, r) for r in records for t in range(4)],
    )
    failed = [o.to_json() for o in outcomes if o.status not in ("pushed", "unchanged")]
    assert not failed, json.dumps(failed)[:3000]
    for record in records:
        assert_lands_exactly(clients[0], record)


def test_two_sessions_of_one_patient_pushed_concurrently_share_the_parties(
    hapi_base_url: str,
) -> None:
    for _ in range(3):
        first = variant(GOOD[0])
        second = variant(GOOD[4], shared=first)
        clients = [FhirClient(hapi_base_url) for _ in range(2)]
        outcomes = in_threads(
            lambda pair, pool=clients: push_record(pool[pair[0]], load_record(pair[1])),
            [(0, first), (1, second)],
            workers=2,
        )
        assert [o.status for o in outcomes] == ["pushed", "pushed"]
        assert shared_census(clients[0], people_of(first)) == (1, 1, 1)


def _amended(data: dict[str, Any]) -> dict[str, Any]:
    """good-06 version 2: drops one Condition, one ROM, the PROM, one adjunct, the post pain."""
    new = json.loads(json.dumps(data))
    new["record_version"] = data["record_version"] + 1
    new["conditions"] = [c for c in data["conditions"] if c["condition_id"] != "DX-100934-03"]
    new["rom"] = [r for r in data["rom"] if r["motion"] != "extension"]
    del new["outcome_measures"]
    new["adjunct_therapies"] = [a for a in data["adjunct_therapies"] if a["type"] == "stretching"]
    new["pain"] = {"scale": "NRS-11", "pre": 6}
    new["notes"] = "amended"
    return new


@pytest.mark.parametrize("history", ["local-diff", "server-search"])
def test_higher_version_updates_in_place_and_retracts_dropped_elements(
    client: FhirClient, counting: CountingSession, history: str
) -> None:
    v1 = variant(GOOD[5])
    first = push_record(client, load_record(v1))
    census_v1 = session_census(client, load_record(v1))
    before = {
        v: find(client, t, SYS.resource, v)[0] for v, t in expected_owned(load_record(v1)).items()
    }
    v2 = load_record(_amended(v1))
    last = first if history == "local-diff" else None
    second = push_record(client, v2, last_pushed=last)
    assert second.status == "pushed"
    dropped = set(expected_owned(load_record(v1))) - set(expected_owned(v2))
    assert len(dropped) == 5
    assert len(second.retracted) == 5
    for value, old in before.items():
        [now] = find(client, old["resourceType"], SYS.resource, value)
        assert now["id"] == old["id"], "updated in place, never re-created"
        if value in dropped:
            assert now["meta"]["versionId"] == str(int(old["meta"]["versionId"]) + 1)
            assert (
                now.get("status") == "entered-in-error"
                or now["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
            )
            assert "clinicalStatus" not in now
    [procedure] = find(client, "Procedure", SYS.session, v2.session_id)
    assert procedure["id"] == before[f"{v2.session_id}/procedure"]["id"]
    assert int(procedure["meta"]["versionId"]) > int(
        before[f"{v2.session_id}/procedure"]["meta"]["versionId"]
    )
    # nothing deleted (the dropped ones are still there, once each), nothing added
    assert session_census(client, load_record(v1)) == census_v1
    # the lower version afterwards: superseded, nothing written
    posts = counting.sent.count("POST")
    stale = push_record(client, load_record(v1))
    assert (stale.status, stale.server_version) == ("superseded", 2)
    assert counting.sent.count("POST") == posts
    [again] = find(client, "Procedure", SYS.session, v2.session_id)
    assert again["meta"]["versionId"] == procedure["meta"]["versionId"]
    [pulled] = pull_records(client, session_id=v2.session_id)
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(v2)


def test_pull_returns_every_record_equal_to_the_original(client: FhirClient) -> None:
    first = variant(GOOD[0])
    sources = [first] + [
        variant(p, shared=first) for p in GOOD[1:] if "entered-in-error" not in p.name
    ]
    shared = people_of(first)
    records = [load_record(d) for d in sources]
    for record in records:
        assert push_record(client, record).status == "pushed"
    for record in records:
        [pulled] = pull_records(client, session_id=record.session_id)
        assert not isinstance(pulled, PullError), pulled
        assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(record)
    by_patient = list(
        pull_records(client, patient_mrn=shared["mrn"], clinic_id=shared["clinic"], page_size=2)
    )
    assert not [p for p in by_patient if isinstance(p, PullError)]
    assert sorted(canonical_for_roundtrip(p)["session_id"] for p in by_patient) == sorted(
        r.session_id for r in records
    )
    originals = {r.session_id: canonical_for_roundtrip(r) for r in records}
    assert all(canonical_for_roundtrip(p) == originals[p.session_id] for p in by_patient)
    by_clinic = [p.session_id for p in pull_records(client, clinic_id=shared["clinic"])]
    assert sorted(by_clinic) == sorted(originals)
    by_mrn_only = [p.session_id for p in pull_records(client, patient_mrn=shared["mrn"])]
    assert sorted(by_mrn_only) == sorted(originals)
    since_past = pull_records(client, clinic_id=shared["clinic"], since="2000-01-01")
    assert sorted(p.session_id for p in since_past) == sorted(originals)
    assert list(pull_records(client, clinic_id=shared["clinic"], since="2999-01-01")) == []


def test_entered_in_error_session_never_pushed_sends_nothing(
    client: FhirClient, counting: CountingSession
) -> None:
    record = load_record(variant(GOOD[6]))
    assert record.status == "entered-in-error"
    outcome = push_record(client, record)
    assert (outcome.status, outcome.sent) == ("unchanged", False)
    assert "POST" not in counting.sent
    assert "PUT" not in counting.sent
    assert count(client, "Procedure", SYS.session, record.session_id) == 0
    assert shared_census(client, people_of_record(record)) == (0, 0, 0)


def test_entered_in_error_after_a_push_marks_every_resource(client: FhirClient) -> None:
    data = variant(GOOD[0])
    assert push_record(client, load_record(data)).status == "pushed"
    retraction = dict(
        data, record_version=2, status="entered-in-error", status_reason="wrong chart"
    )
    record = load_record(retraction)
    assert push_record(client, record).status == "pushed"
    for value, rtype in expected_owned(record).items():
        [now] = find(client, rtype, SYS.resource, value)
        if rtype == "Condition":
            assert now["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
            assert "clinicalStatus" not in now
        else:
            assert now["status"] == "entered-in-error", value
    [pulled] = pull_records(client, session_id=record.session_id)
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(record)


def test_cli_push_then_pull_round_trips_through_the_server(
    hapi_base_url: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from fhir_iastm.cli import main

    first = variant(GOOD[2])
    sources = [first, variant(GOOD[3], shared=first), variant(GOOD[6], shared=first)]
    files = []
    for n, data in enumerate(sources):
        files.append(tmp_path / f"r{n}.json")
        files[-1].write_text(json.dumps(data))
    runner = CliRunner()
    pushed = runner.invoke(main, ["push", "--server", hapi_base_url, *map(str, files)])
    assert pushed.exit_code == 0, pushed.output
    lines = [json.loads(x) for x in pushed.stdout.splitlines()]
    assert [(x["session_id"], x["status"]) for x in lines] == [
        (sources[0]["session_id"], "pushed"),
        (sources[1]["session_id"], "pushed"),
        (sources[2]["session_id"], "unchanged"),
    ]  # the entered-in-error one was never pushed
    people = people_of(first)
    pulled = runner.invoke(
        main,
        [
            "pull",
            "--server",
            hapi_base_url,
            "--patient",
            people["mrn"],
            "--clinic",
            people["clinic"],
        ],
    )
    assert pulled.exit_code == 0, pulled.output
    records = [load_record(json.loads(x)) for x in pulled.stdout.splitlines()]
    assert sorted(canonical_for_roundtrip(r)["session_id"] for r in records) == sorted(
        s["session_id"] for s in sources[:2]
    )
    expected = {s["session_id"]: canonical_for_roundtrip(load_record(s)) for s in sources[:2]}
    assert all(canonical_for_roundtrip(r) == expected[r.session_id] for r in records)
    repeat = runner.invoke(main, ["push", "--server", hapi_base_url, *map(str, files[:2])])
    assert [json.loads(x)["status"] for x in repeat.stdout.splitlines()] == ["unchanged"] * 2


def test_outbox_worker_pushes_versions_and_retracts_by_the_stored_diff(
    hapi_base_url: str, sqlite_store: Any
) -> None:
    from fhir_iastm.service import drain_outbox

    urls: list[str] = []

    class Recording(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            response = super().request(method, url, *args, **kwargs)
            urls.append(f"{method} {response.url}")
            return response

    client = FhirClient(hapi_base_url, session=Recording())
    v1 = variant(GOOD[5])
    sqlite_store.save_record(load_record(v1), v1, actor="test")
    assert drain_outbox(sqlite_store, client).done == {"pushed": 1}
    last = sqlite_store.last_pushed(v1["session_id"])
    assert last.record_version == 1
    assert set(last.identifiers) == {f"{SYS.resource}|{v}" for v in expected_owned(load_record(v1))}
    v2 = _amended(v1)
    sqlite_store.save_record(load_record(v2), v2, actor="test")
    urls.clear()
    assert drain_outbox(sqlite_store, client).done == {"pushed": 1}
    assert not [u for u in urls if "encounter=" in u], "local diff: no server-side search"
    for value in set(expected_owned(load_record(v1))) - set(expected_owned(load_record(v2))):
        rtype = expected_owned(load_record(v1))[value]
        [now] = find(client, rtype, SYS.resource, value)
        assert "entered-in-error" in json.dumps(now.get("status") or now.get("verificationStatus"))
    state = sqlite_store.get_sync(v1["session_id"])
    assert (state.state, state.pushed_version) == ("pushed", 2)
    [pulled] = pull_records(client, session_id=v2["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(v2))


def test_a_later_version_that_changes_a_value_sends_it_amended(client: FhirClient) -> None:
    """Issue 10 #9: push_many knows the earlier versions of the run; the changed ROM is amended."""
    from fhir_iastm.service import push_many

    v1 = variant(GOOD[5])
    v2 = json.loads(json.dumps(v1))
    v2["record_version"] = v1["record_version"] + 1
    v2["rom"][0]["degrees"] += 4
    results = list(push_many(client, [load_record(v1), load_record(v2)]))
    assert [o.status for _r, o in results] == ["pushed", "pushed"]  # type: ignore[union-attr]
    record = load_record(v2)
    statuses = {
        value: find(client, "Observation", SYS.resource, value)[0]["status"]
        for value, rtype in expected_owned(record).items()
        if rtype == "Observation"
    }
    amended = {v for v, s in statuses.items() if s == "amended"}
    assert len(amended) == 1
    assert "/obs/rom/" in next(iter(amended))
    assert set(statuses.values()) == {"final", "amended"}


def test_cli_push_streams_stdin_and_sends_a_session_s_versions_in_order(
    hapi_base_url: str
) -> None:
    """push reads its input twice (stdin spooled to disk) instead of holding every record; a
    version read before its predecessor waits for it (docs/decisions.md#d9)."""
    from click.testing import CliRunner

    from fhir_iastm.cli import main

    v1 = variant(GOOD[5])
    v2 = _amended(v1)
    other = variant(GOOD[2])
    lines = [json.dumps(v2), json.dumps(other), '{"session_id": 5}', json.dumps(v1)]
    pushed = CliRunner().invoke(main, ["push", "--server", hapi_base_url, "-"],
                                input="\n".join(lines) + "\n")
    assert pushed.exit_code == 1, pushed.output  # the invalid line
    results = [json.loads(x) for x in pushed.stdout.splitlines()]
    assert [(r["session_id"], r["record_version"], r["status"], r["input"]["line"])
            for r in results] == [(other["session_id"], other["record_version"], "pushed", 2),
                                  (v1["session_id"], 1, "pushed", 4),
                                  (v1["session_id"], 2, "pushed", 1)]
    assert all(r["input"]["file"] == "-" for r in results)
    assert "4 documents from 1 file: 1 invalid, 3 pushed" in pushed.stderr
    [pulled] = pull_records(FhirClient(hapi_base_url), session_id=v1["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(v2))


def test_cancelled_session_without_conditions_lands_and_pulls_back_lossless(
    client: FhirClient,
) -> None:
    """issue 10 #8: emit_conditions_for_cancelled off — no Condition resource on the server, the
    diagnoses contained in the Encounter, and the pull gives the record back
    (docs/decisions.md#cancelled-conditions)."""
    from fhir_iastm.mapping import MappingSettings

    settings = MappingSettings(emit_conditions_for_cancelled=False)
    [path] = [p for p in GOOD if "cancelled" in p.name]
    record = load_record(variant(path))
    assert push_record(client, record, settings=settings).status == "pushed"
    [encounter] = find(client, "Encounter", SYS.resource, f"{record.session_id}/encounter")
    assert [c["resourceType"] for c in encounter["contained"]] == ["Condition"] * len(
        record.conditions
    )
    assert [d["condition"]["reference"] for d in encounter["diagnosis"]] == [
        f"#{c['id']}" for c in encounter["contained"]
    ]
    prefix = f"{record.session_id}/condition/"
    for c in record.conditions:
        assert find(client, "Condition", SYS.resource, prefix + c.condition_id) == []
    [pulled] = pull_records(client, session_id=record.session_id, settings=settings)
    assert not isinstance(pulled, PullError), pulled
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(record)
