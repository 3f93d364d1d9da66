"""Shared by the facade's client and oracle tests: one run's records, the app served for real.

``run_records(run)`` builds the records of one test run from the good examples: five patients of
two clinics (unique clinic ids, MRNs and NPIs per run, so a shared server's other data never
matches), eight sessions with their own dates and UTC offsets (one at +13:45, whose local date is
a day after its UTC date; one at -09:30), all three record statuses, and a second version of one
session that drops its PROM Observation (a retraction).

``serve(app)`` runs a Flask app on 127.0.0.1 with werkzeug's threaded server, as a real client
sees it: over TCP, with absolute links built from the request.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from tests.strategies import example, random_npi

SID = "https://iastm.example.org/fhir/sid/"
SESSION_SYSTEM = SID + "iastm-session"
RESOURCE_SYSTEM = SID + "iastm-session-resource"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
CLINIC_SYSTEM = SID + "clinic"
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})$")


def mrn_system(clinic_id: str) -> str:
    """The identifier system of a clinic's MRNs."""
    return f"{SID}clinic/{clinic_id}/mrn"


@dataclass(frozen=True)
class Person:
    """A patient of the run (key: its index)."""

    clinic: int
    family: str
    given: tuple[str, ...]
    birth_date: str
    gender: str


#: The run's patients: accents, a hyphen and an apostrophe for the string searches.
PATIENTS = (
    Person(0, "Alvarez", ("Maria", "Elena"), "1969-09-30", "female"),
    Person(0, "Álvarez-Ruiz", ("José",), "1980-01-15", "male"),
    Person(1, "Nguyen", ("Thi", "Mai"), "1955-12-01", "female"),
    Person(0, "O'Brien", ("Sean",), "1992-07-04", "male"),
    Person(1, "Alvarado", ("Ana",), "1969-09-30", "other"),
)
CLINIC_NAMES = ("Riverbend Physical Therapy", "Lakeside Sports Rehab")
#: (example, patient index, therapist index, UTC offset replacing the example's or None).
SESSIONS = (
    ("good-01", 0, 0, None),
    ("good-02", 0, 1, None),
    ("good-03", 1, 0, "+13:45"),
    ("good-04", 1, 1, None),
    ("good-05", 2, 0, "-09:30"),
    ("good-06", 2, 1, "+05:30"),
    ("good-07", 0, 0, None),
    ("good-08", 3, 0, None),
    ("good-02", 4, 1, "Z"),
)


@dataclass
class Run:
    """One test run's identities and records (``records``: in the order they are stored)."""

    run: str
    clinic_ids: tuple[str, str]
    clinic_npis: tuple[str, str]
    therapist_npis: tuple[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)

    def mrn(self, patient: int) -> str:
        return f"MRN-{self.run}-{patient}"

    def patient_identifier(self, patient: int) -> str:
        """``system|value`` of a patient's MRN."""
        return f"{mrn_system(self.clinic_ids[PATIENTS[patient].clinic])}|{self.mrn(patient)}"

    def session_id(self, index: int) -> str:
        return f"FV-{self.run}-S{index}"

    @property
    def patient_count(self) -> int:
        return len(PATIENTS)


def _reoffset(node: Any, offset: str) -> Any:
    """Every date-time string shown with ``offset`` instead of its own (same local clock time)."""
    if isinstance(node, dict):
        return {k: _reoffset(v, offset) for k, v in node.items()}
    if isinstance(node, list):
        return [_reoffset(v, offset) for v in node]
    if isinstance(node, str) and (m := _DATETIME.match(node)):
        return m.group(1) + offset
    return node


def new_run() -> Run:
    """A run with fresh identities and its records (version 2 of session 1 last)."""
    run = uuid.uuid4().hex[:8].upper()
    data = Run(run, (f"FVA{run}", f"FVB{run}"), (random_npi(), random_npi()),
               (random_npi(), random_npi()))
    for index, (name, patient, therapist, offset) in enumerate(SESSIONS):
        data.records.append(_record(data, index, name, patient, therapist, offset))
    # Session 6 is stored completed first, then as good-07 says: entered in error (version 2).
    wrong = data.records[6]
    data.records[6] = first = copy.deepcopy(wrong)
    first.update(record_version=1, status="completed",
                 instruments=example("good-01")["instruments"])
    del first["status_reason"], first["last_modified"]
    second = copy.deepcopy(data.records[1])
    second["record_version"] = 2
    del second["outcome_measures"]
    second["recorded_at"] = second["recorded_at"].replace("T15:00:00", "T15:30:00")
    data.records += [second, wrong]
    return data


def _record(data: Run, index: int, name: str, patient: int, therapist: int,
            offset: str | None) -> dict[str, Any]:
    record = example(name)
    if offset is not None:
        record = _reoffset(record, offset)
    person = PATIENTS[patient]
    record["session_id"] = data.session_id(index)
    record["clinic"]["clinic_id"] = data.clinic_ids[person.clinic]
    record["clinic"]["npi"] = data.clinic_npis[person.clinic]
    record["clinic"]["name"] = CLINIC_NAMES[person.clinic]
    record["patient"] = {"mrn": data.mrn(patient), "family_name": person.family,
                         "given_names": list(person.given), "birth_date": person.birth_date,
                         "gender": person.gender}
    record["therapist"]["npi"] = data.therapist_npis[therapist]
    record["therapist"]["family_name"] = ("Ortega", "Kowalski")[therapist]
    record["therapist"]["given_names"] = [("Luis", "Anna")[therapist]]
    for condition in record.get("conditions") or []:
        condition["condition_id"] = f"DX-{data.run}-{index}-{condition['condition_id'][-2:]}"
    return record


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields the FHIR base URL (no slash)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def live_facade(folder: Path, run: Run, database_url: str | None = None) -> Iterator[str]:
    """The app on ``database_url`` (default: SQLite in ``folder``) served for real, holding the
    run's records stored through ``POST /api/sessions``; yields its FHIR base URL."""
    from fhir_iastm.api import create_app
    from fhir_iastm.config import Settings

    app = create_app(Settings.from_env(
        {"IASTM_DATABASE_URL": database_url or f"sqlite:///{folder}/facade.db"}))
    try:
        with serve(app) as base:
            store_records(base, run.records)
            yield base
    finally:
        app.extensions["fhir_iastm"].store.close()


def store_records(base_url: str, records: list[dict[str, Any]]) -> None:
    """POST each record to ``/api/sessions`` of the service at ``base_url`` (its ``/fhir``)."""
    root = base_url.removesuffix("/fhir")
    with requests.Session() as http:
        for record in records:
            response = http.post(f"{root}/api/sessions", json=record, timeout=30)
            assert response.status_code == 201, (record["session_id"], response.text[:500])


def entries(bundle: dict[str, Any], mode: str | None = None) -> list[dict[str, Any]]:
    """A searchset's resources (``mode``: only entries of that ``search.mode``)."""
    return [e["resource"] for e in bundle.get("entry") or []
            if mode is None or (e.get("search") or {}).get("mode", "match") == mode]


def identifier_values(resource: dict[str, Any], system: str | None = None) -> set[str]:
    """A resource's identifier values (of one system, if given)."""
    return {i["value"] for i in resource.get("identifier") or []
            if system is None or i.get("system") == system}




def expected_resources(run: Run) -> dict[str, list[dict[str, Any]]]:
    """What a server holding the run's records must serve, by type: the mapped resources of each
    session's newest version (shared resources once), independent of any server."""
    from fhir_iastm.mapping import MappingSettings, to_fhir
    from fhir_iastm.records import load_record

    newest: dict[str, dict[str, Any]] = {}
    for record in run.records:
        newest[record["session_id"]] = record
    out: dict[str, dict[frozenset[str], dict[str, Any]]] = {}
    for record in newest.values():
        for entry in to_fhir(load_record(record), MappingSettings())["entry"]:
            resource = entry["resource"]
            out.setdefault(resource["resourceType"], {})[business_key(resource)] = resource
    return {rtype: list(found.values()) for rtype, found in out.items()}


def business_key(resource: dict[str, Any]) -> frozenset[str]:
    """A resource's identity on any server: its identifiers as ``system|value``."""
    return frozenset(f"{i.get('system', '')}|{i['value']}" for i in resource["identifier"])


def push_records(base_url: str, records: list[dict[str, Any]]) -> None:
    """Push the records, in order, to a FHIR server with the project's own push (``push_many``)."""
    from fhir_iastm.records import load_record
    from fhir_iastm.service import make_client, push_many

    client = make_client(base_url)
    for record, outcome in push_many(client, [load_record(r) for r in records]):
        status = getattr(outcome, "status", outcome)
        assert status == "pushed", (record.session_id, outcome)


def identity_tokens(run: Run) -> dict[str, list[str]]:
    """One ``system|value`` per resource the run ever emitted (every record version), by type:
    what scopes a search to the run's resources on a server that holds other data too."""
    from fhir_iastm.mapping import MappingSettings, to_fhir
    from fhir_iastm.records import load_record

    systems = (RESOURCE_SYSTEM, NPI_SYSTEM, CLINIC_SYSTEM, *(mrn_system(c) for c in run.clinic_ids))
    out: dict[str, list[str]] = {}
    for record in run.records:
        for entry in to_fhir(load_record(record), MappingSettings())["entry"]:
            resource = entry["resource"]
            token = next(f"{i['system']}|{i['value']}" for i in resource["identifier"]
                         if i["system"] in systems)
            found = out.setdefault(resource["resourceType"], [])
            if token not in found:
                found.append(token)
    return out


def retracted_keys(run: Run) -> set[frozenset[str]]:
    """Resources an older record version emitted that the newest no longer does."""
    from fhir_iastm.mapping import MappingSettings, to_fhir
    from fhir_iastm.records import load_record

    current = {business_key(r) for found in expected_resources(run).values() for r in found}
    ever = {business_key(e["resource"]) for record in run.records
            for e in to_fhir(load_record(record), MappingSettings())["entry"]}
    return ever - current


__all__ = ["CLINIC_SYSTEM", "NPI_SYSTEM", "PATIENTS", "RESOURCE_SYSTEM", "SESSION_SYSTEM", "Run",
           "business_key", "entries", "expected_resources", "identifier_values",
           "identity_tokens", "live_facade", "mrn_system", "new_run", "push_records",
           "retracted_keys", "serve", "store_records"]
