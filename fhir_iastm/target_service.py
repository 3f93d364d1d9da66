"""The use cases about a target server itself: the readiness check
(docs/targets.md#readiness-check). ``fhir_iastm.service`` re-exports them.

:func:`check_server` reads the CapabilityStatement, makes one search (auth, paging, the clock
offset from the ``Date`` header), looks our profiles up (``StructureDefinition?url=``) and, only
with ``probe_writes``, writes a probe ``Basic`` resource (identified by a fresh
``{CANON}/sid/readiness-probe`` identifier) to try conditional create, conditional update and a
stale ``If-Match`` — and deletes it afterwards. The judging is ``sync.readiness.judge``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from fhir_iastm.canonical import rebase
from fhir_iastm.client import FhirClient
from fhir_iastm.errors import FhirConflictError, FhirServerError
from fhir_iastm.mapping.ids import identifier_query, sid
from fhir_iastm.sync.bundle_ops import location_of
from fhir_iastm.sync.readiness import FAIL, PASS, Check, Facts, judge, suggest_target
from fhir_iastm.target_config import target_toml

PROBE_TEXT = "fhir-iastm readiness probe"
_CHUNK = 20


def check_server(
    client: FhirClient,
    *,
    profiles: str | Path,
    canonical_base: str,
    public_sandbox: bool | None = None,
    probe_writes: bool = False,
    clock: Callable[[], float] = time.time,
) -> list[Check]:
    """The readiness report of ``client``'s server, one Check per question."""
    caps, caps_error = None, None
    try:
        caps = client.capabilities()
    except FhirServerError as exc:
        caps_error = f"GET metadata: {exc.message}"
    read_error, paging, offset = _read(client, clock)
    profile_state = _profiles(client, profiles, canonical_base) if read_error is None else {}
    probes = _probes(client, canonical_base) if probe_writes and read_error is None else {}
    return judge(Facts(client.base_url, caps, caps_error, read_error, paging, offset,
                       profile_state, public_sandbox, probes))


def _read(client: FhirClient,
          clock: Callable[[], float]) -> tuple[str | None, bool | None, float | None]:
    """(read error or None, paging, clock offset in seconds) from one ``Patient?_count=1``."""
    before = clock()
    try:
        page = client.search("Patient", [("_count", "1")])
    except FhirServerError as exc:
        return f"GET Patient: {exc.code} {exc.message}", None, _offset(client, before, clock())
    offset = _offset(client, before, clock())
    has_next = any(link.get("relation") == "next" for link in page.get("link") or [])
    total = page.get("total")
    if has_next:
        return None, True, offset
    several = isinstance(total, int) and total > 1
    return None, (False if several else None), offset


def _offset(client: FhirClient, before: float, after: float) -> float | None:
    """Server clock minus ours (the request's midpoint), from the last ``Date`` header."""
    header = client.server_date
    if not header:
        return None
    try:
        server = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    return server - (before + after) / 2


def profile_urls(profiles: str | Path, base: str) -> list[str]:
    """The canonical URLs of the StructureDefinitions of the profiles/ folder under ``base``
    (read from the files alone: loading the whole index costs a second)."""
    urls = []
    for path in sorted(Path(profiles).glob("StructureDefinition-*.json")):
        url = json.loads(path.read_text("utf-8")).get("url")
        if isinstance(url, str):
            urls.append(rebase(url, base))
    return sorted(urls)


def _profiles(client: FhirClient, profiles: str | Path, base: str) -> dict[str, bool]:
    """Our StructureDefinition URL -> found on the server (``StructureDefinition?url=a,b``)."""
    urls = profile_urls(profiles, base)
    found: set[str] = set()
    for start in range(0, len(urls), _CHUNK):
        chunk = urls[start : start + _CHUNK]
        params = [("url", ",".join(chunk)), ("_elements", "url"), ("_count", "100")]
        found |= {str(r.get("url")) for r in client.search_all("StructureDefinition", params)}
    return {url: url in found for url in urls}


def _probe_bundle(entry: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", **entry}]}


def _written_id(response: dict[str, Any]) -> tuple[str, str]:
    """(HTTP status code, id) of a one-entry transaction-response."""
    answer = (response.get("entry") or [{}])[0]
    ref, _ = location_of(answer)
    status = str((answer.get("response") or {}).get("status", ""))[:3]
    return status, ref.split("/")[1] if ref else ""


def _probes(client: FhirClient, base: str) -> dict[str, tuple[str, str]]:
    """Conditional create, conditional update and a stale If-Match on a probe Basic, which is
    deleted afterwards."""
    system, value = sid(base, "readiness-probe"), uuid.uuid4().hex
    basic = {"resourceType": "Basic", "identifier": [{"system": system, "value": value}],
             "code": {"text": PROBE_TEXT}}
    query = identifier_query(system, value)
    created: set[str] = set()
    out: dict[str, tuple[str, str]] = {}
    try:
        create = _probe_bundle({"resource": basic, "request": {
            "method": "POST", "url": "Basic", "ifNoneExist": query}})
        first = _written_id(client.transaction(create))
        second = _written_id(client.transaction(create))
        created |= {first[1], second[1]}
        same = second == ("200", first[1])
        out["conditional-create"] = (PASS, "a second ifNoneExist create matched the first") \
            if same else (FAIL, f"a second ifNoneExist create answered {second[0]}")
        update = _probe_bundle({"resource": {**basic, "code": {"text": PROBE_TEXT + " (2)"}},
                                "request": {"method": "PUT", "url": f"Basic?{query}"}})
        updated = _written_id(client.transaction(update))
        created.add(updated[1])
        out["conditional-update"] = (PASS, "PUT Basic?identifier= updated the probe") \
            if updated == ("200", first[1]) else (FAIL, f"answered {updated[0]}, a new resource")
        out["if-match"] = _stale_if_match(client, first[1], basic)
    except FhirServerError as exc:
        out.setdefault("conditional-create", (FAIL, f"probe refused: {exc.message}"))
    finally:
        for rid in sorted(i for i in created if i):
            client.delete("Basic", rid)
    return out


def _stale_if_match(client: FhirClient, rid: str, basic: dict[str, Any]) -> tuple[str, str]:
    try:
        client.update("Basic", rid, {**basic, "id": rid}, if_match='W/"999999"')
    except FhirConflictError as exc:
        return PASS, f"a stale If-Match was refused (HTTP {exc.status})"
    return FAIL, "a stale If-Match was accepted: the server ignores If-Match"


def suggested_target_toml(checks: list[Check]) -> str:
    """The receiver settings the report suggests, as a commented TOML target file."""
    settings, why = suggest_target(checks)
    return target_toml(settings, why)


__all__ = ["check_server", "suggested_target_toml"]
