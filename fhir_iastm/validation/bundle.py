"""Bundle validation — Bundle-level structure, then every entry.resource with a resolver.

The Bundle is walked by the core R4 Bundle definition without its entry resources; each entry
resource is then validated once, with a resolver. Native Bundle rules: ``bdl-3``
(request on transaction/batch entries),
``bdl-7`` (fullUrl unique), ``bdl-entry-url`` (request.url unique, docs/decisions.md#d6).
Spec: https://hl7.org/fhir/R4/bundle.html#invs
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import ProfileIndex
from fhir_iastm.validation.context import Resolver, Tracer, ValidationContext, claimed_profiles
from fhir_iastm.validation.elements import check_resource
from fhir_iastm.validation.engine import profile_type, validate_resource
from fhir_iastm.validation.r4check import check_r4


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


def _shell_issues(bundle: dict[str, Any], index: ProfileIndex, structure: bool) -> list[Issue]:
    """The Bundle by the core R4 Bundle definition; its entries' resources are walked one by
    one below (with a resolver)."""
    ctx = ValidationContext(index, root=bundle)
    check_r4(bundle, ctx, shape_checks=structure)
    return ctx.issues


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


def _bundle_profile(profile: str | None, index: ProfileIndex) -> tuple[str | None, list[Issue]]:
    """The type ``--profile`` constrains, or an unknown-profile error (then entries keep their
    own claims)."""
    if profile is None:
        return None, []
    target = profile_type(profile, index)
    if target is None:
        return None, [
            Issue(
                "error", "not-supported", "Bundle", f"unknown profile {profile}", "unknown-profile"
            )
        ]
    return target, []


def _fills_claim(resource: dict[str, Any], target: str | None) -> bool:
    """``--profile`` stands in for the claim of an entry of its type that claims none."""
    return resource.get("resourceType") == target and not claimed_profiles(resource)


def validate_bundle(
    bundle: dict[str, Any],
    index: ProfileIndex,
    *,
    profile: str | None = None,
    structure: bool = True,
    trace: Tracer | None = None,
) -> list[Issue]:
    """Bundle structure and rules, then each entry.resource (``Bundle.entry[i].resource.``)
    against its own claimed profiles; ``profile`` (``--profile``) applies to the Bundle when it
    constrains Bundle (the core Bundle URL: the core definition only), else to the entries of
    its type that claim no profile."""
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raw_entries = []
    target, issues = _bundle_profile(profile, index)
    issues += _shell_issues(bundle, index, structure)
    bundle_profile = (
        index.profiles.get(str(profile).split("|", 1)[0]) if target == "Bundle" else None
    )
    if bundle_profile is not None:
        ctx = ValidationContext(index, root=bundle)
        check_resource(bundle_profile.root, bundle, ctx)
        issues += ctx.issues
    entries = [e for e in raw_entries if isinstance(e, dict)]
    issues += _bundle_rules(bundle, entries)
    resolve = resolver(entries)
    for i, entry in enumerate(raw_entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            own = profile if _fills_claim(resource, target) else None
            issues += validate_resource(
                resource,
                index,
                profile=own,
                prefix=f"Bundle.entry[{i}].resource.",
                resolve=resolve,
                structure=structure,
                trace=trace,
            )
    return issues


__all__ = ["resolver", "validate_bundle"]
