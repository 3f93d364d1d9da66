"""Validate one resource against the profiles it claims (or the one for its type).

Stage 1 = one ``fhir.resources`` R4B parse (skippable for our own mapper output, which was built
through those models already: never re-parse our own output, docs/performance.md#targets); stage 2 =
the profile checks on the dict. Rule ids for profile-independent checks: ``unknown-profile``,
``profile-type``, ``no-profile``, ``extension:<url>`` (unknown extension), ``ref:unresolved``,
``ref:type``, ``context:<url>`` (extension used outside its context).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import ElementNode, Profile, ProfileIndex
from fhir_iastm.validation.bindings import check_local_codes
from fhir_iastm.validation.context import (
    Resolver,
    Tracer,
    ValidationContext,
    claimed_profiles,
    locate,
)
from fhir_iastm.validation.elements import check_resource
from fhir_iastm.validation.extcontext import allowed, owner_of, parent_extension_url
from fhir_iastm.validation.invariants import (
    check_base,
    check_extension_shape,
    check_periods,
    check_quantities,
)
from fhir_iastm.validation.scan import scan
from fhir_iastm.validation.structure import check_structure, model_class


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
        if found is None:
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


def _declared_keys(node: ElementNode) -> set[str]:
    keys = {c.key for c in node.constraints}
    for child in (*node.children.values(), *node.slices.values()):
        keys |= _declared_keys(child)
    return keys


def _check_extensions(found: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    for path, ext in found:
        url = ext.get("url")
        definition = ctx.index.extensions.get(url) if isinstance(url, str) else None
        if definition is not None:
            if not allowed(definition, path, parent_extension_url(ctx.root or {}, path)):
                element = owner_of(path)[0]
                ctx.add(
                    "error",
                    "structure",
                    path.rsplit(".", 1)[0],  # located on the owner element, as HAPI does
                    f"extension {url} is not allowed on {element} (its context: "
                    f"{', '.join(e for _k, e in definition.contexts)})",
                    f"context:{url}",
                )
            check_resource(definition.root, ext, ctx, path)
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
    issues = check_structure(resource) if structure else []
    if model_class(str(resource.get("resourceType"))) is None:
        if not structure:
            issues = check_structure(resource)
        return finish(resource, issues, prefix, trace)
    ctx = ValidationContext(index, prefix, resolve, root=resource)
    declared: set[str] = set()
    for selected in _select_profiles(resource, profile, ctx):
        check_resource(selected.root, resource, ctx)
        declared |= _declared_keys(selected.root)
    found = scan(resource)
    check_base(resource, declared, ctx)
    check_periods(found.periods, ctx)
    check_quantities(found.quantities, ctx)
    check_extension_shape(found.extensions, ctx)
    _check_extensions(found.extensions, ctx)
    check_local_codes(found.codings, ctx)
    _check_references(found.references, ctx)
    return finish(resource, issues + dedupe(ctx.issues), prefix, trace)


def finish(
    resource: dict[str, Any], issues: list[Issue], prefix: str, trace: Tracer | None = None
) -> list[Issue]:
    """Trace each issue to its record field (with ``trace``), then locate it inside the Bundle."""
    out = []
    for issue in issues:
        field = trace(resource, issue.expression, issue.details) if trace else None
        out.append(replace(issue, expression=locate(prefix, issue.expression), record_field=field))
    return out


def dedupe(issues: list[Issue]) -> list[Issue]:
    """Drop repeats of one finding (same severity, type, location and rule kind)."""
    seen: set[tuple[str, str, str | None, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        key = (issue.severity, issue.code, issue.expression, (issue.details or "").split(":")[0])
        if key in seen and key[3] in ("binding", "extension", "codesystem"):
            continue
        seen.add(key)
        out.append(issue)
    return out


__all__ = ["dedupe", "validate_resource"]
