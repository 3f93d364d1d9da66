"""Two FHIR servers asked the same searches, answers compared by business identifier.

A query is a template, ``Procedure?patient={P0}&_include=Procedure:patient``; each server fills
the placeholders with its own logical ids, found by identifier on that server:

``{P<n>}`` patient n, ``{E<s>}`` / ``{X<s>}`` the Encounter / IASTM Procedure of session s,
``{C<s>}`` the first Condition of session s, ``{O<n>}`` / ``{T<n>}`` clinic / therapist n (their
Organization / Practitioner), ``{BASE}`` the server's base URL; and the run's own values:
``{S<s>}`` session id, ``{MRN<n>}`` a patient's ``system|value``, ``{MRNSYS<n>}`` a clinic's MRN
system, ``{NPI<n>}`` therapist NPI, ``{CLINIC<n>}`` clinic id, ``{RUN}``.

Every query is scoped to the run's resources with ``_id=`` (the run's ids of that type on that
server), because a shared server holds other data.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.facade.support import (
    CLINIC_SYSTEM,
    NPI_SYSTEM,
    RESOURCE_SYSTEM,
    SESSION_SYSTEM,
    Run,
    business_key,
    mrn_system,
)

_PLACEHOLDER = re.compile(r"\{([A-Z]+)(\d*)\}")
#: The element a date search parameter sorts by, per resource type (first one present).
SORT_ELEMENTS = {
    ("Procedure", "date"): ("performedPeriod.start", "performedDateTime"),
    ("Observation", "date"): ("effectiveDateTime", "effectivePeriod.start"),
    ("Encounter", "date"): ("period.start",),
    ("Condition", "recorded-date"): ("recordedDate",),
    ("Patient", "birthdate"): ("birthDate",),
}


@dataclass
class Answer:
    """A search's answer over all its pages (or the HTTP status of a refusal)."""

    status: int
    matches: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    pages: int = 0
    error: str = ""


class Side:
    """One server: resolves the placeholders to its ids and runs searches over every page."""

    def __init__(self, name: str, base: str, run: Run) -> None:
        self.name, self.base, self.run = name, base.rstrip("/"), run
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/fhir+json"
        self._ids: dict[str, list[str]] = {}

    def close(self) -> None:
        self.http.close()

    def find_id(self, rtype: str, token: str) -> str:
        """The logical id of the one ``rtype`` with identifier ``token`` on this server."""
        found = self.find_ids(rtype, token)
        assert len(found) == 1, (self.name, rtype, token, found)
        return found[0]

    def find_ids(self, rtype: str, token: str) -> list[str]:
        """The logical ids of the ``rtype`` resources with identifier ``token`` on this server."""
        key = f"{rtype}?{token}"
        if key not in self._ids:
            response = self.http.get(f"{self.base}/{rtype}", params={"identifier": token},
                                     timeout=60)
            response.raise_for_status()
            found = [e["resource"] for e in response.json().get("entry") or []
                     if e.get("search", {}).get("mode", "match") == "match"]
            self._ids[key] = [r["id"] for r in found]
        return self._ids[key]

    def value(self, name: str, n: str) -> str:
        """A placeholder's value on this server."""
        run = self.run
        i = int(n) if n else 0
        lookups = {
            "P": lambda: self.find_id("Patient", run.patient_identifier(i)),
            "E": lambda: self.find_id("Encounter",
                                      f"{RESOURCE_SYSTEM}|{run.session_id(i)}/encounter"),
            "X": lambda: self.find_id("Procedure", f"{SESSION_SYSTEM}|{run.session_id(i)}"),
            "C": lambda: self.find_id("Condition", f"{RESOURCE_SYSTEM}|{first_condition(run, i)}"),
            "O": lambda: self.find_id("Organization", f"{CLINIC_SYSTEM}|{run.clinic_ids[i]}"),
            "T": lambda: self.find_id("Practitioner", f"{NPI_SYSTEM}|{run.therapist_npis[i]}"),
            "BASE": lambda: self.base,
            "S": lambda: run.session_id(i),
            "MRN": lambda: run.patient_identifier(i),
            "MRNSYS": lambda: mrn_system(run.clinic_ids[i]),
            "NPI": lambda: run.therapist_npis[i],
            "CLINIC": lambda: run.clinic_ids[i],
            "RUN": lambda: run.run,
        }
        return lookups[name]()

    def fill(self, template: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.value(m.group(1), m.group(2)), template)

    def search(self, template: str, scope: list[str]) -> Answer:
        """Run the query with ``_id=<scope>`` added; follow ``next`` links to the end."""
        rtype, _, query = template.partition("?")
        pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
        params = [(k, self.fill(v)) for k, v in pairs] + [("_id", ",".join(scope))]
        url: str | None = f"{self.base}/{rtype}?" + urllib.parse.urlencode(
            params, safe=",|:/", quote_via=urllib.parse.quote)
        answer = Answer(200)
        while url:
            response = self.http.get(url, timeout=120)
            if response.status_code != 200:
                return Answer(response.status_code, error=response.text[:300])
            bundle = response.json()
            answer.pages += 1
            if answer.pages == 1:
                answer.total = bundle.get("total")
            for entry in bundle.get("entry") or []:
                mode = (entry.get("search") or {}).get("mode", "match")
                if mode == "match":
                    answer.matches.append(entry["resource"])
                elif mode == "include":
                    answer.included.append(entry["resource"])
            nxt = [link["url"] for link in bundle.get("link") or [] if link["relation"] == "next"]
            url = urllib.parse.urljoin(self.base + "/", nxt[0]) if nxt else None
            assert answer.pages < 100, f"{self.name}: more than 100 pages for {template}"
        return answer


def first_condition(run: Run, session: int) -> str:
    """The ``iastm-session-resource`` value of a session's first Condition."""
    record = next(r for r in run.records if r["session_id"] == run.session_id(session))
    return f"{run.session_id(session)}/condition/{record['conditions'][0]['condition_id']}"


def keys(resources: list[dict[str, Any]]) -> list[frozenset[str]]:
    return [business_key(r) for r in resources]


def sort_values(rtype: str, sort: str, resources: list[dict[str, Any]]) -> list[Any]:
    """The values a ``_sort`` orders by, in answer order."""
    name = sort.lstrip("-")
    if name == "_lastUpdated":
        return [r["meta"]["lastUpdated"] for r in resources]
    paths = SORT_ELEMENTS[(rtype, name)]
    out = []
    for resource in resources:
        for path in paths:
            node: Any = resource
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                out.append(node)
                break
        else:
            out.append(None)
    return out


def param(template: str, name: str) -> str | None:
    """The (first) value of a parameter in a query template."""
    query = template.partition("?")[2]
    return next((p.split("=", 1)[1] for p in query.split("&") if p.startswith(name + "=")), None)


__all__ = ["Answer", "Side", "first_condition", "keys", "param", "sort_values"]
