"""Pain NRS, range-of-motion and PROM Observations (docs/mapping.md) and back.

Pain and ROM timing travel only in the
``iastm-measurement-timing`` extension; the reverse never infers it from order or timestamps
(docs/decisions.md#round-trip).
"""

from __future__ import annotations

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.codes import TIMINGS, reverse_table, unmapped
from fhir_iastm.mapping.condition import laterality_extension, laterality_of
from fhir_iastm.mapping.context import (
    ENCOUNTER,
    PATIENT,
    PRACTITIONER,
    PROCEDURE,
    MappingContext,
    pain_role,
    prom_role,
    rom_role,
)
from fhir_iastm.mapping.datatypes import (
    Json,
    codeable,
    ext,
    ext_value,
    extensions,
    prune,
    quantity,
)
from fhir_iastm.records.model import OutcomeMeasure, RangeOfMotion

PAIN_TEXT = "Pain severity 0-10 numeric rating (NRS-11)"


def observation_base(
    ctx: MappingContext,
    profile: str,
    role: str,
    own_ext: list[Json],
    category: list[Json],
    code: Json,
    effective: str | None,
    value: Json | None,
) -> Json:
    """The elements every IASTM Observation shares, in R4 element order up to ``value[x]``."""
    identifier = ctx.session_identifier(role)
    status = ctx.statuses[2]
    if status == "final" and identifier["value"] in ctx.amended:
        status = "amended"
    return {
        "resourceType": "Observation",
        "meta": ctx.meta(profile),
        "extension": ctx.source_extensions() + own_ext,
        "identifier": [identifier],
        "partOf": [ctx.reference(PROCEDURE)],
        "status": status,
        "category": category,
        "code": code,
        "subject": ctx.reference(PATIENT),
        "encounter": ctx.reference(ENCOUNTER),
        "effectiveDateTime": effective,
        "performer": [ctx.reference(PRACTITIONER)],
        "valueQuantity": value,
    }


def _timing(ctx: MappingContext, timing: str) -> Json:
    ctx.codes["measurement_timing"].coding(timing)  # unknown timing -> MappingError
    return ext(ctx.ext_url("iastm-measurement-timing"), "Code", timing)


def _when(ctx: MappingContext, timing: str) -> str | None:
    """pre -> session.start, post -> session.end (docs/mapping.md#pain)."""
    return ctx.record.session.start if timing == "pre" else ctx.record.session.end


def to_pain(ctx: MappingContext, timing: str, score: int) -> Json:
    """Pain NRS (docs/mapping.md#pain): survey category, LOINC 72514-3, valueQuantity {score}."""
    codes = ctx.codes
    return prune(
        observation_base(
            ctx,
            "iastm-pain-observation",
            pain_role(timing),
            [_timing(ctx, timing)],
            [codeable([codes.fixed(f"category_{c}")]) for c in ctx.settings.pain_category],
            codeable([codes.fixed("pain_loinc")], PAIN_TEXT),
            _when(ctx, timing),
            quantity(score, codes["ucum"].coding("{score}")),
        )
    )


def to_rom(ctx: MappingContext, rom: RangeOfMotion) -> Json:
    """Range of motion (docs/mapping.md#rom): exam category, local rom-* code, degrees, joint +
    laterality."""
    codes = ctx.codes
    rom_code = codes["rom_code"].coding(f"{rom.joint}-{rom.motion}")
    if rom.mode not in ("active", "passive"):
        raise unmapped("rom_mode", rom.mode)
    lat = laterality_extension(ctx, rom.laterality)
    joint = codes["rom_joint"].coding(rom.joint)
    resource = observation_base(
        ctx,
        "iastm-rom-observation",
        rom_role(rom.key),
        [_timing(ctx, rom.timing), ext(ctx.ext_url("iastm-rom-mode"), "Code", rom.mode)],
        [codeable([codes.fixed("category_exam")])],
        codeable([rom_code], f"{rom.mode.capitalize()} {rom_code['display'].lower()}"),
        _when(ctx, rom.timing),
        quantity(rom.degrees, codes["ucum"].coding("deg")),
    )
    resource["bodySite"] = codeable(
        [joint], f"{rom.laterality} {joint['display'].lower()}", extensions(lat)
    )
    resource["method"] = codeable([codes["rom_method"].coding(rom.method)])
    return prune(resource)


def to_prom(ctx: MappingContext, measure: OutcomeMeasure) -> Json:
    """Patient-reported outcome (docs/mapping.md#prom): survey + functional-status, local code,
    {score}."""
    codes = ctx.codes
    score_unit = codes["ucum"].coding("{score}")
    resource = observation_base(
        ctx,
        "iastm-prom-observation",
        prom_role(measure.instrument),
        [],
        [
            codeable([codes.fixed("category_survey")]),
            codeable([codes.fixed("category_functional_status")]),
        ],
        codeable([codes["prom_code"].coding(measure.instrument)], measure.instrument),
        ctx.record.session.start,
        quantity(measure.score, score_unit),
    )
    resource["component"] = [
        {
            "code": codeable([codes.fixed("psfs_item")], item.activity),
            "valueQuantity": quantity(item.score, score_unit),
        }
        for item in measure.items
    ]
    return prune(resource)


def to_observations(ctx: MappingContext) -> list[Json]:
    """Every Observation of the session; none for a cancelled one (docs/decisions.md#statuses)."""
    r = ctx.record
    if r.status == "cancelled":
        return []
    out = []
    if r.pain is not None:
        out += [
            to_pain(ctx, t, s)
            for t, s in (("pre", r.pain.pre), ("post", r.pain.post))
            if s is not None
        ]
    out += [to_rom(ctx, rom) for rom in r.rom]
    out += [to_prom(ctx, m) for m in r.outcome_measures]
    return out


# ---------------------------------------------------------------- reverse


def _number(value: object) -> object:
    """JSON numbers as the record holds them: integral floats become ints."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def read_timing(resource: Json, base: str, where: str) -> str:
    """pre/post from the timing extension only (docs/decisions.md#round-trip)."""
    url = f"{base}/StructureDefinition/iastm-measurement-timing"
    timing = ext_value(resource, url, "Code")
    if timing in TIMINGS:
        return str(timing)
    code, detail = ("E_REQUIRED", "missing") if timing is None else ("E_CODE_UNKNOWN", "unknown")
    path = f"{where}.extension('{url}')"
    raise MappingError(
        f"{path}: {detail} measurement timing",
        [
            Issue(
                "error",
                "required" if timing is None else "code-invalid",
                path,
                f"{detail} iastm-measurement-timing (pre/post is never guessed)",
                code,
            )
        ],
    )


def from_rom(resource: Json, base: str, where: str, rom_key: str) -> Json:
    """ROM Observation -> ``rom[]`` entry (laterality from the bodySite extension only)."""
    joint, motion = rom_key.split("-", 1)
    sites = resource.get("bodySite")
    laterality = laterality_of(sites or {}, base, f"{where}.bodySite")
    method_code: Json = next(iter((resource.get("method") or {}).get("coding", ())), {})
    key = (str(method_code.get("system")), str(method_code.get("code")))
    method = reverse_table(base, "rom_method").get(key)
    if method is None:
        raise unmapped("rom_method", method_code.get("code"), f"{where}.method")
    return {
        "joint": joint,
        "motion": motion,
        "laterality": laterality,
        "degrees": _number((resource.get("valueQuantity") or {}).get("value")),
        "mode": ext_value(resource, f"{base}/StructureDefinition/iastm-rom-mode", "Code"),
        "method": method,
        "timing": read_timing(resource, base, where),
    }


def from_prom(resource: Json, instrument: str) -> Json:
    """PROM Observation -> ``outcome_measures[]`` entry."""
    items = [
        {
            "activity": (c.get("code") or {}).get("text"),
            "score": _number((c.get("valueQuantity") or {}).get("value")),
        }
        for c in resource.get("component", ())
    ]
    score = _number((resource.get("valueQuantity") or {}).get("value"))
    return prune({"instrument": instrument, "score": score, "items": items})


def pain_value(resource: Json) -> object:
    """The NRS score of a pain Observation."""
    return _number((resource.get("valueQuantity") or {}).get("value"))


__all__ = [
    "from_prom",
    "from_rom",
    "pain_value",
    "read_timing",
    "to_observations",
    "to_pain",
    "to_prom",
    "to_rom",
]
