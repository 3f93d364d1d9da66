"""The canonical base is configurable end to end (docs/canonical-base.md).

``rebase`` moves project URLs only; under a non-default base, what ``map`` emits passes
``validate``, the service's ``$validate``, and is defined by the conformance resources the facade
serves and ``load-profiles`` uploads (the HAPI half: tests/integration/test_canonical_base_hapi.py).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fhir_iastm.api import create_app
from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE, rebase
from fhir_iastm.cli import main
from fhir_iastm.config import Settings
from fhir_iastm.profiles import load_profiles
from fhir_iastm.service import conformance_resources

ROOT = Path(__file__).resolve().parent.parent
GOOD = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
D = DEFAULT_CANONICAL_BASE
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"


def unique_base() -> str:
    return f"https://pt-{uuid.uuid4().hex[:12]}.example.com/fhir"


def test_rebase_moves_project_urls_and_nothing_else() -> None:
    doc = {
        "url": f"{D}/StructureDefinition/iastm-procedure",
        "base": D,
        "expression": f"identifier.where(system='{D}/sid/iastm-session').count() = 1",
        "external": [MCODE, "http://snomed.info/sct", "http://loinc.org"],
        "near_miss": f"{D}x/CodeSystem/other",
        "number": 3,
    }
    kept = copy.deepcopy(doc)
    moved = rebase(doc, "https://pt.example.com/fhir/")
    assert moved == {
        "url": "https://pt.example.com/fhir/StructureDefinition/iastm-procedure",
        "base": "https://pt.example.com/fhir",
        "expression": "identifier.where(system='https://pt.example.com/fhir/sid/iastm-session')"
        ".count() = 1",
        "external": [MCODE, "http://snomed.info/sct", "http://loinc.org"],
        "near_miss": f"{D}x/CodeSystem/other",
        "number": 3,
    }
    assert doc == kept  # pure
    assert rebase(doc, D) is doc
    assert rebase(doc, None) is doc
    assert rebase(moved, D, source="https://pt.example.com/fhir") == doc


def mapped(base: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(example name, Bundle) for every good example, mapped by the CLI under ``base``."""
    for path in GOOD:
        result = CliRunner().invoke(main, ["map", "--canonical-base", base, str(path)])
        assert result.exit_code == 0, result.output
        yield path.stem, json.loads(result.stdout)


def project_urls(value: Any, base: str) -> set[str]:
    """Every string under ``base`` in a JSON value."""
    if isinstance(value, str):
        return {value} if value.startswith(base + "/") else set()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return set().union(*(project_urls(v, base) for v in items))


def assert_no_errors(outcome: dict[str, Any], where: str) -> None:
    errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == [], f"{where}: {json.dumps(errors)[:2000]}"


def test_map_validate_and_dollar_validate_agree_under_another_base(tmp_path: Path) -> None:
    check_offline_chain(unique_base(), tmp_path)


def check_offline_chain(base: str, tmp_path: Path) -> None:
    """map -> validate (CLI) -> $validate (service), zero errors under ``base``."""
    app = create_app(Settings(canonical_base=base, database_url=f"sqlite:///{tmp_path / 's.db'}"))
    http = app.test_client()
    bundles = dict(mapped(base))
    for name, bundle in bundles.items():
        assert D not in json.dumps(bundle), name
        (tmp_path / "b.json").write_text(json.dumps(bundle))
        checked = CliRunner().invoke(
            main, ["validate", "--canonical-base", base, str(tmp_path / "b.json")]
        )
        assert checked.exit_code == 0, f"{name}: {checked.output[:2000]}"
        assert_no_errors(json.loads(checked.stdout), name)
        # the default profiles do not know these URLs: the same check fails without the option
        unrebased = CliRunner().invoke(main, ["validate", str(tmp_path / "b.json")])
        assert unrebased.exit_code == 1
        assert "unknown profile" in unrebased.output
        for entry in bundle["entry"]:
            resource = entry["resource"]
            answer = http.post(f"/fhir/{resource['resourceType']}/$validate", json=resource)
            assert answer.status_code == 200
            assert_no_errors(answer.get_json(), f"{name} {resource['resourceType']}")
    app.extensions["fhir_iastm"].store.close()


def test_the_served_and_uploaded_profiles_define_what_the_mapper_emits(tmp_path: Path) -> None:
    base = unique_base()
    app = create_app(Settings(canonical_base=base, database_url=f"sqlite:///{tmp_path / 's.db'}"))
    http = app.test_client()
    served = {
        rtype: [e["resource"] for e in http.get(f"/fhir/{rtype}").get_json()["entry"]]
        for rtype in ("StructureDefinition", "CodeSystem", "ValueSet", "ConceptMap")
    }
    metadata = http.get("/fhir/metadata").get_json()
    app.extensions["fhir_iastm"].store.close()
    uploaded = conformance_resources(ROOT / "profiles", base)
    assert sorted(json.dumps(r, sort_keys=True) for rs in served.values() for r in rs) == sorted(
        json.dumps(r, sort_keys=True) for r in uploaded
    )
    text = json.dumps(uploaded)
    assert D not in text
    assert MCODE in text
    defined = {r["url"] for r in uploaded}
    claimed = {p for r in metadata["rest"][0]["resource"] for p in r.get("supportedProfile", [])}
    assert claimed
    assert claimed <= defined

    index = load_profiles(ROOT / "profiles", base)
    assert index.canonical_base == base
    for name, bundle in mapped(base):
        emitted = project_urls(bundle, base)
        canonical = {u for u in emitted if "/sid/" not in u}  # identifier systems name no resource
        assert canonical <= defined, f"{name}: {sorted(canonical - defined)}"
        profiles = {p for e in bundle["entry"] for p in e["resource"]["meta"]["profile"]}
        assert profiles <= set(index.profiles), name
