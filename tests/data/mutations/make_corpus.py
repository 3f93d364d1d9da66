"""Generate the mutation corpus: resources mapped from the good examples, each breaking one rule.

Run from the repository root: ``.venv/bin/python tests/data/mutations/make_corpus.py``.
Each output file ``NNN-<name>.json`` holds ``description``, ``profile``, ``source`` (example and
resource role), ``resource`` (standalone, meta.profile set; Bundle-internal ``urn:uuid:``
references rewritten to ``Type/<uuid>``) and ``expected`` = {severity, expression, rule}.
Where a profile states one requirement twice (a cardinality and an invariant), breaking it
necessarily breaks both: the second issue is listed in ``also_expected`` (HAPI reports both).
The validator must report exactly the expected issue(s) as errors and no other error
(``tests/test_validation_mutations.py``). The expected values are written by hand here, never
copied from the validator's output.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from fhir_iastm.mapping import MappingSettings, to_fhir  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLES = ROOT / "tests" / "data" / "examples"
C = "https://iastm.example.org/fhir"
SD = f"{C}/StructureDefinition/"
LAT = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
LOC = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-body-location-qualifier"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"

Json = dict[str, Any]
Mutate = Callable[[Json], None]

_BUNDLES: dict[str, Json] = {}


def bundle(example: str) -> Json:
    """The mapped Bundle of ``tests/data/examples/<example>.json``; ``<example>+moderate``: with
    every adverse effect moderate (a complication; expected mild effects are findings);
    ``+v2``: a schema 2.0 record (IASTM minutes, screening, condition 0 linked to site 0, IASTM
    parameters) mapped with include_cpt; ``+nocond``: mapped without Conditions."""
    if example not in _BUNDLES:
        name, _, tweak = example.partition("+")
        data = json.loads((EXAMPLES / f"{name}.json").read_text())
        settings = MappingSettings()
        if tweak == "moderate":
            data["adverse_effects"] = [
                dict(a, severity="moderate") for a in data["adverse_effects"]
            ]
        if tweak == "v2":
            _version_2(data)
            settings = MappingSettings(include_cpt=True)
        if tweak == "nocond":
            settings = MappingSettings(emit_conditions_for_cancelled=False)
        _BUNDLES[example] = to_fhir(load_record(data), settings)
    return _BUNDLES[example]


def _version_2(data: Json) -> None:
    data.update(schema_version="2.0", visit_kind="treatment")
    data["session"]["iastm_minutes"] = 15
    data["screening"] = {"performed_at": data["session"]["start"], "anticoagulant_therapy": True,
                         "skin_intact": True, "consent_obtained": True,
                         "findings": ["varicosities"]}
    data["conditions"][0]["site_index"] = 0
    data["iastm_parameters"] = {"strokes": ["sweeping"], "pressure": "light",
                                "tolerance": "well-tolerated"}


def _relink(obj: Any, types: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        out = {k: _relink(v, types) for k, v in obj.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in types:
            out["reference"] = f"{types[ref]}/{ref.removeprefix('urn:uuid:')}"
        return out
    if isinstance(obj, list):
        return [_relink(v, types) for v in obj]
    return obj


def resource(example: str, role: str) -> Json:
    """A standalone copy of the resource whose role (identifier suffix or type) matches."""
    entries = bundle(example)["entry"]
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in entries}
    for entry in entries:
        res = entry["resource"]
        values = [i.get("value", "") for i in res.get("identifier", [])]
        if res["resourceType"] == role or any(v.endswith("/" + role) for v in values):
            return _relink(copy.deepcopy(res), types)
    raise KeyError(f"{example}: no resource with role {role}")


def ext(res: Json, url: str) -> Json:
    """The first extension with this URL."""
    return next(e for e in res["extension"] if e["url"] == url)


def drop_ext(url: str, path: tuple[Any, ...] = ()) -> Mutate:
    def mutate(res: Json) -> None:
        owner = dig(res, path)
        owner["extension"] = [e for e in owner["extension"] if e["url"] != url]
        if not owner["extension"]:
            del owner["extension"]

    return mutate


def dup_ext(url: str, path: tuple[Any, ...] = ()) -> Mutate:
    def mutate(res: Json) -> None:
        owner = dig(res, path)
        owner["extension"].append(copy.deepcopy(ext(owner, url)))

    return mutate


def dig(res: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        res = res[step]
    return res


def setter(path: tuple[Any, ...], value: Any) -> Mutate:
    def mutate(res: Json) -> None:
        dig(res, path[:-1])[path[-1]] = copy.deepcopy(value)

    return mutate


def remover(*path: Any) -> Mutate:
    def mutate(res: Json) -> None:
        del dig(res, path[:-1])[path[-1]]

    return mutate


def appender(path: tuple[Any, ...], value: Any) -> Mutate:
    def mutate(res: Json) -> None:
        dig(res, path).append(copy.deepcopy(value))

    return mutate


def dup_item(path: tuple[Any, ...], index: int = 0) -> Mutate:
    def mutate(res: Json) -> None:
        items = dig(res, path)
        items.append(copy.deepcopy(items[index]))

    return mutate


def both(*steps: Mutate) -> Mutate:
    def mutate(res: Json) -> None:
        for step in steps:
            step(res)

    return mutate


def replace_identifier(system: str) -> Mutate:
    """Swap the identifier with this system for one of an unrelated system (keeps 1..* happy)."""

    def mutate(res: Json) -> None:
        for ident in res["identifier"]:
            if ident["system"] == system:
                ident["system"] = "https://other.example.org/id"

    return mutate


def cc(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def code_and_side(code: str, laterality: str | None) -> Mutate:
    """The ICD-10-CM code set to ``code``; the laterality qualifier to ``laterality`` (None: no
    bodySite, as the mapper writes a not-applicable laterality)."""

    def mutate(res: Json) -> None:
        res["code"]["coding"][0]["code"] = code
        if laterality is None:
            res.pop("bodySite", None)
        else:
            res["bodySite"][0]["extension"][0]["valueCodeableConcept"] = cc(SCT, laterality)

    return mutate


def E(severity: str, expression: str, rule: str) -> Json:  # noqa: N802 - table shorthand
    return {"severity": severity, "expression": expression, "rule": rule}


G1, G3, G4 = (
    "good-01-lateral-epicondylitis-graston",
    "good-03-plantar-fasciitis-hawkgrips-bruising",
    "good-04-bilateral-patellar-tendinopathy-sastm",
)  # noqa: E501
G3M = G3 + "+moderate"
G5, G6 = "good-05-hamstring-strain-gua-sha", "good-06-post-tka-tecnica-gavilan-rom-lefs"
G7, G8 = "good-07-entered-in-error", "good-08-cancelled-post-tha"
PROC, ADJ = "procedure", "adjunct/stretching"
ROM = "rom/knee-flexion-right-active-pre"
PERIOD_END = ("performedPeriod", "end")


TECH, SNUM, PLAN, DUR = (
    SD + "iastm-technique",
    SD + "iastm-session-number",
    SD + "iastm-planned-sessions",
    SD + "iastm-duration",
)  # noqa: E501
SRV, SRH, TIMING, MODE = (
    SD + "source-record-version",
    SD + "source-record-hash",
    SD + "iastm-measurement-timing",
    SD + "iastm-rom-mode",
)  # noqa: E501
SEV, EXPECTED, SITE = (
    SD + "iastm-adverse-effect-severity",
    SD + "iastm-adverse-effect-expected",
    SD + "iastm-adverse-effect-site",
)  # noqa: E501
SESSION, SESSION_RES = f"{C}/sid/iastm-session", f"{C}/sid/iastm-session-resource"
OTHER_ID = {"system": "https://other.example.org/id", "value": "X-1"}
LOC_EXT = {"url": LOC, "valueCodeableConcept": cc(SCT, "261183002")}
RP, PP, OP, CP = (
    "iastm-procedure",
    "iastm-adjunct-procedure",
    "iastm-pain-observation",
    "iastm-condition",
)  # noqa: E501
RO, MO = "iastm-rom-observation", "iastm-prom-observation"
EO, EFFECT = "iastm-effect-observation", "obs/effect/bruising/plantar-fascia-right"
PAIN = "obs/pain-post"
G1V2, G8NC = G1 + "+v2", G8 + "+nocond"
SCREEN, SO = "obs/screening", "iastm-screening-observation"
COND1, COND3, COND5, COND6Z = (
    "condition/DX-100245-01",
    "condition/DX-100512-01",
    "condition/DX-100801-01",
    "condition/DX-100934-03",
)  # noqa: E501

# fmt: off
#: (name, example, role, profile id, description, mutation, expected, also_expected)
MUTATIONS: list[tuple[str, str, str, str, str, Mutate, Json, list[Json]]] = [
    # --- iastm-procedure: invariants
    ("proc-1-start-equals-end", G3, PROC, RP, "performedPeriod start == end (start < end required)",
     setter(PERIOD_END, "2025-04-02T08:15:00-05:00"), E("error", "Procedure", "iastm-proc-1"), []),
    ("proc-1-same-instant-other-offset", G3, PROC, RP,
     "end 09:15-04:00 is the same instant as start 08:15-05:00: not after it",
     setter(PERIOD_END, "2025-04-02T09:15:00-04:00"), E("error", "Procedure", "iastm-proc-1"), []),
    ("proc-1-end-before-start", G3, PROC, RP, "end before start: iastm-proc-1 and base per-1",
     setter(PERIOD_END, "2025-04-02T08:00:00-05:00"), E("error", "Procedure", "iastm-proc-1"),
     [E("error", "Procedure.performedPeriod", "per-1")]),
    ("proc-2-technique-missing", G3, PROC, RP, "technique extension removed", drop_ext(TECH),
     E("error", "Procedure", "iastm-proc-2"),
     [E("error", "Procedure", "slice:Procedure.extension:technique")]),
    ("proc-2-technique-twice", G3, PROC, RP, "two technique extensions", dup_ext(TECH),
     E("error", "Procedure", "iastm-proc-2"),
     [E("error", "Procedure", "slice:Procedure.extension:technique")]),
    ("proc-3-not-done-no-reason", G8, PROC, RP, "not-done without statusReason",
     remover("statusReason"), E("error", "Procedure", "iastm-proc-3"), []),
    ("proc-4-site-without-laterality", G3, PROC, RP, "bodySite without laterality",
     drop_ext(LAT, ("bodySite", 0)), E("error", "Procedure", "iastm-proc-4"),
     [E("error", "Procedure.bodySite[0]", "slice:Procedure.bodySite.extension:laterality")]),
    ("proc-4-site-two-lateralities", G3, PROC, RP, "bodySite with two laterality extensions",
     dup_ext(LAT, ("bodySite", 0)), E("error", "Procedure", "iastm-proc-4"),
     [E("error", "Procedure.bodySite[0]", "slice:Procedure.bodySite.extension:laterality")]),
    ("proc-5-no-session-identifier", G3, PROC, RP, "iastm-session identifier replaced",
     replace_identifier(SESSION), E("error", "Procedure", "iastm-proc-5"),
     [E("error", "Procedure", "slice:Procedure.identifier:iastm-session")]),
    ("proc-5-two-session-identifiers", G3, PROC, RP, "two iastm-session identifiers",
     appender(("identifier",), {"system": SESSION, "value": "OTHER"}),
     E("error", "Procedure", "iastm-proc-5"),
     [E("error", "Procedure", "slice:Procedure.identifier:iastm-session")]),
    ("proc-6-plan-exceeded", G3, PROC, RP, "session number 12 of 10 planned (warning only)",
     lambda r: ext(r, SNUM).update(valuePositiveInt=12), E("warning", "Procedure", "iastm-proc-6"),
     []),
    ("proc-7-no-reason", G3, PROC, RP, "completed without reasonReference",
     remover("reasonReference"), E("error", "Procedure", "iastm-proc-7"), []),
    ("proc-8-complication-no-severity", G3M, PROC, RP, "adverse effect without severity",
     drop_ext(SEV, ("complication", 0)), E("error", "Procedure", "iastm-proc-8"),
     [E("error", "Procedure.complication[0]", "slice:Procedure.complication.extension:severity")]),
    ("proc-8-complication-two-severities", G3M, PROC, RP, "adverse effect with two severities",
     dup_ext(SEV, ("complication", 0)), E("error", "Procedure", "iastm-proc-8"),
     [E("error", "Procedure.complication[0]", "slice:Procedure.complication.extension:severity")]),
    ("proc-9-performed-datetime", G3, PROC, RP, "completed with performedDateTime, no Period",
     both(remover("performedPeriod"), setter(("performedDateTime",), "2025-04-02T08:15:00-05:00")),
     E("error", "Procedure", "iastm-proc-9"), []),
    ("us-core-7-no-performed", G3, PROC, RP, "completed without performed[x]",
     remover("performedPeriod"), E("error", "Procedure", "us-core-7"),
     [E("error", "Procedure", "iastm-proc-9")]),
    # --- iastm-procedure: cardinality, slices, bindings
    ("proc-session-number-missing", G3, PROC, RP, "session-number extension removed",
     drop_ext(SNUM), E("error", "Procedure", "slice:Procedure.extension:session-number"), []),
    ("proc-planned-sessions-twice", G4, PROC, RP, "two planned-sessions extensions",
     dup_ext(PLAN), E("error", "Procedure", "slice:Procedure.extension:planned-sessions"),
     # iastm-proc-6 compares the now two-valued planned-sessions: a FHIRPath evaluation error
     [E("error", "Procedure", "iastm-proc-6")]),
    ("proc-duration-twice", G3, PROC, RP, "two iastm-duration extensions",
     both(appender(("extension",), {"url": DUR, "valueDuration": {"value": 30, "system": UCUM,
          "code": "min", "unit": "min"}}), dup_ext(DUR)),
     E("error", "Procedure", "slice:Procedure.extension:duration"), []),
    ("proc-record-version-missing", G3, PROC, RP, "source-record-version removed",
     drop_ext(SRV), E("error", "Procedure", "slice:Procedure.extension:source-record-version"), []),
    ("proc-record-version-twice", G3, PROC, RP, "two source-record-version extensions",
     dup_ext(SRV), E("error", "Procedure", "slice:Procedure.extension:source-record-version"), []),
    ("proc-record-hash-missing", G3, PROC, RP, "source-record-hash removed",
     drop_ext(SRH), E("error", "Procedure", "slice:Procedure.extension:source-record-hash"), []),
    ("proc-identifier-no-value", G3, PROC, RP, "an extra identifier without value",
     appender(("identifier",), {"system": "https://other.example.org/id"}),
     E("error", "Procedure.identifier[2]", "card:Procedure.identifier.value"), []),
    ("proc-identifier-no-system", G3, PROC, RP, "an extra identifier without system",
     appender(("identifier",), {"value": "X-1"}),
     E("error", "Procedure.identifier[2]", "card:Procedure.identifier.system"), []),
    ("proc-two-session-resource-ids", G3, PROC, RP, "two session-resource identifiers",
     appender(("identifier",), {"system": SESSION_RES, "value": "RBPT-2025-000518/other"}),
     E("error", "Procedure", "slice:Procedure.identifier:session-resource"), []),
    ("proc-code-missing", G3, PROC, RP, "Procedure.code removed", remover("code"),
     E("error", "Procedure", "card:Procedure.code"), []),
    ("proc-code-without-iastm-coding", G3, PROC, RP, "code without the local iastm coding",
     setter(("code", "coding"), [{"system": SCT, "code": "91251008"}]),
     E("error", "Procedure.code", "slice:Procedure.code.coding:iastm"), []),
    ("proc-code-two-sct", G3, PROC, RP, "code with SNOMED 91251008 twice",
     dup_item(("code", "coding"), 0),
     E("error", "Procedure.code", "slice:Procedure.code.coding:sct"),
     []),
    ("proc-no-body-site", G3, PROC, RP, "bodySite removed", remover("bodySite"),
     E("error", "Procedure", "card:Procedure.bodySite"), []),
    ("proc-site-without-local-coding", G3, PROC, RP, "bodySite without iastm-body-site coding",
     setter(("bodySite", 0, "coding"), [{"system": SCT, "code": "56459004"}]),
     E("error", "Procedure.bodySite[0]", "slice:Procedure.bodySite.coding:iastm"), []),
    ("proc-site-two-sct", G3, PROC, RP, "bodySite with two SNOMED codings",
     dup_item(("bodySite", 0, "coding"), 1),
     E("error", "Procedure.bodySite[0]", "slice:Procedure.bodySite.coding:sct"), []),
    ("proc-site-sct-not-in-vs", G3, PROC, RP, "bodySite SNOMED code outside iastm-body-site-snomed",
     setter(("bodySite", 0, "coding", 1, "code"), "40983000"),
     E("error", "Procedure.bodySite[0].coding[1]", "binding:Procedure.bodySite.coding:sct"), []),
    ("proc-location-qualifier-not-in-vs", G1, PROC, RP, "location qualifier 261183002 (Upper)",
     setter(("bodySite", 0, "extension", 1, "valueCodeableConcept"), cc(SCT, "261183002")),
     E("error", "Procedure", "iastm-proc-10"), []),
    ("proc-laterality-not-in-vs", G3, PROC, RP, "laterality 419161000 (R4 unilateral left)",
     setter(("bodySite", 0, "extension", 0, "valueCodeableConcept"), cc(SCT, "419161000")),
     E("error", "Procedure.bodySite[0].extension[0].valueCodeableConcept",
       "binding:Extension.value[x]"), []),
    ("proc-used-code-not-in-vs", G3, PROC, RP, "usedCode coded in SNOMED",
     setter(("usedCode", 0), cc(SCT, "706172005")),
     E("error", "Procedure.usedCode[0]", "binding:Procedure.usedCode"), []),
    ("proc-complication-not-in-vs", G3M, PROC, RP, "complication Contusion (extensible: warning)",
     setter(("complication", 0, "coding"), [{"system": SCT, "code": "125667009"}]),
     E("warning", "Procedure.complication[0]", "binding:Procedure.complication"), []),
    ("proc-complication-two-expected", G3M, PROC, RP, "two adverse-effect-expected extensions",
     dup_ext(EXPECTED, ("complication", 0)),
     E("error", "Procedure.complication[0]", "slice:Procedure.complication.extension:expected"),
     []),
    ("proc-complication-two-sites", G3M, PROC, RP, "two adverse-effect-site extensions",
     dup_ext(SITE, ("complication", 0)),
     E("error", "Procedure.complication[0]", "slice:Procedure.complication.extension:site"), []),
    ("proc-technique-abstract-code", G3, PROC, RP,
     "technique = abstract parent iastm (docs/decisions.md#d4)",
     lambda r: ext(r, TECH).update(valueCodeableConcept=cc(f"{C}/CodeSystem/iastm-technique",
                                                            "iastm")),
     E("error", "Procedure.extension[2].valueCodeableConcept", "binding:Extension.value[x]"), []),
    ("proc-technique-string", G3, PROC, RP, "technique extension with valueString",
     lambda r: (ext(r, TECH).pop("valueCodeableConcept"), ext(r, TECH).update(valueString="x")),
     E("error", "Procedure.extension[2]", "type:Extension.value[x]"),
     # a string is still checked against the required binding: "no code provided" (as HAPI)
     [E("error", "Procedure.extension[2].valueString", "binding:Extension.value[x]")]),
    ("proc-session-number-integer", G3, PROC, RP, "session-number as valueInteger",
     lambda r: (ext(r, SNUM).pop("valuePositiveInt"), ext(r, SNUM).update(valueInteger=5)),
     E("error", "Procedure.extension[3]", "type:Extension.value[x]"), []),
    ("proc-record-version-nested", G3, PROC, RP, "source-record-version with a nested extension",
     lambda r: ext(r, SRV).update(extension=[{"url": "x", "valueString": "y"}]),
     E("error", "Procedure.extension[0]", "card:Extension.extension"),
     [E("error", "Procedure.extension[0]", "ext-1")]),
    ("proc-rom-mode-extension", G3, PROC, RP, "iastm-rom-mode (context Observation) on Procedure",
     appender(("extension",), {"url": MODE, "valueCode": "active"}),
     E("error", "Procedure", f"context:{MODE}"), []),
    ("proc-technique-on-body-site", G3, PROC, RP, "iastm-technique (context Procedure) on bodySite",
     appender(("bodySite", 0, "extension"), {"url": TECH, "valueCodeableConcept": cc(
         f"{C}/CodeSystem/iastm-technique", "graston")}),
     E("error", "Procedure.bodySite[0]", f"context:{TECH}"), []),
    # --- iastm-adjunct-procedure
    ("adj-duration-missing", G3, ADJ, PP, "adjunct without iastm-duration", drop_ext(DUR),
     E("error", "Procedure", "slice:Procedure.extension:duration"), []),
    ("adj-duration-in-hours", G3, ADJ, PP, "duration in UCUM h",
     lambda r: ext(r, DUR)["valueDuration"].update(code="h", unit="h"),
     E("error", "Procedure.extension[2].valueDuration.code", "pattern:Extension.value[x]"), []),
    ("adj-no-part-of", G3, ADJ, PP, "adjunct without partOf", remover("partOf"),
     E("error", "Procedure", "card:Procedure.partOf"), []),
    ("adj-two-part-of", G3, ADJ, PP, "adjunct partOf twice", dup_item(("partOf",)),
     E("error", "Procedure", "card:Procedure.partOf"), []),
    ("adj-no-adjunct-coding", G3, ADJ, PP, "code without the iastm-adjunct coding",
     setter(("code", "coding"), [{"system": SCT, "code": "51998003"}]),
     E("error", "Procedure.code", "slice:Procedure.code.coding:adjunct"), []),
    ("adj-no-reason", G3, ADJ, PP, "completed adjunct without reason", remover("reasonReference"),
     E("error", "Procedure", "iastm-proc-7"), []),
    ("adj-performed-datetime", G3, ADJ, PP, "completed adjunct with performedDateTime",
     both(remover("performedPeriod"), setter(("performedDateTime",), "2025-04-02T08:15:00-05:00")),
     E("error", "Procedure", "iastm-proc-9"), []),
    ("adj-proc-1-equal-bounds", G3, ADJ, PP, "adjunct period start == end",
     setter(PERIOD_END, "2025-04-02T08:15:00-05:00"), E("error", "Procedure", "iastm-proc-1"), []),
    ("adj-not-done-no-reason", G3, ADJ, PP, "not-done adjunct without statusReason",
     setter(("status",), "not-done"), E("error", "Procedure", "iastm-proc-3"), []),
    ("adj-no-session-resource-id", G3, ADJ, PP, "session-resource identifier replaced",
     replace_identifier(SESSION_RES),
     E("error", "Procedure", "slice:Procedure.identifier:session-resource"), []),
    # --- iastm-condition
    ("cond-1-two-icd", G1, COND1, CP, "two ICD-10-CM codings", dup_item(("code", "coding"), 0),
     E("error", "Condition", "iastm-cond-1"),
     [E("error", "Condition.code", "slice:Condition.code.coding:icd10cm")]),
    ("cond-1-no-icd", G1, COND1, CP, "SNOMED only, no ICD-10-CM coding",
     setter(("code", "coding"), [{"system": SCT, "code": "202855006"}]),
     E("error", "Condition", "iastm-cond-1"),
     [E("error", "Condition.code", "slice:Condition.code.coding:icd10cm")]),
    ("cond-2r-right-code-left-side", G1, COND1, CP, "M77.11 (right) with laterality Left",
     setter(("bodySite", 0, "extension", 0, "valueCodeableConcept"), cc(SCT, "7771000")),
     E("error", "Condition", "iastm-cond-2r"), []),
    ("cond-2l-left-code-right-side", G1, COND1, CP, "M77.12 (left) with laterality Right",
     setter(("code", "coding", 0, "code"), "M77.12"), E("error", "Condition", "iastm-cond-2l"), []),
    ("cond-2b-bilateral-code-right-side", G6, COND6Z, CP, "Z96.653 (bilateral) with Right",
     setter(("code", "coding", 0, "code"), "Z96.653"),
     E("error", "Condition", "iastm-cond-2b"), []),
    ("cond-3-injury-no-7th-char", G5, COND5, CP, "S76.312 without 7th character",
     setter(("code", "coding", 0, "code"), "S76.312"), E("error", "Condition", "iastm-cond-3"), []),
    ("con-5-entered-in-error-with-clinical", G7, COND1, CP,
     "entered-in-error Condition with clinicalStatus",
     setter(("clinicalStatus",), cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "active")), E("error", "Condition", "con-5"), []),
    ("con-3-no-clinical-status", G1, COND1, CP, "confirmed Condition without clinicalStatus",
     remover("clinicalStatus"), E("warning", "Condition", "con-3"), []),
    ("cond-no-verification", G1, COND1, CP, "verificationStatus removed",
     remover("verificationStatus"),
     E("error", "Condition", "card:Condition.verificationStatus"), []),
    ("cond-category-not-encounter-dx", G1, COND1, CP, "category problem-list-item only",
     setter(("category",), [cc("http://terminology.hl7.org/CodeSystem/condition-category",
                               "problem-list-item")]),
     E("error", "Condition", "slice:Condition.category:us-core"), []),
    ("cond-category-twice", G1, COND1, CP, "encounter-diagnosis category twice",
     dup_item(("category",)), E("error", "Condition", "slice:Condition.category:us-core"), []),
    ("cond-no-code", G1, COND1, CP, "Condition.code removed", remover("code"),
     E("error", "Condition", "card:Condition.code"), [E("error", "Condition", "iastm-cond-1")]),
    ("cond-no-code-text", G1, COND1, CP, "Condition.code.text removed", remover("code", "text"),
     E("error", "Condition.code", "card:Condition.code.text"), []),
    ("cond-two-sct", G1, COND1, CP, "two SNOMED codings",
     both(appender(("code", "coding"), {"system": SCT, "code": "202855006"}),
          appender(("code", "coding"), {"system": SCT, "code": "73583000"})),
     E("error", "Condition.code", "slice:Condition.code.coding:sct"), []),
    ("cond-site-no-laterality", G3, COND3, CP, "bodySite without laterality (M72.2)",
     drop_ext(LAT, ("bodySite", 0)),
     E("error", "Condition.bodySite[0]", "slice:Condition.bodySite.extension:laterality"), []),
    ("cond-laterality-not-in-vs", G3, COND3, CP, "laterality 419465000 (R4 unilateral right)",
     setter(("bodySite", 0, "extension", 0, "valueCodeableConcept"), cc(SCT, "419465000")),
     E("error", "Condition.bodySite[0].extension[0].valueCodeableConcept",
       "binding:Extension.value[x]"), []),
    ("cond-location-qualifier-not-in-vs", G3, COND3, CP, "location qualifier 261183002 (Upper)",
     appender(("bodySite", 0, "extension"), LOC_EXT),
     E("error", "Condition", "iastm-cond-4"), []),
    ("cond-no-session-resource-id", G1, COND1, CP, "session-resource identifier replaced",
     replace_identifier(SESSION_RES),
     E("error", "Condition", "slice:Condition.identifier:session-resource"), []),
    ("cond-two-condition-ids", G1, COND1, CP, "two iastm-condition identifiers",
     appender(("identifier",), {"system": f"{C}/sid/iastm-condition", "value": "DX-2"}),
     E("error", "Condition", "slice:Condition.identifier:condition"), []),
    # --- iastm-encounter
    ("enc-no-type", G3, "encounter", "iastm-encounter", "Encounter.type removed", remover("type"),
     E("error", "Encounter", "card:Encounter.type"), []),
    ("enc-no-subject", G3, "encounter", "iastm-encounter", "Encounter.subject removed",
     remover("subject"), E("error", "Encounter", "card:Encounter.subject"), []),
    ("enc-no-session-resource-id", G3, "encounter", "iastm-encounter",
     "session-resource identifier replaced", replace_identifier(SESSION_RES),
     E("error", "Encounter", "slice:Encounter.identifier:session-resource"), []),
    ("per-1-end-before-start", G3, "encounter", "iastm-encounter", "period end before start",
     setter(("period", "end"), "2025-04-02T08:00:00-05:00"),
     E("error", "Encounter.period", "per-1"), []),
    ("per-1-across-dst", G3, "encounter", "iastm-encounter",
     "DST fall-back: 01:10-05:00 (06:10Z) to 01:50-04:00 (05:50Z) looks later but is earlier",
     setter(("period",), {"start": "2025-11-02T01:10:00-05:00",
                          "end": "2025-11-02T01:50:00-04:00"}),
     E("error", "Encounter.period", "per-1"), []),
    ("enc-record-hash-twice", G3, "encounter", "iastm-encounter", "two source-record-hash",
     dup_ext(SRH), E("error", "Encounter", "slice:Encounter.extension:source-record-hash"), []),
    # --- iastm-organization / practitioner / patient
    ("org-npi-luhn", G3, "Organization", "iastm-organization", "NPI with a wrong check digit",
     setter(("identifier", 1, "value"), "1234567890"),
     E("error", "Organization.identifier[1]", "us-core-17"), []),
    ("org-no-clinic-id", G3, "Organization", "iastm-organization", "clinic identifier replaced",
     replace_identifier(f"{C}/sid/clinic"),
     E("error", "Organization", "slice:Organization.identifier:clinic"), []),
    ("org-two-clinic-ids", G3, "Organization", "iastm-organization", "two clinic identifiers",
     dup_item(("identifier",)), E("error", "Organization", "slice:Organization.identifier:clinic"),
     []),
    ("org-no-active", G3, "Organization", "iastm-organization", "active removed",
     remover("active"), E("error", "Organization", "card:Organization.active"), []),
    ("org-no-name", G3, "Organization", "iastm-organization", "name removed", remover("name"),
     E("error", "Organization", "card:Organization.name"), []),
    ("prac-no-npi", G3, "Practitioner", "iastm-practitioner", "NPI identifier replaced",
     replace_identifier("http://hl7.org/fhir/sid/us-npi"),
     E("error", "Practitioner", "slice:Practitioner.identifier:NPI"), []),
    ("prac-npi-luhn", G3, "Practitioner", "iastm-practitioner", "NPI with a wrong check digit",
     setter(("identifier", 0, "value"), "1987654320"),
     E("error", "Practitioner.identifier[0]", "us-core-17"), []),
    ("prac-no-family", G3, "Practitioner", "iastm-practitioner", "name.family removed",
     remover("name", 0, "family"),
     E("error", "Practitioner.name[0]", "card:Practitioner.name.family"), []),
    ("prac-no-name", G3, "Practitioner", "iastm-practitioner", "name removed", remover("name"),
     E("error", "Practitioner", "card:Practitioner.name"), []),
    ("pat-no-name", G3, "Patient", "iastm-patient", "name removed", remover("name"),
     E("error", "Patient", "card:Patient.name"), []),
    ("pat-us-core-6", G3, "Patient", "iastm-patient", "name with text only",
     setter(("name",), [{"text": "Grace Okafor"}]), E("error", "Patient.name[0]", "us-core-6"), []),
    ("pat-no-gender", G3, "Patient", "iastm-patient", "gender removed", remover("gender"),
     E("error", "Patient", "card:Patient.gender"), []),
    ("pat-identifier-no-system", G3, "Patient", "iastm-patient", "identifier.system removed",
     remover("identifier", 0, "system"),
     E("error", "Patient.identifier[0]", "card:Patient.identifier.system"), []),
    ("pat-no-identifier", G3, "Patient", "iastm-patient", "identifier removed",
     remover("identifier"), E("error", "Patient", "card:Patient.identifier"), []),
    ("pat-telecom-system", G3, "Patient", "iastm-patient", "telecom.system outside the ValueSet",
     setter(("telecom",), [{"system": "pigeon", "value": "+1-217-555-0101"}]),
     E("error", "Patient.telecom[0].system", "binding:Patient.telecom.system"), []),
    ("pat-telecom-no-value", G3, "Patient", "iastm-patient", "telecom without value",
     setter(("telecom",), [{"system": "phone"}]),
     E("error", "Patient.telecom[0]", "card:Patient.telecom.value"), []),
    # --- iastm-pain-observation
    ("obs-1-pain-11", G3, PAIN, OP, "pain 11", setter(("valueQuantity", "value"), 11),
     E("error", "Observation", "iastm-obs-1"), []),
    ("obs-1-pain-fraction", G3, PAIN, OP, "pain 3.5", setter(("valueQuantity", "value"), 3.5),
     E("error", "Observation", "iastm-obs-1"), []),
    ("obs-2-no-timing", G3, PAIN, OP, "timing extension removed", drop_ext(TIMING),
     E("error", "Observation", "iastm-obs-2"),
     [E("error", "Observation", "slice:Observation.extension:timing")]),
    ("obs-2-timing-during", G3, PAIN, OP, "timing 'during'",
     lambda r: ext(r, TIMING).update(valueCode="during"), E("error", "Observation", "iastm-obs-2"),
     [E("error", "Observation.extension[2].valueCode", "binding:Extension.value[x]")]),
    ("pain-value-no-system", G3, PAIN, OP, "valueQuantity without UCUM system",
     remover("valueQuantity", "system"),
     E("error", "Observation.valueQuantity.system", "pattern:Observation.value[x]"),
     [E("error", "Observation.valueQuantity", "qty-3")]),  # base Quantity invariant (as HAPI)
    ("pain-value-other-system", G3, PAIN, OP, "valueQuantity system not UCUM",
     setter(("valueQuantity", "system"), "http://example.org/units"),
     E("error", "Observation.valueQuantity", "us-core-3"),
     [E("error", "Observation.valueQuantity.system", "pattern:Observation.value[x]")]),
    ("pain-no-value", G3, PAIN, OP, "valueQuantity removed", remover("valueQuantity"),
     E("error", "Observation", "card:Observation.value[x]"),
     [E("error", "Observation", "us-core-2"), E("error", "Observation", "iastm-obs-1")]),
    ("pain-no-effective", G3, PAIN, OP, "effectiveDateTime removed", remover("effectiveDateTime"),
     E("error", "Observation", "card:Observation.effective[x]"), []),
    ("pain-effective-period", G3, PAIN, OP, "effectivePeriod instead of dateTime",
     both(remover("effectiveDateTime"), setter(("effectivePeriod",),
                                               {"start": "2025-04-02T08:45:00-05:00"})),
     E("error", "Observation.effectivePeriod", "type:Observation.effective[x]"), []),
    ("us-core-1-year-only", G3, PAIN, OP, "effectiveDateTime '2025'",
     setter(("effectiveDateTime",), "2025"),
     E("error", "Observation.effectiveDateTime", "us-core-1"), []),
    ("obs-4-no-part-of", G3, PAIN, OP, "partOf removed", remover("partOf"),
     E("error", "Observation", "iastm-obs-4"),
     [E("error", "Observation", "card:Observation.partOf")]),
    ("pain-no-subject", G3, PAIN, OP, "subject removed", remover("subject"),
     E("error", "Observation", "card:Observation.subject"), []),
    ("pain-category-exam", G3, PAIN, OP, "category exam instead of survey",
     setter(("category",), [cc("http://terminology.hl7.org/CodeSystem/observation-category",
                               "exam")]),
     E("error", "Observation", "slice:Observation.category:survey"), []),
    ("pain-category-twice", G3, PAIN, OP, "survey category twice", dup_item(("category",)),
     E("error", "Observation", "slice:Observation.category:survey"), []),
    ("pain-code-38208-5", G3, PAIN, OP, "LOINC 38208-5 instead of 72514-3",
     setter(("code", "coding"), [{"system": "http://loinc.org", "code": "38208-5"}]),
     E("error", "Observation.code", "pattern:Observation.code"), []),
    ("pain-technique-extension", G3, PAIN, OP, "iastm-technique (context Procedure) on Observation",
     appender(("extension",), {"url": TECH, "valueCodeableConcept": cc(
         f"{C}/CodeSystem/iastm-technique", "graston")}),
     E("error", "Observation", f"context:{TECH}"), []),
    ("pain-no-session-resource-id", G3, PAIN, OP, "session-resource identifier replaced",
     replace_identifier(SESSION_RES),
     E("error", "Observation", "slice:Observation.identifier:session-resource"), []),
    # --- iastm-rom-observation
    ("obs-3-rom-in-radians", G6, ROM, RO, "ROM in rad",
     lambda r: r["valueQuantity"].update(code="rad", unit="rad"),
     E("error", "Observation", "iastm-obs-3"),
     [E("error", "Observation.valueQuantity.code", "pattern:Observation.value[x]")]),
    ("rom-no-mode", G6, ROM, RO, "rom-mode extension removed", drop_ext(MODE),
     E("error", "Observation", "slice:Observation.extension:rom-mode"), []),
    ("rom-mode-semi", G6, ROM, RO, "rom-mode 'semi'",
     lambda r: ext(r, MODE).update(valueCode="semi"),
     E("error", "Observation.extension[3].valueCode", "binding:Extension.value[x]"), []),
    ("rom-no-timing", G6, ROM, RO, "timing extension removed", drop_ext(TIMING),
     E("error", "Observation", "slice:Observation.extension:timing"), []),
    ("rom-code-loinc", G6, ROM, RO, "ROM coded with a LOINC code",
     setter(("code", "coding"), [{"system": "http://loinc.org", "code": "92850-7"}]),
     E("error", "Observation.code", "binding:Observation.code"), []),
    ("rom-no-body-site", G6, ROM, RO, "bodySite removed", remover("bodySite"),
     E("error", "Observation", "card:Observation.bodySite"), []),
    ("rom-body-site-region", G6, ROM, RO, "bodySite = knee region, not knee joint",
     setter(("bodySite", "coding"), [{"system": SCT, "code": "72696002"}]),
     E("error", "Observation.bodySite", "binding:Observation.bodySite"), []),
    ("rom-site-no-laterality", G6, ROM, RO, "bodySite without laterality",
     drop_ext(LAT, ("bodySite",)),
     E("error", "Observation.bodySite", "slice:Observation.bodySite.extension:laterality"), []),
    ("obs-5-location-qualifier-not-in-vs", G6, ROM, RO, "location qualifier 261183002 (Upper)",
     appender(("bodySite", "extension"), LOC_EXT), E("error", "Observation", "iastm-obs-5"), []),
    ("rom-method-snomed", G6, ROM, RO, "method coded in SNOMED",
     setter(("method",), cc(SCT, "258084008")),
     E("error", "Observation.method", "binding:Observation.method"), []),
    ("rom-category-survey", G6, ROM, RO, "category survey instead of exam",
     setter(("category",), [cc("http://terminology.hl7.org/CodeSystem/observation-category",
                               "survey")]),
     E("error", "Observation", "slice:Observation.category:exam"), []),
    # --- iastm-prom-observation
    ("prom-code-loinc", G6, "prom/LEFS", MO, "PROM coded with a LOINC code",
     setter(("code", "coding"), [{"system": "http://loinc.org", "code": "72514-3"}]),
     E("error", "Observation.code", "binding:Observation.code"), []),
    ("prom-functional-status-twice", G6, "prom/LEFS", MO, "functional-status category twice",
     dup_item(("category",), 1),
     E("error", "Observation", "slice:Observation.category:functional-status"), []),
    ("prom-component-no-system", G6, "prom/LEFS", MO, "component valueQuantity without system",
     setter(("component",), [{"code": {"text": "Walking"}, "valueQuantity": {"value": 5,
                                                                             "code": "{score}"}}]),
     E("error", "Observation.component[0].valueQuantity.system",
       "pattern:Observation.component.value[x]"),
     [E("error", "Observation.component[0].valueQuantity", "qty-3")]),
    ("prom-component-string", G6, "prom/LEFS", MO, "component valueString",
     setter(("component",), [{"code": {"text": "Walking"}, "valueString": "5"}]),
     E("error", "Observation.component[0].valueString", "type:Observation.component.value[x]"),
     # the Quantity pattern's properties are missing from the string (as HAPI reports)
     [E("error", "Observation.component[0].valueString.system",
        "pattern:Observation.component.value[x]"),
      E("error", "Observation.component[0].valueString.code",
        "pattern:Observation.component.value[x]")]),
    ("prom-no-part-of", G6, "prom/LEFS", MO, "partOf removed", remover("partOf"),
     E("error", "Observation", "iastm-obs-4"),
     [E("error", "Observation", "card:Observation.partOf")]),
    ("prom-timing-twice", G6, "prom/LEFS", MO, "two timing extensions",
     both(appender(("extension",), {"url": TIMING, "valueCode": "pre"}),
          appender(("extension",), {"url": TIMING, "valueCode": "post"})),
     E("error", "Observation", "slice:Observation.extension:timing"), []),
    # --- issue 10 #1: laterality from the ICD-10-CM table (every sided code)
    *[(f"cond-{key[11:]}-{code.lower().replace('.', '')}-{name.split()[-1].lower()}", G1, COND1,
       CP, f"{code} ({title}) with {name}",
       code_and_side(code, lat), E("error", "Condition", key), [])
      for key, code, title, name, lat in [
          ("iastm-cond-2r", "M76.61", "Achilles tendinitis, right leg", "laterality Left",
           "7771000"),
          ("iastm-cond-2r", "M76.61", "Achilles tendinitis, right leg", "laterality absent", None),
          ("iastm-cond-2l", "M79.672", "pain in left foot", "laterality Right", "24028007"),
          ("iastm-cond-2r", "M25.551", "pain in right hip", "laterality Left", "7771000"),
          ("iastm-cond-2l", "M25.552", "pain in left hip", "laterality Right", "24028007"),
          ("iastm-cond-2r", "M25.661", "stiffness of right knee", "laterality Left", "7771000"),
          ("iastm-cond-2r", "M76.31", "iliotibial band syndrome, right leg", "laterality Left",
           "7771000"),
          ("iastm-cond-2r", "M70.61", "trochanteric bursitis, right hip", "laterality Left",
           "7771000"),
          ("iastm-cond-2r", "S76.111A", "strain of right quadriceps", "laterality Left",
           "7771000"),
          ("iastm-cond-2r", "S86.011A", "strain of right Achilles tendon", "laterality Left",
           "7771000"),
          ("iastm-cond-2b", "M17.0", "bilateral primary osteoarthritis of knee",
           "laterality Right", "24028007"),
          ("iastm-cond-2u", "M76.60", "Achilles tendinitis, unspecified leg", "laterality Right",
           "24028007"),
      ]],
    # --- issue 10 #2: required bindings of the base specification (not re-declared by us)
    ("proc-status-bogus", G3, PROC, RP, "Procedure.status 'bogus'", setter(("status",), "bogus"),
     E("error", "Procedure.status", "binding:Procedure.status"), []),
    ("adj-status-bogus", G1, ADJ, PP, "adjunct Procedure.status 'bogus'",
     setter(("status",), "bogus"), E("error", "Procedure.status", "binding:Procedure.status"), []),
    ("pain-status-bogus", G1, PAIN, OP, "Observation.status 'bogus'", setter(("status",), "bogus"),
     E("error", "Observation.status", "binding:Observation.status"), []),
    ("rom-status-bogus", G6, ROM, RO, "ROM Observation.status 'bogus'",
     setter(("status",), "bogus"),
     E("error", "Observation.status", "binding:Observation.status"), []),
    ("enc-status-bogus", G1, "encounter", "iastm-encounter", "Encounter.status 'bogus'",
     setter(("status",), "bogus"), E("error", "Encounter.status", "binding:Encounter.status"), []),
    ("cond-clinical-status-bogus", G1, COND1, CP, "Condition.clinicalStatus 'bogus'",
     setter(("clinicalStatus",), cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "bogus")),
     E("error", "Condition.clinicalStatus", "binding:Condition.clinicalStatus"), []),
    ("pat-name-use-bogus", G1, "Patient", "iastm-patient", "HumanName.use 'bogus'",
     setter(("name", 0, "use"), "bogus"),
     E("error", "Patient.name[0].use", "binding:Patient.name.use"), []),
    ("proc-identifier-use-bogus", G3, PROC, RP, "Identifier.use 'bogus'",
     setter(("identifier", 0, "use"), "bogus"),
     E("error", "Procedure.identifier[0].use", "binding:Procedure.identifier.use"), []),
    # --- issue 10 #6: expected mild effects are findings (iastm-effect-observation)
    ("effect-code-contusion", G3, EFFECT, EO, "finding Contusion (not an IASTM effect)",
     setter(("code", "coding"), [{"system": SCT, "code": "125667009"}]),
     E("error", "Observation.code", "binding:Observation.code"), []),
    ("effect-value-not-a-severity", G3, EFFECT, EO, "value 'Right' instead of a severity",
     setter(("valueCodeableConcept",), cc(SCT, "24028007")),
     E("error", "Observation.valueCodeableConcept", "binding:Observation.value[x]"), []),
    ("effect-no-part-of", G3, EFFECT, EO, "finding not part of the IASTM Procedure",
     remover("partOf"), E("error", "Observation", "iastm-obs-4"),
     [E("error", "Observation", "card:Observation.partOf")]),
    ("effect-category-survey", G3, EFFECT, EO, "category survey instead of exam",
     setter(("category",), [cc("http://terminology.hl7.org/CodeSystem/observation-category",
                               "survey")]),
     E("error", "Observation", "slice:Observation.category:exam"), []),
    # --- issue 10 round 2 (one case per remaining defect; docs/clinical.md)
    # #3 the lateral-elbow Procedure HAPI used to call invalid: a qualifier outside our subset
    ("proc-10-elbow-qualifier-upper", G1, PROC, RP, "#3: lateral elbow with qualifier Upper",
     setter(("bodySite", 0, "extension", 1), LOC_EXT), E("error", "Procedure", "iastm-proc-10"),
     []),
    # #4 IASTM time: the 2.0 Procedure's own sub-interval and minutes
    ("proc-v2-own-period-reversed", G1V2, PROC, RP, "#4: IASTM sub-interval ends before it starts",
     setter(PERIOD_END, "2025-03-04T08:59:00-06:00"), E("error", "Procedure", "iastm-proc-1"),
     [E("error", "Procedure.performedPeriod", "per-1")]),
    ("proc-v2-minutes-in-hours", G1V2, PROC, RP, "#4: IASTM minutes sent in UCUM h",
     setter(("extension", 5, "valueDuration", "code"), "h"),
     E("error", "Procedure.extension[5].valueDuration.code", "pattern:Extension.value[x]"), []),
    # #5 screening and consent (iastm-screening-observation)
    ("screen-item-not-in-vs", G1V2, SCREEN, SO, "#5: an item coded SNOMED Ecchymosis",
     setter(("component", 0, "code"), cc(SCT, "302227002")),
     E("error", "Observation.component[0].code", "binding:Observation.component.code"), []),
    ("screen-no-component", G1V2, SCREEN, SO, "#5: screening without items",
     remover("component"), E("error", "Observation", "card:Observation.component"),
     [E("error", "Observation", "us-core-2")]),
    ("screen-code-not-panel", G1V2, SCREEN, SO, "#5: code is an item, not the screening panel",
     setter(("code", "coding", 0, "code"), "hematoma"),
     E("error", "Observation.code", "pattern:Observation.code"), []),
    ("screen-value-quantity", G1V2, SCREEN, SO, "#5: an item answered with a Quantity",
     setter(("component", 0), {"code": cc(f"{C}/CodeSystem/iastm-screening", "open-wound"),
                               "valueQuantity": {"value": 1}}),
     E("error", "Observation.component[0].valueQuantity", "type:Observation.component.value[x]"),
     []),
    ("screen-no-part-of", G1V2, SCREEN, SO, "#5: screening not part of the IASTM Procedure",
     remover("partOf"), E("error", "Observation", "iastm-obs-4"),
     [E("error", "Observation", "card:Observation.partOf")]),
    ("screen-no-effective", G1V2, SCREEN, SO, "#5: screening without its time",
     remover("effectiveDateTime"), E("error", "Observation", "card:Observation.effective[x]"), []),
    # #6 findings: the treated site keeps its side
    ("effect-site-no-laterality", G3, EFFECT, EO, "#6: finding site without laterality",
     remover("bodySite", "extension"),
     E("error", "Observation.bodySite", "slice:Observation.bodySite.extension:laterality"), []),
    # #7 condition <-> treatment site
    ("cond-v2-site-no-laterality", G1V2, COND1, CP, "#7: linked site without laterality",
     setter(("bodySite", 0, "extension"), [LOC_EXT]),
     E("error", "Condition.bodySite[0]", "slice:Condition.bodySite.extension:laterality"),
     [E("error", "Condition", "iastm-cond-2r"), E("error", "Condition", "iastm-cond-4")]),
    ("cond-v2-site-qualifier-upper", G1V2, COND1, CP, "#7: linked site with qualifier Upper",
     setter(("bodySite", 0, "extension", 1), LOC_EXT), E("error", "Condition", "iastm-cond-4"),
     []),
    ("cond-v2-site-left-for-right-code", G1V2, COND1, CP,
     "#1/#7: M77.11 (right) linked to a site sent as Left",
     setter(("bodySite", 0, "extension", 0, "valueCodeableConcept"), cc(SCT, "7771000")),
     E("error", "Condition", "iastm-cond-2r"), []),
    # #8 recorded_at of a cancelled session without Conditions
    ("proc-recorded-at-string", G8NC, PROC, RP, "#8: source-recorded-at as a string",
     setter(("extension", 5), {"url": SD + "source-recorded-at", "valueString": "yesterday"}),
     E("error", "Procedure.extension[5]", "type:Extension.value[x]"), []),
    # #9 amended: the status code must still be R4's
    ("pain-status-amend", G1, PAIN, OP, "#9: Observation.status 'amend' (R4: amended)",
     setter(("status",), "amend"),
     E("error", "Observation.status", "binding:Observation.status"), []),
    # #11 CPT from the billing lines
    ("proc-cpt-units-zero", G1V2, PROC, RP, "#11: CPT units 0",
     setter(("code", "coding", 2, "extension", 0, "valuePositiveInt"), 0),
     E("error", "Procedure.code.coding[2].extension[0].valuePositiveInt", "structure:format"),
     []),
    # #12 the default profile still wants the period (the datetime variant is a receiver option)
    ("proc-v2-performed-datetime", G1V2, PROC, RP, "#12: performedDateTime under the default",
     both(remover("performedPeriod"), setter(("performedDateTime",), "2025-03-04T09:00:00-06:00")),
     E("error", "Procedure", "iastm-proc-9"), []),
    # #13 the visit kind is on Encounter.type
    ("enc-v2-no-type", G1V2, "encounter", "iastm-encounter", "#13: 2.0 visit without type",
     remover("type"), E("error", "Encounter", "card:Encounter.type"), []),
    # IASTM parameters (what to build)
    ("proc-stroke-unknown", G1V2, PROC, RP, "stroke 'rubbing' (not a stroke code)",
     setter(("extension", 7, "valueCodeableConcept", "coding", 0, "code"), "rubbing"),
     E("error", "Procedure.extension[7].valueCodeableConcept", "binding:Extension.value[x]"),
     [E("error", "Procedure.extension[7].valueCodeableConcept.coding[0]",
        f"codesystem:{C}/CodeSystem/iastm-parameter")]),
    ("proc-tolerance-string", G1V2, PROC, RP, "tolerance as a string",
     setter(("extension", 9), {"url": SD + "iastm-tolerance", "valueString": "fine"}),
     E("error", "Procedure.extension[9]", "type:Extension.value[x]"),
     [E("error", "Procedure.extension[9].valueString", "binding:Extension.value[x]")]),
    # #14 plausibility: a PSFS item score outside 0-10
    ("prom-psfs-pain-post-12", G1, PAIN, OP, "#14: pain NRS 12",
     setter(("valueQuantity", "value"), 12), E("error", "Observation", "iastm-obs-1"), []),
    # #8 the contained Conditions of a cancelled session sent without Conditions
    ("enc-contained-condition-unreferenced", G8NC, "encounter", "iastm-encounter",
     "#8: a contained Condition no diagnosis refers to",
     remover("diagnosis"), E("error", "Encounter", "dom-3"), []),
    # #10 displays (docs/clinical.md#displays): judged as warnings
    ("cond-icd-display-not-title", G1, COND1, CP,
     "#10: M77.11 displayed 'Lateral epicondylitis' (tabular: '..., right elbow')",
     setter(("code", "coding", 0, "display"), "Lateral epicondylitis"),
     E("warning", "Condition.code.coding[0].display", f"display:{ICD}"), []),
    ("proc-patellar-tendon-display", G4, PROC, RP,
     "#10: SNOMED 18033002 sent with the unsourced display 'Patellar tendon'",
     setter(("bodySite", 0, "coding", 1, "display"), "Patellar tendon"),
     E("warning", "Procedure.bodySite[0].coding[1].display", f"display:{SCT}"), []),
    ("cond-snomed-display-other", G1, COND1, CP,
     "#10: SNOMED 202855006 with a display the code table does not source",
     setter(("code", "coding", 1, "display"), "Tennis elbow"),
     E("warning", "Condition.code.coding[1].display", f"display:{SCT}"), []),
]
# fmt: on


def main() -> int:
    for old in HERE.glob("[0-9][0-9][0-9]-*.json"):
        old.unlink()
    for n, (name, example, role, profile, description, mutate, expected, also) in enumerate(
        MUTATIONS, start=1
    ):
        res = resource(example, role)
        mutate(res)
        doc = {
            "description": description,
            "profile": SD + profile,
            "source": {"example": example, "role": role},
            "resource": res,
            "expected": expected,
        }
        if also:
            doc["also_expected"] = also
        path = HERE / f"{n:03d}-{name}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(MUTATIONS)} mutations to {HERE}")  # noqa: T201 - a generator script
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
