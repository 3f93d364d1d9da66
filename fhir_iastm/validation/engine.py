"""Validate one resource against the profiles it claims (or the one for its type).

The profile checks on the dict, then the walk by the R4 4.0.1 definitions (``r4check``:
structure, core required bindings and invariants; its shape checks are skipped for our own mapper
output, built through models already, docs/performance.md#targets). Rule ids for
profile-independent checks: ``unknown-profile``, ``profile-type``, ``no-profile``,
``extension:<url>`` (unknown extension), ``ref:unresolved``, ``ref:type``, ``context:<url>``
(extension used outside its context).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import Profile, ProfileIndex
from fhir_iastm.validation.bindings import check_local_codes
from fhir_iastm.validation.context import (
    Resolver,
    Tracer,
    ValidationContext,
    claimed_profiles,
    locate,
)
from fhir_iastm.validation.displays import check_displays
from fhir_iastm.validation.elements import check_resource
from fhir_iastm.validation.extcontext import allowed, owner_of
from fhir_iastm.validation.extfast import check_extension
from fhir_iastm.validation.r4check import check_r4
from fhir_iastm.validation.r4defs import resource_types
from fhir_iastm.validation.scan import scan

CORE = "http://hl7.org/fhir/StructureDefinition/"


def profile_type(url: str, index: ProfileIndex) -> str | None:
    """The type a profile URL constrains: a core R4 definition
    (``http://hl7.org/fhir/StructureDefinition/<Type>``) or a profile of the index; None when
    unknown."""
    url = url.split("|", 1)[0]
    found = index.profiles.get(url)
    if found is not None:
        return found.type
    name = url.removeprefix(CORE)
    return name if url.startswith(CORE) and name in resource_types() else None


def _select_profiles(
    resource: dict[str, Any], profile: str | None, ctx: ValidationContext
) -> list[Profile]:
    resource_type = str(resource.get("resourceType"))
    index = ctx.index
    claimed = [profile] if profile else claimed_profiles(resource)
    selected: list[Profile] = []
    for i, url in enumerate(claimed):
        where = f"{resource_type}.meta.profile[{i}]" if not profile else resource_type
        found = index.profiles.get(str(url).split("|", 1)[0])
        core = profile_type(str(url), index) if found is None else None
        if core == resource_type:
            continue  # the core definition itself: the R4 walk below checks it
        if core is not None:
            ctx.add(
                "error",
                "invalid",
                where,
                f"profile {url} is the core {core} definition, not {resource_type}",
                "profile-type",
            )
        elif found is None:
            ctx.add("error", "not-supported", where, f"unknown profile {url}", "unknown-profile")
        elif found.type != resource_type:
            ctx.add(
                "error",
                "invalid",
                where,
                f"profile {url} constrains {found.type}, not {resource_type}",
                "profile-type",
            )
        else:
            selected.append(found)
    if not claimed:
        default = index.default_profile(resource_type)
        if default is not None:
            return [index.profiles[default]]
        ctx.add(
            "information",
            "informational",
            resource_type,
            f"no profile selected for {resource_type}; validated against the base "
            "specification only",
            "no-profile",
        )
    return selected


def _check_extensions(found: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    for path, ext in found:
        url = ext.get("url")
        definition = ctx.index.extensions.get(url) if isinstance(url, str) else None
        if definition is not None:
            if not allowed(definition, path, ctx.root or {}):
                element = owner_of(path)[0]
                ctx.add(
                    "error",
                    "structure",
                    path.rsplit(".", 1)[0],  # located on the owner element, as HAPI does
                    f"extension {url} is not allowed on {element} (its context: "
                    f"{', '.join(e for _k, e in definition.contexts)})",
                    f"context:{url}",
                )
            check_extension(definition.root, ext, ctx, path)
        elif isinstance(url, str) and ("://" in url or url.startswith("urn:")):
            ctx.add(
                "warning",
                "not-supported",
                path,
                f"unknown extension {url} (no definition available; not checked)",
                f"extension:{url}",
            )


def _check_references(found: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    if ctx.resolve is None:
        return
    for path, ref in found:
        target_ref = ref["reference"]
        target = ctx.resolve(target_ref)
        if target is None:
            if target_ref.startswith(("urn:uuid:", "urn:oid:")):
                ctx.add(
                    "error",
                    "not-found",
                    path,
                    f"reference {target_ref} does not resolve within the Bundle",
                    "ref:unresolved",
                )
            continue
        declared = ref.get("type")
        if isinstance(declared, str) and declared != target.get("resourceType"):
            ctx.add(
                "error",
                "structure",
                path,
                f"Reference.type {declared} but {target_ref} is a {target.get('resourceType')}",
                "ref:type",
            )


def validate_resource(
    resource: dict[str, Any],
    index: ProfileIndex,
    *,
    profile: str | None = None,
    prefix: str = "",
    resolve: Resolver | None = None,
    structure: bool = True,
    trace: Tracer | None = None,
) -> list[Issue]:
    """All checks on one resource; ``prefix`` locates it inside a Bundle; ``trace`` names the
    record field behind each issue (docs/validation.md#tracing)."""
    ctx = ValidationContext(index, prefix, resolve, root=resource)
    if str(resource.get("resourceType")) not in resource_types():
        check_r4(resource, ctx)  # judged even with shape checks off
        return finish(resource, ctx.issues, prefix, trace)
    for selected in _select_profiles(resource, profile, ctx):
        check_resource(selected.root, resource, ctx)
    # the R4 walk also notes the extensions, codings and references on its way (else: scan);
    # its findings come last: where a profile restates a base rule, the profile's is kept
    core = ValidationContext(index, prefix, resolve, root=resource)
    found = check_r4(resource, core, shape_checks=structure, collect=True) or scan(resource)
    _check_extensions(found.extensions, ctx)
    check_local_codes(found.codings, ctx)
    check_displays(found.codings, ctx)
    _check_references(found.references, ctx)
    return finish(resource, dedupe(ctx.issues + core.issues), prefix, trace)


def finish(
    resource: dict[str, Any], issues: list[Issue], prefix: str, trace: Tracer | None = None
) -> list[Issue]:
    """Trace each issue to its record field (with ``trace``), then locate it inside the Bundle."""
    out = []
    for issue in issues:
        field = trace(resource, issue.expression, issue.details) if trace else None
        where = locate(prefix, issue.expression)
        if where == issue.expression and field == issue.record_field:
            out.append(issue)  # nothing to change (issues are immutable)
        else:
            out.append(replace(issue, expression=where, record_field=field))
    return out


def dedupe(issues: list[Issue]) -> list[Issue]:
    """Drop repeats of one finding: the same rule at the same place (a base element or invariant
    a profile states again), or a second binding/extension/code finding at one place."""
    seen: set[tuple[str, str, str | None, str]] = set()
    exact: set[tuple[str, str | None, str | None]] = set()
    out: list[Issue] = []
    for issue in issues:
        key = (issue.severity, issue.code, issue.expression, (issue.details or "").split(":")[0])
        same = (issue.severity, issue.expression, issue.details)
        if same in exact or (key in seen and key[3] in ("binding", "extension", "codesystem")):
            continue
        seen.add(key)
        exact.add(same)
        out.append(issue)
    return out


__all__ = ["CORE", "dedupe", "profile_type", "validate_resource"]
