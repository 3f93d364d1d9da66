"""The FHIR HTTP client: one method per FHIR interaction the project uses.

What callers get (every exception keeps ``status``, the server's ``outcome`` and its issues as
:class:`~fhir_iastm.errors.Issue`; ``exc.code`` is the stable code):

* transport failure or 429/502/503/504 (after the retry bound, or at once for a request that is
  not idempotent, or when ``Retry-After`` exceeds ``max_delay``) -> ``FhirUnavailableError``;
  a non-idempotent request that timed out says "outcome unknown": re-read before re-sending.
* 401/403 -> ``FhirAuthError``; 404/410 -> ``FhirServerError`` with code ``E_NOT_FOUND``.
* 409/412 -> ``FhirConflictError``; ``AmbiguousMatchError`` when a 412's outcome reports several
  matches. HAPI 8.8 answers a stale ``If-Match`` with **409** (HAPI-0989), which is why requests
  carrying If-Match are never retried on 409.
* any other status, or a 2xx whose body is not the expected resource (torn JSON, a
  transaction-response without one 2xx entry per request entry) -> ``FhirServerError``.

Idempotent requests (retried by ``client.transport``): GET, PUT, transactions whose entries are
all PUT ``Type/id`` / ``Type?identifier=...`` or POST with ``ifNoneExist``.

Spec: https://hl7.org/fhir/R4/http.html (RESTful API), .../R4/bundle.html#transaction.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.client.policy import is_idempotent_bundle
from fhir_iastm.client.transport import Json, Params, Request, Transport, param_list
from fhir_iastm.errors import FhirServerError

#: Resource types :meth:`FhirClient.post_conformance` may write.
CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap"})

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id (also used for version ids)
_REPRESENTATION = {"Prefer": "return=representation"}

__all__ = ["CONFORMANCE_TYPES", "FhirClient"]


class FhirClient(Transport):
    """Client of one FHIR R4 server (base URL such as ``http://127.0.0.1:18080/fhir``): the
    transport (``Transport(base_url, token=, timeout=, session=, retry=, sleep=, auth=)``) plus
    one method per FHIR interaction.

    ``tag`` (sandbox mode, docs/targets.md#sandbox-mode): a (system, code) put in ``meta.tag`` of
    every resource this client creates or updates, so ``sandbox-clean`` finds them again."""

    _capabilities: Capabilities | None = None  # read once per client, on first use

    def __init__(self, base_url: str, *, tag: tuple[str, str] | None = None,
                 **transport: Any) -> None:
        super().__init__(base_url, **transport)
        self.tag = tag

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """The server's CapabilityStatement (``GET /metadata``), read once and cached."""
        if self._capabilities is None:
            statement = self.send(
                Request("GET", "metadata", "GET metadata", True, expect="CapabilityStatement")
            )
            self._capabilities = Capabilities(statement)
        return self._capabilities

    def read(self, resource_type: str, resource_id: str) -> Json:
        """``GET Type/id``: the current version."""
        return self.send(
            Request(
                "GET",
                _path(resource_type, resource_id),
                f"GET {resource_type}",
                True,
                expect=resource_type,
            )
        )

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> Json:
        """``GET Type/id/_history/vid``: one version."""
        url = f"{_path(resource_type, resource_id)}/_history/{_path(None, version_id)}"
        request = Request("GET", url, f"GET {resource_type}", True, expect=resource_type)
        return self.send(request)

    def search(
        self, resource_type: str, params: Params, *, cache_control: str = "no-cache"
    ) -> Json:
        """``GET Type?params`` (with ``Cache-Control: no-cache``): the first searchset page.

        Values are sent as given (percent-encoded by requests); FHIR-escaping ``\\ , $ |`` in
        identifier values is the caller's job (docs/decisions.md#d16). ``cache_control`` =
        ``"no-cache, no-store"`` suits a lookup of at most a few matches: HAPI then runs it
        synchronously and keeps no search (and no paging) state for it.
        """
        return self.send(
            Request(
                "GET",
                _path(resource_type),
                f"GET {resource_type}",
                True,
                params=params,
                headers={"Cache-Control": cache_control},
                expect="Bundle",
            )
        )

    def search_pages(self, resource_type: str, params: Params) -> Iterator[Json]:
        """Every searchset page, following ``next`` links only under the base URL."""
        page = self.search(resource_type, params)
        seen: set[str] = set()
        while True:
            yield page
            next_url = _next_link(page)
            if next_url is None:
                return
            next_url = urljoin(self.base_url + "/", next_url)
            self.check_under_base(next_url, resource_type)
            if next_url in seen:
                raise FhirServerError(f"GET {resource_type}: the server's next links loop")
            seen.add(next_url)
            page = self.send(
                Request(
                    "GET",
                    next_url,
                    f"GET {resource_type}",
                    True,
                    headers={"Cache-Control": "no-cache"},
                    expect="Bundle",
                )
            )

    def search_all(self, resource_type: str, params: Params) -> Iterator[Json]:
        """Resources of every entry on every page (matches, ``_include``s and outcomes alike)."""
        for page in self.search_pages(resource_type, params):
            for entry in page.get("entry") or []:
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]

    def count(self, resource_type: str, params: Params) -> int:
        """Number of matches (``_summary=count``)."""
        query = [*param_list(params), ("_summary", "count")]
        total = self.search(resource_type, query).get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise FhirServerError(f"GET {resource_type}: malformed response (no Bundle.total)")
        return total

    # -- writes ------------------------------------------------------------------------------

    def transaction(self, bundle: Json, *, idempotent: bool | None = None) -> Json:
        """POST a transaction Bundle to the base; returns the transaction-response Bundle.

        ``idempotent`` defaults to :func:`is_idempotent_bundle`; only then is the POST retried.
        Entries with ``ifMatch`` turn off the 409 retry (a stale version stays stale: re-read).
        Raises unless the response is a transaction-response with one 2xx entry per entry.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise ValueError("transaction() needs a Bundle of type 'transaction'")
        entries = bundle.get("entry") or []
        guarded = any((e.get("request") or {}).get("ifMatch") for e in entries)
        if self.tag is not None:
            bundle = {**bundle, "entry": [self._tagged_entry(e) for e in entries]}
        request = Request(
            "POST",
            "",
            "POST transaction",
            _pick(idempotent, bundle),
            body=bundle,
            retry_conflict=not guarded,
            expect="Bundle",
        )
        response = self.send(request)
        _check_transaction_response(response, len(entries))
        return response

    def update(
        self, resource_type: str, resource_id: str, resource: Json, if_match: str | None = None
    ) -> Json:
        """``PUT Type/id`` (If-Match ``W/"vid"`` when given; a bare ``vid`` is wrapped)."""
        headers = {**_REPRESENTATION, **({"If-Match": _etag(if_match)} if if_match else {})}
        return self.send(
            Request(
                "PUT",
                _path(resource_type, resource_id),
                f"PUT {resource_type}",
                True,
                body=self._tagged(resource),
                headers=headers,
                retry_conflict=if_match is None,
                expect=resource_type,
            )
        )

    def create(self, resource_type: str, resource: Json, if_none_exist: str | None = None) -> Json:
        """``POST Type`` (conditional with ``If-None-Exist: identifier=system|value``)."""
        headers = {**_REPRESENTATION, **({"If-None-Exist": if_none_exist} if if_none_exist else {})}
        return self.send(
            Request(
                "POST",
                _path(resource_type),
                f"POST {resource_type}",
                bool(if_none_exist),
                body=self._tagged(resource),
                headers=headers,
                expect=resource_type,
            )
        )

    def delete(self, resource_type: str, resource_id: str) -> None:
        """``DELETE Type/id`` (idempotent: deleting a deleted resource succeeds too). A 409 (the
        resource is still referenced) is raised at once, not retried."""
        self.send(Request("DELETE", _path(resource_type, resource_id), f"DELETE {resource_type}",
                          True, expect=None, empty_ok=True, retry_conflict=False))

    def _tagged(self, resource: Json) -> Json:
        """``resource`` with the sandbox tag added to ``meta.tag`` (a copy; as is without one)."""
        if self.tag is None:
            return resource
        system, code = self.tag
        tagged = copy.deepcopy(resource)
        tags = tagged.setdefault("meta", {}).setdefault("tag", [])
        if not any(t.get("system") == system and t.get("code") == code for t in tags):
            tags.append({"system": system, "code": code})
        return tagged

    def _tagged_entry(self, entry: Json) -> Json:
        method = str((entry.get("request") or {}).get("method", "")).upper()
        if method in ("POST", "PUT") and isinstance(entry.get("resource"), dict):
            return {**entry, "resource": self._tagged(entry["resource"])}
        return entry

    def validate(self, resource: Json, profile: str | None = None) -> Json:
        """``POST Type/$validate[?profile=]``: the OperationOutcome, also when served with a 4xx."""
        resource_type = str(resource.get("resourceType", ""))
        params = [("profile", profile)] if profile else None
        return self.send(
            Request(
                "POST",
                f"{_path(resource_type)}/$validate",
                f"VALIDATE {resource_type}",
                True,
                params=params,
                body=resource,
                expect="OperationOutcome",
                outcome_ok=True,
            )
        )

    def post_conformance(self, resource: Json) -> Json:
        """``PUT Type/id`` of a StructureDefinition, ValueSet, CodeSystem or ConceptMap."""
        resource_type = resource.get("resourceType")
        resource_id = resource.get("id")
        if resource_type not in CONFORMANCE_TYPES or not isinstance(resource_id, str):
            raise ValueError("post_conformance() needs a conformance resource with an id")
        return self.update(resource_type, resource_id, resource)

    # -- transport ---------------------------------------------------------------------------


def _path(resource_type: str | None, resource_id: str | None = None) -> str:
    """``Type`` or ``Type/id``, refusing anything that could change the URL's shape."""
    if resource_type is not None and not _TYPE.match(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type[:40]!r}")
    if resource_id is not None and not _ID.match(resource_id):
        raise ValueError("not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return "/".join(part for part in (resource_type, resource_id) if part is not None)


def _pick(idempotent: bool | None, bundle: Json) -> bool:
    return is_idempotent_bundle(bundle) if idempotent is None else idempotent



def _etag(version: str) -> str:
    return version if version.startswith(('W/"', '"')) else f'W/"{version}"'


def _next_link(page: Json) -> str | None:
    for link in page.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None



def _check_transaction_response(response: Json, sent: int) -> None:
    entries = response.get("entry") or []
    if (
        response.get("type") != "transaction-response"
        or not isinstance(entries, list)
        or len(entries) != sent
    ):
        raise FhirServerError(
            "POST transaction: malformed response (not a transaction-response "
            "with one entry per request entry)"
        )
    for entry in entries:
        reply = entry.get("response") if isinstance(entry, dict) else None
        status = str(reply.get("status", "")) if isinstance(reply, dict) else ""
        if not status[:1] == "2":
            raise FhirServerError(
                f"POST transaction: malformed response (an entry has status {status[:3] or 'none'})"
            )
