"""The FHIR facade served from the database (R4 http.html, search.html), on SQLite and on the real
PostgreSQL: versions and history, conditional reads, 410, search features, links, paging."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"
GOOD = sorted(EXAMPLES.glob("good-*.json"))
SESSION = "https://iastm.example.org/fhir/sid/iastm-session"
STRICT = {"Prefer": "handling=strict"}


def good(name: str) -> dict[str, Any]:
    return json.loads(next(p for p in GOOD if name in p.name).read_text())


@pytest.fixture
def client(app_for: Callable[..., Any]) -> FlaskClient:
    client = app_for().test_client()
    for path in GOOD:
        assert client.post("/api/sessions", json=json.loads(path.read_text())).status_code == 201
    return client


def bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "Bundle"
    return body  # type: ignore[no-any-return]


def matches(response: Any) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle(response).get("entry", [])
            if e["search"]["mode"] == "match"]


def outcome(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(i.get("diagnostics", "") for i in body["issue"])


def procedure_of(client: FlaskClient, session_id: str) -> dict[str, Any]:
    (found,) = matches(client.get(f"/fhir/Procedure?identifier={SESSION}|{session_id}"))
    return found


# --- versions, history, conditional reads, 410 --------------------------------------------------

def test_read_carries_version_and_answers_conditional_reads(client: FlaskClient) -> None:
    proc = procedure_of(client, good("good-01")["session_id"])
    assert proc["meta"]["versionId"] == "1"
    assert proc["meta"]["lastUpdated"].endswith("Z")
    url = f"/fhir/Procedure/{proc['id']}"
    first = client.get(url)
    assert first.headers["ETag"] == 'W/"1"'
    assert first.headers["Last-Modified"]
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"2"'}).status_code == 200
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    earlier = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": later}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get(f"{url}/_history/1").get_json()["id"] == proc["id"]
    outcome(client.get(f"{url}/_history/9"), 404)
    outcome(client.get("/fhir/Procedure/nope"), 404)


def test_dropped_resource_is_gone_with_history(client: FlaskClient) -> None:
    record = good("good-06")
    rom = [o for o in matches(client.get("/fhir/Observation?_count=500"))
           if any(i["value"].startswith(f"{record['session_id']}/obs/rom")
                  for i in o["identifier"])]
    assert len(rom) > 1
    newer = copy.deepcopy(record) | {"record_version": record["record_version"] + 1}
    newer["rom"] = newer["rom"][:1]
    assert client.post("/api/sessions", json=newer).status_code == 201
    gone = [o for o in rom if client.get(f"/fhir/Observation/{o['id']}").status_code == 410]
    assert len(gone) == len(rom) - 1
    url = f"/fhir/Observation/{gone[0]['id']}"
    assert "retracted" in outcome(client.get(url), 410)
    hist = bundle(client.get(f"{url}/_history"))
    assert hist["type"] == "history"
    assert hist["total"] == 2
    assert hist["entry"][0]["request"]["method"] == "DELETE"
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410
    kept = procedure_of(client, record["session_id"])  # re-emitted with new content: version 2
    assert kept["meta"]["versionId"] == "2"
    assert all(o["id"] not in {g["id"] for g in gone}
               for o in matches(client.get("/fhir/Observation?_count=500")))


def test_a_later_version_that_changes_a_value_is_served_amended(client: FlaskClient) -> None:
    """issue 10 #9: the facade shows R4 ``amended`` for a value a later version changed."""
    record = good("good-01")
    newer = copy.deepcopy(record) | {"record_version": record["record_version"] + 1}
    newer["pain"] = dict(newer["pain"], post=newer["pain"]["post"] + 1)
    assert client.post("/api/sessions", json=newer).status_code == 201
    sid = record["session_id"]
    found = matches(client.get("/fhir/Observation?_count=500"))
    statuses = {i["value"]: o["status"] for o in found for i in o["identifier"]
                if i["value"].startswith(f"{sid}/obs/")}
    assert statuses[f"{sid}/obs/pain-post"] == "amended"
    assert statuses[f"{sid}/obs/pain-pre"] == "final"


def test_shared_patient_carries_the_newest_record(client: FlaskClient, app_for: Any) -> None:
    base = good("good-01")
    newest = copy.deepcopy(base) | {"session_id": "RBPT-2025-900001",
                                    "recorded_at": "2030-01-01T00:00:00Z"}
    newest["patient"]["family_name"] = "Newer"
    older = copy.deepcopy(base) | {"session_id": "RBPT-2025-900002",
                                   "recorded_at": "2020-01-01T00:00:00Z"}
    older["patient"]["family_name"] = "Older"
    for record in (newest, older):  # the older one arrives last and must not win
        assert client.post("/api/sessions", json=record).status_code == 201
    (patient,) = matches(client.get(f"/fhir/Patient?identifier={base['patient']['mrn']}"))
    assert patient["name"][0]["family"] == "Newer"
    assert patient["meta"]["versionId"] == "2"
    assert matches(client.get("/fhir/Patient?family=older")) == []
    other = app_for().test_client()  # another process on the same database answers alike
    assert other.get(f"/fhir/Patient/{patient['id']}").get_json() == patient


# --- search ----------------------------------------------------------------------------------

def test_token_reference_date_and_chain_searches(client: FlaskClient) -> None:
    record = good("good-01")
    proc = procedure_of(client, record["session_id"])
    patient_id = proc["subject"]["reference"].split("/")[1]
    pain = matches(client.get("/fhir/Observation?code=72514-3&_count=500"))
    either = matches(client.get("/fhir/Observation?code=72514-3,38208-5&_count=500"))
    assert pain
    assert len(either) >= len(pain)
    assert matches(client.get("/fhir/Observation?code=http://loinc.org|&_count=500"))
    assert matches(client.get("/fhir/Observation?code=|72514-3")) == []
    notpain = matches(client.get("/fhir/Observation?code:not=72514-3&_count=500"))
    assert not {o["id"] for o in notpain} & {o["id"] for o in pain}
    by_ref = {p["id"] for p in matches(client.get(f"/fhir/Procedure?patient={patient_id}"))}
    for value in (f"Patient/{patient_id}", f"http://localhost/fhir/Patient/{patient_id}",
                  f"Patient/{patient_id}/_history/1"):
        assert {p["id"] for p in matches(client.get(f"/fhir/Procedure?patient={value}"))} \
            == by_ref
    chained = matches(client.get(f"/fhir/Procedure?patient.identifier={record['patient']['mrn']}"))
    assert {p["id"] for p in chained} == by_ref
    assert proc["id"] in by_ref
    day = record["session"]["start"][:16] + record["session"]["start"][19:]  # minute precision
    at = matches(client.get("/fhir/Procedure", query_string={
        "date": f"le{day}", "identifier": f"{SESSION}|{record['session_id']}"}))
    assert [p["id"] for p in at] == [proc["id"]]
    assert matches(client.get("/fhir/Procedure?date=lt1990-01-01")) == []
    assert matches(client.get("/fhir/Procedure?status=completed&_count=1"))
    assert matches(client.get("/fhir/Condition?clinical-status=active&_count=1"))
    assert matches(client.get("/fhir/Patient?family:exact=nguyen")) == []
    assert matches(client.get("/fhir/Patient?family:exact=Nguyen"))
    assert matches(client.get("/fhir/Patient?given:contains=HOM"))
    missing = matches(client.get("/fhir/Procedure?part-of:missing=false&_count=500"))
    assert missing
    assert all("partOf" in p for p in missing)


def test_sort_include_revinclude_summary_elements_total(client: FlaskClient) -> None:
    dated = matches(client.get("/fhir/Procedure?_sort=-date&_count=500"))
    starts = [(p.get("performedPeriod") or {}).get("start") for p in dated]
    dates = [s for s in starts if s]
    assert starts == dates + [None] * (len(starts) - len(dates))  # no date: last
    assert dates == sorted(dates, key=lambda s: datetime.fromisoformat(s), reverse=True)
    body = bundle(client.get("/fhir/Procedure?_include=Procedure:patient&_count=3"))
    included = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "include"]
    refs = {e["resource"]["subject"]["reference"] for e in body["entry"]
            if e["search"]["mode"] == "match"}
    assert {f"Patient/{p['id']}" for p in included} == refs
    rev = bundle(client.get(f"/fhir/Patient?identifier={good('good-01')['patient']['mrn']}"
                            "&_revinclude=Procedure:patient"))
    assert {e["resource"]["resourceType"] for e in rev["entry"]} == {"Patient", "Procedure"}
    summary = matches(client.get("/fhir/Procedure?_summary=true&_count=1"))[0]
    assert "note" not in summary
    assert "SUBSETTED" in json.dumps(summary["meta"])
    elements = matches(client.get("/fhir/Procedure?_elements=status&_count=1"))[0]
    assert set(elements) == {"resourceType", "id", "meta", "status"}
    count = bundle(client.get("/fhir/Procedure?_summary=count"))
    assert count["total"] > 0
    assert "entry" not in count
    assert "total" not in bundle(client.get("/fhir/Procedure?_total=none"))
    pretty = client.get("/fhir/Procedure?_count=1&_pretty=true").get_data(as_text=True)
    assert "\n  " in pretty


def test_lenient_reports_and_strict_rejects_unknown_parameters(client: FlaskClient) -> None:
    body = bundle(client.get("/fhir/Procedure?foo=1&_count=1"))
    (report,) = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert "foo" in json.dumps(report["resource"])
    assert "'foo'" in outcome(client.get("/fhir/Procedure?foo=1", headers=STRICT), 400)
    assert "'date'" in outcome(client.get("/fhir/Procedure?date=2025-13"), 400)
    assert "'code:contains'" in outcome(client.get("/fhir/Procedure?code:contains=x"), 400)


def test_negotiation_and_methods(client: FlaskClient) -> None:
    outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    outcome(client.get("/fhir/Procedure?_format=xml"), 406)
    outcome(client.get("/fhir/Procedure", headers={
        "Accept": "application/fhir+json; fhirVersion=3.0"}), 406)
    assert client.get("/fhir/Procedure", headers={
        "Accept": "application/fhir+json; fhirVersion=4.0"}).status_code == 200
    assert client.get("/fhir/Procedure?_format=json").status_code == 200
    response = client.delete("/fhir/Procedure/x")
    outcome(response, 405)
    assert "GET" in response.headers["Allow"]


def test_capability_statement_states_what_is_implemented(client: FlaskClient) -> None:
    cs = client.get("/fhir/metadata").get_json()
    rest = cs["rest"][0]
    assert rest["security"]["description"]
    proc = next(r for r in rest["resource"] if r["type"] == "Procedure")
    assert {i["code"] for i in proc["interaction"]} == {"read", "vread", "history-instance",
                                                        "search-type"}
    assert proc["versioning"] == "versioned"
    assert "Procedure:reason-reference" in \
        proc["searchInclude"]
    names = {p["name"]: p for p in proc["searchParam"]}
    assert names["date"]["definition"] == "http://hl7.org/fhir/SearchParameter/clinical-date"
    condition = next(r for r in rest["resource"] if r["type"] == "Condition")
    assert "date" not in {p["name"] for p in condition["searchParam"]}
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert "Procedure:patient" in patient["searchRevInclude"]


def test_conformance_search_honours_url_and_name(client: FlaskClient) -> None:
    sd = client.get("/fhir/StructureDefinition/iastm-procedure").get_json()
    by_url = matches(client.get("/fhir/StructureDefinition", query_string={"url": sd["url"]}))
    assert [r["id"] for r in by_url] == ["iastm-procedure"]
    by_name = matches(client.get("/fhir/StructureDefinition", query_string={"name": sd["name"]}))
    assert [r["id"] for r in by_name] == ["iastm-procedure"]
    assert matches(client.get("/fhir/StructureDefinition?url=http://nope")) == []


# --- links and paging --------------------------------------------------------------------------

def test_links_are_absolute_encoded_and_honour_the_public_base(app_for: Any) -> None:
    app = app_for()
    client = app.test_client()
    for path in GOOD:
        client.post("/api/sessions", json=json.loads(path.read_text()))
    body = bundle(client.get("/fhir/Procedure", query_string={"_count": "1", "status":
                                                              "completed,a&b"}))
    nxt = next(link["url"] for link in body["link"] if link["relation"] == "next")
    assert nxt.startswith("http://localhost/fhir/Procedure?")
    assert parse_qs(urlsplit(nxt).query)["status"] == ["completed,a&b"]
    prefixed = client.get("/fhir/Procedure?_count=1", base_url="http://localhost/iastm/")
    assert bundle(prefixed)["entry"][0]["fullUrl"].startswith("http://localhost/iastm/fhir/")
    forwarded = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    assert "evil" not in json.dumps(bundle(client.get("/fhir/Procedure?_count=1",
                                                      headers=forwarded))["link"])
    trusting = app_for(IASTM_TRUSTED_PROXIES="1").test_client()
    assert bundle(trusting.get("/fhir/Procedure?_count=1", headers=forwarded))["link"][0][
        "url"].startswith("https://evil.example/fhir/")
    public = app_for(IASTM_PUBLIC_BASE_URL="https://ehr.example.org/iastm/fhir/").test_client()
    body = bundle(public.get("/fhir/Procedure?_count=1", headers={"Host": "other"}))
    assert all(link["url"].startswith("https://ehr.example.org/iastm/fhir/Procedure?")
               for link in body["link"])
    assert body["entry"][0]["fullUrl"].startswith("https://ehr.example.org/iastm/fhir/")


def _pages(client: FlaskClient, url: str, between: Callable[[int], None]) -> list[str]:
    ids: list[str] = []
    page = 0
    while url:
        body = bundle(client.get(url.replace("http://localhost", "")))
        ids += [e["resource"]["id"] for e in body.get("entry", [])]
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), "")
        between(page)
        page += 1
    return ids


@pytest.mark.parametrize("sort", ["", "&_sort=date", "&_sort=-_lastUpdated"])
def test_paging_is_stable_under_concurrent_writes(client: FlaskClient, sort: str) -> None:
    before = {p["id"] for p in matches(client.get("/fhir/Procedure?_count=500"))}
    base = good("good-02")

    def write(page: int) -> None:  # a new session and a new version of an old one per page
        new = copy.deepcopy(base) | {"session_id": f"RBPT-2025-95{page:04d}{len(sort)}"}
        assert client.post("/api/sessions", json=new).status_code == 201

    ids = _pages(client, f"/fhir/Procedure?_count=3{sort}", write)
    assert len(ids) == len(set(ids)), "an entry was repeated"
    if "_lastUpdated" not in sort:  # updated entries move under a _lastUpdated sort
        assert before <= set(ids), "an entry was skipped"
