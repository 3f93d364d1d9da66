"""facade.extract: the index rows are those of the plain reading of the parameter table — each
branch's values by a generic path walk, each value's rows by its datatype — on every resource
of the examples and of generated records (the extractor is tuned for speed; this is its oracle)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from fhir_iastm.facade.dates import date_bounds, period_bounds
from fhir_iastm.facade.extract import MAX_TEXT, _index_rows, branches
from fhir_iastm.facade.params import CODE_SYSTEMS, PARAMS
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records import load_record
from tests.strategies import valid_records

EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "examples").glob("good-*.json"))


def _children(node: Any, name: str) -> Iterator[Any]:
    if not isinstance(node, dict):
        return
    if name in node:
        found = [node[name]]
    else:
        found = [v for k, v in node.items()
                 if k.startswith(name) and len(k) > len(name) and k[len(name)].isupper()]
    for value in found:
        yield from value if isinstance(value, list) else [value]


def _tokens(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, bool):
        yield "", "true" if node else "false"
    elif isinstance(node, str):
        yield CODE_SYSTEMS.get(path, ""), node
    elif isinstance(node, dict) and "coding" in node:
        for coding in node["coding"]:
            yield from _tokens(coding, path)
    elif isinstance(node, dict) and ("value" in node or "code" in node):
        code = node.get("value", node.get("code"))
        if isinstance(code, str):
            yield node.get("system") or "", code


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key in ("family", "text"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("given", "prefix", "suffix"):
            yield from (v for v in node.get(key) or () if isinstance(v, str))


def _normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()[:MAX_TEXT]


def oracle(resource: dict[str, Any]) -> tuple[tuple[tuple[str, str, str], ...], ...]:
    tokens, strings, dates, refs = [], [], [], []
    for param in PARAMS:
        if param.resource != resource["resourceType"]:
            continue
        for steps, path, only in branches(param):
            nodes: list[Any] = [resource]
            for step in steps:
                nodes = [child for node in nodes for child in _children(node, step)]
            for node in nodes:
                name = param.name
                if param.type == "token":
                    tokens += [(name, s[:MAX_TEXT], c[:MAX_TEXT]) for s, c in _tokens(node, path)]
                elif param.type == "string":
                    strings += [(name, _normalize(v), v[:MAX_TEXT]) for v in _strings(node)]
                elif param.type == "date":
                    if isinstance(node, str):
                        dates.append((name, *date_bounds(node)))
                    elif isinstance(node, dict) and ("start" in node or "end" in node):
                        dates.append((name, *period_bounds(node.get("start"), node.get("end"))))
                else:
                    ref = node.get("reference") if isinstance(node, dict) else None
                    if isinstance(ref, str) and ref.count("/") == 1:
                        rtype, rid = ref.split("/")
                        if only is None or rtype == only:
                            refs.append((name, rtype, rid))
    dates.sort(key=lambda row: (row[0], row[1]))
    return (tuple(dict.fromkeys(tokens)), tuple(dict.fromkeys(strings)), tuple(dates),
            tuple(dict.fromkeys(refs)))


def _check(record: Any) -> int:
    resources = stored_resources(to_fhir(record, MappingSettings()), copy_=False)
    for resource in resources:
        assert _index_rows(resource, resource["resourceType"]) == oracle(resource)
    return len(resources)


def test_every_example_resource_is_indexed_as_the_oracle_indexes_it() -> None:
    assert sum(_check(load_record(json.loads(p.read_text()))) for p in EXAMPLES) > 50


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_generated_resources_are_indexed_as_the_oracle_indexes_them(data: dict[str, Any]) -> None:
    _check(load_record(data))
