"""Bundle validation — Bundle-level structure, then every entry.resource with a resolver.

Each entry resource is parsed exactly once (the Bundle shell is parsed without its
entry resources). Native Bundle rules: ``bdl-3`` (request on transaction/batch entries),
``bdl-7`` (fullUrl unique), ``bdl-entry-url`` (request.url unique, docs/decisions.md#d6).
Spec: https://hl7.org/fhir/R4/bundle.html#invs
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import ProfileIndex
from fhir_iastm.validation.context import Resolver, Tracer
from fhir_iastm.validation.engine import validate_resource
from fhir_iastm.validation.structure import check_structure


def resolver(entries: list[dict[str, Any]]) -> Resolver:
    """Resolve ``urn:uuid:`` fullUrls, absolute fullUrls and ``Type/id`` within the Bundle."""
    table: dict[str, dict[str, Any]] = {}
    for entry in entries:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            table[full_url] = resource
            parts = full_url.rstrip("/").split("/")
            if len(parts) >= 2 and "://" in full_url:
                table.setdefault("/".join(parts[-2:]), resource)
        if isinstance(resource.get("id"), str):
            table.setdefault(f"{resource.get('resourceType')}/{resource['id']}", resource)
    return table.get


def _shell_issues(bundle: dict[str, Any], entries: list[Any]) -> list[Issue]:
    shell = dict(bundle)
    shell["entry"] = [
        {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
        for e in entries
    ]
    if not shell["entry"]:
        del shell["entry"]
    return check_structure(shell)


def _bundle_rules(bundle: dict[str, Any], entries: list[dict[str, Any]]) -> list[Issue]:
    issues: list[Issue] = []
    kind = bundle.get("type")
    full_urls: dict[str, int] = {}
    request_urls: dict[str, int] = {}
    for i, entry in enumerate(entries):
        path = f"Bundle.entry[{i}]"
        request = entry.get("request")
        if kind in ("transaction", "batch") and not isinstance(request, dict):
            issues.append(
                Issue(
                    "error",
                    "invariant",
                    path,
                    "bdl-3: entry.request mandatory for batch/transaction",
                    "bdl-3",
                )
            )
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            if full_url in full_urls:
                issues.append(
                    Issue(
                        "error",
                        "invariant",
                        path,
                        f"bdl-7: fullUrl {full_url} is not unique",
                        "bdl-7",
                    )
                )
            full_urls.setdefault(full_url, i)
        request = request if isinstance(request, dict) else {}
        url = request.get("url")
        if isinstance(url, str) and request.get("method") in ("PUT", "POST"):
            if url in request_urls and request.get("method") == "PUT":
                issues.append(
                    Issue(
                        "error",
                        "invariant",
                        f"{path}.request.url",
                        f"request.url {url} is not unique",
                        "bdl-entry-url",
                    )
                )
            request_urls.setdefault(url, i)
    return issues


def validate_bundle(
    bundle: dict[str, Any],
    index: ProfileIndex,
    *,
    structure: bool = True,
    trace: Tracer | None = None,
) -> list[Issue]:
    """Bundle structure and rules, then each entry.resource (``Bundle.entry[i].resource.``)."""
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raw_entries = []
    issues = _shell_issues(bundle, raw_entries) if structure else []
    entries = [e for e in raw_entries if isinstance(e, dict)]
    issues += _bundle_rules(bundle, entries)
    resolve = resolver(entries)
    for i, entry in enumerate(raw_entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            issues += validate_resource(
                resource,
                index,
                prefix=f"Bundle.entry[{i}].resource.",
                resolve=resolve,
                structure=structure,
                trace=trace,
            )
    return issues


__all__ = ["resolver", "validate_bundle"]
