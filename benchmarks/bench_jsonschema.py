"""Benchmark: the structural stage as a JSON Schema run by ``jsonschema-rs`` (Rust) vs the
compiled Python walk of the R4 table (``r4check``), on the same resources (docs/r4-definitions.md).

Run: ``.venv/bin/python benchmarks/bench_jsonschema.py [--rounds 5] [--repeat 5]``
(needs ``jsonschema-rs``, which the test extra already installs through schemathesis).

The schema is generated here from the same R4 table the walk uses: per type (and backbone
element) an object with exactly its JSON properties (``additionalProperties: false``), arrays where
the element repeats, ``required`` for min >= 1, the spec's regexes anchored (``^(?:…)$``) for the
primitives and ``minItems``/``minProperties`` for ele-1. It judges only shape: a JSON Schema
cannot say one type per choice (``value[x]``), a calendar day (2025-02-30), the int32 range of
FHIR's integers, nor run the core required bindings and invariants — so it could only ever be a
pre-check in front of the walk, never replace it. Reported: resources/s of both on the mapper's
Bundles of the good examples (CPU time of this process, best of interleaved rounds: the machine
is shared), and how many of a set of mutants the two judge differently.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jsonschema_rs  # noqa: E402

from fhir_iastm.mapping import to_fhir  # noqa: E402
from fhir_iastm.profiles import load_profiles  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.validation import r4defs as defs  # noqa: E402
from fhir_iastm.validation.context import ValidationContext  # noqa: E402
from fhir_iastm.validation.r4check import check_r4  # noqa: E402

_KIND = {defs.BOOLEAN: "boolean", defs.INTEGER: "integer", defs.DECIMAL: "number"}


def _primitive(code: str) -> dict[str, Any]:
    kind = defs.json_kind(code)
    out: dict[str, Any] = {"type": _KIND.get(kind, "string")}
    pattern = defs.table()["primitives"].get(code)
    if pattern and kind == defs.STRING:
        out["pattern"] = f"^(?:{pattern})$"
    return out


def schema_for(resource_types: set[str]) -> dict[str, Any]:
    """A draft 2020-12 schema: ``$defs`` per reachable shape, the root a oneOf by resourceType."""
    found: dict[str, Any] = {}
    todo = list(resource_types)
    while todo:
        path = todo.pop()
        if path in found:
            continue
        shape = defs.shape(path)
        assert shape is not None
        props: dict[str, Any] = {}
        required: list[str] = []
        if shape.path == shape.type_name and path in defs.resource_types():
            props["resourceType"] = {"const": path}
            required.append("resourceType")
        for element in shape.elements:
            for key, code in element.keys.items():
                if code in defs.primitives():
                    one = _primitive(code)
                    props["_" + key] = _many(element, {"$ref": "#/$defs/Element"})
                    todo.append("Element")
                elif code == "Resource":
                    one = {"type": "object", "required": ["resourceType"]}
                else:
                    target = element.children or code
                    one = {"$ref": f"#/$defs/{target}"}
                    todo.append(target)
                props[key] = _many(element, one)
            if element.min > 0 and len(element.keys) == 1:
                required.append(next(iter(element.keys)))
        found[path] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
            "minProperties": 1,
            "required": required,
        }
    return {
        "$defs": found,
        "oneOf": [{"$ref": f"#/$defs/{t}"} for t in sorted(resource_types)],
    }


def _many(element: defs.Element, one: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": one, "minItems": 1} if element.many else one


#: One defect each: (name, change in place).
MUTATIONS: tuple[tuple[str, Any], ...] = (
    ("unknown element", lambda r: r.__setitem__("bogus", 1)),
    ("empty object", lambda r: r.__setitem__("meta", {})),
    ("wrong JSON type", lambda r: r.__setitem__("id", 7)),
    ("array where single", lambda r: r.__setitem__("language", ["en"])),
    (
        "no such calendar day",
        lambda r: r.setdefault("meta", {}).__setitem__("lastUpdated", "2025-02-30T00:00:00Z"),
    ),
    ("uri with a space", lambda r: r.__setitem__("implicitRules", "a b")),
)


def _mutants(resources: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for res in resources:
        for name, change in MUTATIONS:
            mutant = copy.deepcopy(res)
            change(mutant)
            out.append((name, mutant))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    index = load_profiles(ROOT / "profiles")
    examples = sorted((ROOT / "tests" / "data" / "examples").glob("good-*.json"))
    records = [load_record(json.loads(p.read_text())) for p in examples] * args.repeat
    resources = [e["resource"] for r in records for e in to_fhir(r)["entry"]]
    start = time.process_time()
    validator = jsonschema_rs.Draft202012Validator(
        schema_for({r["resourceType"] for r in resources})
    )
    build_s = time.process_time() - start

    def walk_errors(res: dict[str, Any]) -> bool:
        ctx = ValidationContext(index, root=res)
        check_r4(res, ctx)
        return any(i.is_error for i in ctx.issues)

    best = {"walk": float("inf"), "jsonschema_rs": float("inf")}
    for _ in range(args.rounds):  # interleaved, best of each (the machine is shared)
        for name, work in (
            ("walk", walk_errors),
            ("jsonschema_rs", lambda r: not validator.is_valid(r)),
        ):
            start = time.process_time()
            for res in resources:
                work(res)
            best[name] = min(best[name], time.process_time() - start)
    mutants = _mutants(resources[: len(resources) // args.repeat])
    differ: dict[str, int] = {}
    for name, mutant in mutants:
        if walk_errors(mutant) != (not validator.is_valid(mutant)):
            differ[name] = differ.get(name, 0) + 1
    report = {
        "resources": len(resources),
        "schema_build_s": round(build_s, 3),
        "walk_resources_per_s": round(len(resources) / best["walk"]),
        "jsonschema_rs_resources_per_s": round(len(resources) / best["jsonschema_rs"]),
        "ratio_jsonschema_rs_vs_walk": round(best["walk"] / best["jsonschema_rs"], 2),
        "mutants": len(mutants),
        "mutants_judged_differently": differ,
        "clean_resources_rejected_by_schema": sum(
            1 for r in resources if not validator.is_valid(r)
        ),
    }
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark script prints its report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
