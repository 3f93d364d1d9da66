"""The readiness check of a target server (docs/targets.md#readiness-check): what the
CapabilityStatement and a few reads (and, when asked, probe writes) tell, judged check by check.

Pure: :func:`judge` takes the facts the service gathered (``sync_service.check_server``) and
returns one :class:`Check` per question — ``pass`` / ``fail`` / ``unknown`` and what fhir-iastm
does about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from fhir_iastm.sync.fallback import SESSION_OWNED, SHARED
from fhir_iastm.sync.ports import CapabilitiesView
from fhir_iastm.target_config import TargetSettings

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
#: Search parameters the push, the retraction search and the pull send, per type
#: (docs/push.md, docs/decisions.md#d8, docs/decisions.md#d11).
SEARCH_PARAMS: Mapping[str, tuple[str, ...]] = {
    "Procedure": ("identifier", "encounter", "_lastUpdated", "patient"),
    "Observation": ("identifier", "encounter"),
    "Condition": ("identifier", "encounter"),
    "Encounter": ("identifier",),
    "Patient": ("identifier",),
    "Practitioner": ("identifier",),
    "Organization": ("identifier",),
    "Device": ("identifier",),
}
#: ``_include`` / ``_revinclude`` of the pull (``sync.pull``)
INCLUDES = ("Procedure:encounter", "Procedure:reason-reference", "Procedure:patient",
            "Procedure:performer")
REVINCLUDES = ("Observation:part-of", "Procedure:part-of")
#: Hosts of well-known public test servers, shared with strangers.
PUBLIC_SANDBOX_HOSTS = ("hapi.fhir.org", "server.fire.ly", "r4.smarthealthit.org",
                        "launch.smarthealthit.org", "fhir-open.cerner.com", "fhir.epic.com",
                        "sandbox.")
#: Largest clock offset that needs no action (a SMART client assertion lives 5 minutes).
CLOCK_TOLERANCE_S = 60.0


class ServerCapabilities(CapabilitiesView, Protocol):
    """What the readiness check reads of a CapabilityStatement (``client.Capabilities``)."""

    @property
    def fhir_version(self) -> str | None: ...

    @property
    def software(self) -> str | None: ...

    def versioning(self, resource_type: str) -> str | None: ...

    def operations(self) -> frozenset[str]: ...

    def search_params(self, resource_type: str) -> frozenset[str]: ...

    def includes(self, resource_type: str) -> frozenset[str]: ...

    def revincludes(self, resource_type: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class Check:
    """One question about the target and its answer."""

    name: str
    status: str
    detail: str
    action: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail,
                "action": self.action}


@dataclass(frozen=True)
class Facts:
    """What the service read from the server (None: not found out)."""

    base_url: str
    caps: ServerCapabilities | None = None
    caps_error: str | None = None
    #: None: the read worked; else the server's answer
    read_error: str | None = None
    #: a search with ``_count=1`` of a type holding several resources had a ``next`` link
    paging: bool | None = None
    clock_offset_s: float | None = None
    #: profile URL -> loaded on the server
    profiles: Mapping[str, bool] = field(default_factory=dict)
    #: the ``public_sandbox`` setting (None: guess from the host)
    sandbox_setting: bool | None = None
    #: probe name -> (status, detail), only with --probe-writes
    probes: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def judge(facts: Facts) -> list[Check]:
    """Every check, in report order."""
    checks = [_auth(facts), _paging(facts), _clock(facts), _sandbox(facts)]
    if facts.caps is None:
        detail = facts.caps_error or "no CapabilityStatement"
        unknown = "fhir-iastm cannot tell; the push reads /metadata again and refuses without it"
        return [Check("capabilities", FAIL, detail, unknown), *checks]
    caps = facts.caps
    return [
        _version(caps), _software(caps), _transaction(caps),
        _conditional(caps, "conditional-create", SHARED, caps.conditional_create,
                     facts.probes.get("conditional-create")),
        _conditional(caps, "conditional-update", SESSION_OWNED, caps.conditional_update,
                     facts.probes.get("conditional-update")),
        _if_match(caps, facts.probes.get("if-match")),
        _search(caps), _includes(caps), _validate(caps, facts.profiles), *checks,
    ]


def _version(caps: ServerCapabilities) -> Check:
    version = caps.fhir_version
    if version is None:
        return Check("fhir-version", UNKNOWN, "not declared", "pushes R4 4.0.1 resources")
    ok = version.startswith("4.0.")
    return Check("fhir-version", PASS if ok else FAIL, version,
                 "pushes R4 4.0.1 resources" + ("" if ok else ": this server will not read them"))


def _software(caps: ServerCapabilities) -> Check:
    software = caps.software
    return Check("software", PASS if software else UNKNOWN, software or "not declared",
                 "none (information)")


def _transaction(caps: ServerCapabilities) -> Check:
    if caps.supports_transaction:
        return Check("transaction", PASS, "declared", "one transaction per session version")
    return Check("transaction", FAIL, "not declared",
                 "push refused (every push is one transaction, docs/push.md#capabilities)")


def _conditional(caps: ServerCapabilities, name: str, types: Sequence[str], flag: Any,
                 probe: tuple[str, str] | None) -> Check:
    lacking = [t for t in types if flag(t) is not True]
    detail = "declared for " + ", ".join(types) if not lacking else (
        "not declared for " + ", ".join(lacking))
    status = PASS if not lacking else FAIL
    if probe is not None:
        status, detail = probe[0], f"{detail}; probe: {probe[1]}"
    action = ("conditional requests" if status == PASS else
              "search-then-write for those types (docs/push.md#capabilities)")
    return Check(name, status, detail, action)


def _if_match(caps: ServerCapabilities, probe: tuple[str, str] | None) -> Check:
    lacking = [t for t in SESSION_OWNED if caps.versioning(t) != "versioned-update"]
    status = PASS if not lacking else UNKNOWN
    detail = ("versioned-update for " + ", ".join(SESSION_OWNED) if not lacking
              else "versioned-update not declared for " + ", ".join(lacking))
    if probe is not None:
        status, detail = probe[0], f"{detail}; probe: {probe[1]}"
    action = ("the version guard sends If-Match (docs/decisions.md#d7)" if status == PASS else
              "the version guard still sends If-Match; a server that ignores it lets a "
              "concurrent write be overwritten (run with --probe-writes to find out)")
    return Check("if-match", status, detail, action)


def _search(caps: ServerCapabilities) -> Check:
    missing = [f"{t}?{p}" for t, params in SEARCH_PARAMS.items() for p in params
               if p not in caps.search_params(t) and not p.startswith("_")]
    if not missing:
        return Check("search-parameters", PASS, "every parameter the push and pull use",
                     "none")
    return Check("search-parameters", FAIL, "not declared: " + ", ".join(missing),
                 "lookups on these may be ignored by the server: push and pull may fail")


def _includes(caps: ServerCapabilities) -> Check:
    procedure = caps.includes("Procedure")
    missing = [i for i in INCLUDES if i not in procedure and "*" not in procedure]
    reverse = caps.revincludes("Procedure")
    missing += [r for r in REVINCLUDES if r not in reverse and "*" not in reverse]
    if not missing:
        return Check("include", PASS, "the pull's _include and _revinclude are declared",
                     "the pull reads a session in one search")
    return Check("include", FAIL, "not declared: " + ", ".join(missing),
                 "the pull may miss the resources these bring (docs/decisions.md#d11)")


def _validate(caps: ServerCapabilities, profiles: Mapping[str, bool]) -> Check:
    if "validate" not in caps.operations():
        return Check("validate", UNKNOWN, "$validate not declared",
                     "validation runs locally only (docs/validation.md)")
    if not profiles:
        return Check("validate", UNKNOWN, "$validate declared; profiles not looked up",
                     "load-profiles before validating against this server")
    missing = sorted(url for url, found in profiles.items() if not found)
    if missing:
        return Check("validate", FAIL,
                     f"$validate declared; {len(missing)} of {len(profiles)} profiles not loaded",
                     "run fhir-iastm load-profiles against this server")
    return Check("validate", PASS, f"$validate declared; all {len(profiles)} profiles loaded",
                 "the server's $validate checks our profiles")


def _auth(facts: Facts) -> Check:
    if facts.read_error is None:
        return Check("auth", PASS, "a search was answered", "none")
    return Check("auth", FAIL, facts.read_error,
                 "nothing is pushed until the credentials are fixed (docs/targets.md)")


def _paging(facts: Facts) -> Check:
    if facts.paging is None:
        return Check("paging", UNKNOWN, "too few resources to page",
                     "the pull follows next links when there are any")
    if facts.paging:
        return Check("paging", PASS, "next link returned", "the pull follows next links")
    return Check("paging", FAIL, "_count=1 returned no next link",
                 "the pull may see only the first page of a search")


def _clock(facts: Facts) -> Check:
    offset = facts.clock_offset_s
    if offset is None:
        return Check("clock", UNKNOWN, "no Date header", "none")
    detail = f"server clock {offset:+.1f} s from ours"
    if abs(offset) <= CLOCK_TOLERANCE_S:
        return Check("clock", PASS, detail, "none")
    return Check("clock", FAIL, detail,
                 "fix the clock: token assertions (5 minutes) and _lastUpdated windows drift")


def is_public_sandbox(base_url: str) -> bool:
    """The host is one of the well-known public test servers."""
    host = (urlsplit(base_url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) or (h.endswith(".") and host.startswith(h))
               for h in PUBLIC_SANDBOX_HOSTS)


def _sandbox(facts: Facts) -> Check:
    guessed = is_public_sandbox(facts.base_url)
    shared = guessed if facts.sandbox_setting is None else facts.sandbox_setting
    how = "known public host" if facts.sandbox_setting is None else "public_sandbox setting"
    if shared:
        return Check("public-sandbox", PASS, f"shared public sandbox ({how})",
                     "pushes carry a per-run tag and can be cleaned up (docs/targets.md)")
    detail = "not a known public sandbox" if facts.sandbox_setting is None else (
        "not shared (public_sandbox setting)")
    return Check("public-sandbox", UNKNOWN if facts.sandbox_setting is None else PASS, detail,
                 "pushes are not tagged per run")


def suggest_target(checks: Sequence[Check]) -> tuple[TargetSettings, dict[str, str]]:
    """The receiver settings the report suggests, with the reason of each
    (``check-server --write-target``, docs/targets.md#receiver-settings)."""
    status = {c.name: c for c in checks}
    no_conditional = any(status[n].status == FAIL for n in ("conditional-create",
                                                            "conditional-update")
                         if n in status)
    no_profiles = "validate" in status and status["validate"].status == FAIL
    sandbox = status.get("public-sandbox")
    public = sandbox is not None and sandbox.detail.startswith("shared")
    settings = TargetSettings(strip_profiles=no_profiles, conditional_requests=not no_conditional,
                              public_sandbox=public)
    why = {
        "performed_as_datetime": "true if the receiver wants Procedure.performedDateTime",
        "strip_profiles": "our profiles are not loaded on this server: load-profiles, then false"
        if no_profiles else "the server knows our profiles (or does not validate)",
        "conditional_requests": "the server lacks conditional create/update: search-then-write"
        if no_conditional else "conditional create and update declared",
        "max_bundle_entries": "0: no limit (a CapabilityStatement cannot declare one; set the "
                              "receiver's documented limit)",
        "pain_category": "observation-category codes of pain scores: survey, optionally exam",
        "smart_v1_scopes": "true for an authorization server that only knows SMART v1 scopes",
        "public_sandbox": sandbox.detail if sandbox is not None else "unknown",
    }
    return settings, why


__all__ = ["CLOCK_TOLERANCE_S", "Check", "FAIL", "Facts", "PASS", "UNKNOWN", "is_public_sandbox",
           "judge", "suggest_target"]
