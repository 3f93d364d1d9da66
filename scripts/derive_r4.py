"""Derive fhir_iastm/data/r4.json.gz from the official FHIR R4 4.0.1 definitions.

Source (pinned): the Maven artifact ``ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4`` (the
version in ``ARTIFACT``), which ships the specification's own definition bundles:
``profiles-types.xml`` and ``profiles-resources.xml`` (the StructureDefinitions of every data type
and resource, with snapshots) and ``valuesets.xml`` / ``v3-codesystems.xml`` (the core ValueSets
and CodeSystems). The table keeps what structural validation needs (docs/r4-definitions.md):

* ``types``: for every R4 data type and resource (``derivation = specialization``) its kind,
  whether it is abstract, its base type, and its snapshot elements as
  ``path -> [min, max, types, contentReference, required ValueSet, constraint keys]``, where
  ``types`` is ``[[code, [target types of a Reference/canonical]], ...]``;
* ``primitives``: the regex of every primitive type (the ``regex`` extension of its ``value``);
* ``constraints``: ``key -> [severity, human, FHIRPath expression]`` of every invariant (a key
  R4 uses for several rules gets ``key#1``, ``key#2`` for the others);
* ``valuesets``: every ValueSet behind a *required* binding, expanded to ``[system, code]``
  pairs when its content is in the package (``null`` when it is not: an external code system
  such as BCP-13 MIME types, or a filter this script does not evaluate);
* ``codesystems``: every CodeSystem of ``valuesets.xml``, ``v3-codesystems.xml`` and
  ``v2-tables.xml`` with ``content = complete``, as ``url -> [caseSensitive, [code, ...]]``
  (its codes, nested concepts included, sorted; ``caseSensitive`` true, false or null when the
  CodeSystem does not say) — only what the code check needs (docs/validation.md#core-codes).

    .venv/bin/python scripts/derive_r4.py [path/to/hapi-fhir-validation-resources-r4-X.jar]

Without an argument the jar is read from the local Maven repository (``~/.m2``).
tests/validation/test_r4_table.py proves the committed table equals this derivation.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

GROUP, NAME, VERSION = "ca.uhn.hapi.fhir", "hapi-fhir-validation-resources-r4", "8.8.0"
ARTIFACT = f"{GROUP}:{NAME}:{VERSION}"
OUT = Path(__file__).resolve().parent.parent / "fhir_iastm" / "data" / "r4.json.gz"
BASE = "org/hl7/fhir/r4/model/"
ENTRIES = (
    "profile/profiles-types.xml",
    "profile/profiles-resources.xml",
    "valueset/valuesets.xml",
    "valueset/v3-codesystems.xml",
    "valueset/v2-tables.xml",
)
#: the entries whose ValueSets expand required bindings (v2-tables.xml only adds code systems)
VALUESET_ENTRIES = ENTRIES[2:4]
NS = "{http://hl7.org/fhir}"
FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
SD = "http://hl7.org/fhir/StructureDefinition/"


def default_jar() -> Path:
    """Where Maven keeps the pinned artifact."""
    return (
        Path.home()
        / ".m2"
        / "repository"
        / Path(*GROUP.split("."))
        / NAME
        / VERSION
        / f"{NAME}-{VERSION}.jar"
    )


def _v(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(NS + tag) if node is not None else None
    return child.get("value") if child is not None else None


def _ext(node: ET.Element, url: str) -> str | None:
    for ext in node.findall(NS + "extension"):
        if ext.get("url") == url:
            for value in ext:
                return value.get("value")
    return None


def _resources(root: ET.Element, tag: str) -> list[ET.Element]:
    found = []
    for entry in root.findall(NS + "entry"):
        holder = entry.find(NS + "resource")
        res = holder.find(NS + tag) if holder is not None else None
        if res is not None:
            found.append(res)
    return found


def _type(node: ET.Element) -> list[Any]:
    code = _ext(node, FHIR_TYPE) or str(_v(node, "code"))
    targets = [
        str(t.get("value")).removeprefix(SD)
        for tag in ("targetProfile",)
        for t in node.findall(NS + tag)
    ]
    return [code, targets]


def _constraint_ref(c: ET.Element, constraints: dict[str, Any]) -> str:
    """The table key of a constraint: its key, or ``key#n`` for the n-th other text of a key
    used with several meanings (R4's ``inv-1`` is three different rules)."""
    body = [_v(c, "severity"), _v(c, "human"), _v(c, "expression")]
    key, n = str(_v(c, "key")), 0
    ref = key
    while constraints.setdefault(ref, body) != body:
        n += 1
        ref = f"{key}#{n}"
    return ref


def _element(el: ET.Element, required: dict[str, str], constraints: dict[str, Any]) -> list[Any]:
    binding = el.find(NS + "binding")
    valueset = None
    if binding is not None and _v(binding, "strength") == "required":
        valueset = str(_v(binding, "valueSet")).split("|", 1)[0]
        required[valueset] = str(el.get("id"))
    ref = _v(el, "contentReference")
    return [
        int(str(_v(el, "min"))),
        _v(el, "max"),
        [_type(t) for t in el.findall(NS + "type")],
        ref[1:] if ref else None,
        valueset,
        [_constraint_ref(c, constraints) for c in el.findall(NS + "constraint")],
    ]


def _structures(roots: list[ET.Element], out: dict[str, Any]) -> dict[str, str]:
    required: dict[str, str] = {}
    for root in roots:
        for sd in _resources(root, "StructureDefinition"):
            if _v(sd, "derivation") == "constraint":
                continue
            name = str(_v(sd, "type"))
            elements: dict[str, Any] = {}
            regex = None
            for el in sd.findall(f"{NS}snapshot/{NS}element"):
                elements[str(_v(el, "path"))] = _element(el, required, out["constraints"])
                if str(_v(el, "path")) == f"{name}.value":
                    for t in el.findall(NS + "type"):
                        regex = _ext(t, REGEX) or regex
            base = _v(sd, "baseDefinition")
            out["types"][name] = {
                "kind": _v(sd, "kind"),
                "abstract": _v(sd, "abstract") == "true",
                "base": base.removeprefix(SD) if base else None,
                "elements": elements,
            }
            if _v(sd, "kind") == "primitive-type":
                out["primitives"][name] = regex
    return required


def _concepts(node: ET.Element, system: str, into: list[list[str]]) -> None:
    for concept in node.findall(NS + "concept"):
        into.append([system, str(_v(concept, "code"))])
        _concepts(concept, system, into)


def _expand(
    url: str, valuesets: dict[str, ET.Element], systems: dict[str, ET.Element], seen: set[str]
) -> list[list[str]] | None:
    vs = valuesets.get(url)
    if vs is None or url in seen:
        return None
    codes: list[list[str]] = []
    compose = vs.find(NS + "compose")
    if compose is None or compose.find(NS + "exclude") is not None:
        return None
    for inc in compose.findall(NS + "include"):
        if inc.find(NS + "filter") is not None:
            return None
        for sub in inc.findall(NS + "valueSet"):
            nested = _expand(str(sub.get("value")), valuesets, systems, seen | {url})
            if nested is None:
                return None
            codes += nested
        system = _v(inc, "system")
        if system is None:
            continue
        listed = inc.findall(NS + "concept")
        if listed:
            codes += [[system, str(_v(c, "code"))] for c in listed]
            continue
        cs = systems.get(system)
        if cs is None or _v(cs, "content") != "complete":
            return None
        _concepts(cs, system, codes)
    return sorted({tuple(c): c for c in codes}.values())


def derive(jar: Path) -> dict[str, Any]:
    """The table, derived from the jar (pure apart from reading it)."""
    with zipfile.ZipFile(jar) as zf:
        raw = {name: zf.read(BASE + name) for name in ENTRIES}
    out: dict[str, Any] = {
        "source": {
            "artifact": ARTIFACT,
            "fhirVersion": "4.0.1",
            "sha256": {name: hashlib.sha256(raw[name]).hexdigest() for name in ENTRIES},
        },
        "types": {},
        "primitives": {},
        "constraints": {},
        "valuesets": {},
    }
    roots = {name: ET.fromstring(raw[name]) for name in ENTRIES}
    required = _structures([roots[ENTRIES[0]], roots[ENTRIES[1]]], out)
    valuesets: dict[str, ET.Element] = {}
    systems: dict[str, ET.Element] = {}
    for name in VALUESET_ENTRIES:
        for vs in _resources(roots[name], "ValueSet"):
            valuesets[str(_v(vs, "url"))] = vs
        for cs in _resources(roots[name], "CodeSystem"):
            systems[str(_v(cs, "url"))] = cs
    for url in sorted(required):
        out["valuesets"][url] = _expand(url, valuesets, systems, set())
    out["codesystems"] = _complete_systems([roots[name] for name in ENTRIES[2:]])
    return out


def _complete_systems(roots: list[ET.Element]) -> dict[str, list[Any]]:
    """url -> [caseSensitive (None: not stated), sorted codes] of every complete CodeSystem."""
    out: dict[str, list[Any]] = {}
    for root in roots:
        for cs in _resources(root, "CodeSystem"):
            if _v(cs, "content") != "complete":
                continue
            codes: list[list[str]] = []
            _concepts(cs, "", codes)
            sensitive = _v(cs, "caseSensitive")
            flag = None if sensitive is None else sensitive == "true"
            out[str(_v(cs, "url"))] = [flag, sorted({code for _s, code in codes})]
    return out


def encode(table: dict[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no spaces, gzip with mtime=0 (same source, same file)."""
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode(), mtime=0)


def main() -> None:
    jar = Path(sys.argv[1]) if len(sys.argv) > 1 else default_jar()
    table = derive(jar)
    OUT.write_bytes(encode(table))
    expanded = sum(v is not None for v in table["valuesets"].values())
    print(
        f"{OUT}: {len(table['types'])} types, {len(table['constraints'])} constraints, "
        f"{expanded}/{len(table['valuesets'])} required ValueSets expanded, "
        f"{len(table['codesystems'])} complete CodeSystems"
    )


if __name__ == "__main__":
    main()
