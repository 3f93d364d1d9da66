"""The OperationOutcomes the service and the CLI produce name their project URLs — the error-code
CodeSystem (``issue.details.coding.system``) and the record-field extension — under the configured
canonical base, like every other project URL (docs/canonical-base.md); and an outcome rendered so
is defined by the conformance resources the service serves under that base.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from fhir_iastm.api import create_app
from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE
from fhir_iastm.cli import main
from fhir_iastm.config import Settings
from fhir_iastm.errors import (
    ERROR_CODE_SYSTEM,
    RECORD_FIELD_EXTENSION,
    Issue,
    NotFoundError,
    error_code_system,
    operation_outcome,
    record_field_extension,
)
from fhir_iastm.profiles import ProfileIndex, parse_profiles
from fhir_iastm.sync.pull import PullError
from fhir_iastm.validation import validate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests/data/examples"
GOOD_01 = EXAMPLES / "good-01-lateral-epicondylitis-graston.json"
BAD_02 = EXAMPLES / "bad-02-pain-11.json"  # pain.post = 11: E_RANGE
D = DEFAULT_CANONICAL_BASE
CONFORMANCE = ("StructureDefinition", "CodeSystem", "ValueSet", "ConceptMap")


@pytest.fixture
def base() -> str:
    return f"https://pt-{uuid.uuid4().hex[:12]}.example.com/fhir"


@pytest.fixture
def app(base: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(Settings(canonical_base=base, database_url=f"sqlite:///{tmp_path / 's.db'}"))
    yield app
    app.extensions["fhir_iastm"].store.close()


def systems(outcome: dict[str, Any]) -> list[str]:
    """Every ``issue.details.coding.system`` of an OperationOutcome."""
    return [c["system"] for i in outcome["issue"] for c in i.get("details", {}).get("coding", [])]


def extension_urls(outcome: dict[str, Any]) -> list[str]:
    return [e["url"] for i in outcome["issue"] for e in i.get("extension", [])]


def assert_rebased(outcome: dict[str, Any], base: str, *, codes: bool = True,
                   fields: bool = False) -> None:
    """The outcome names the rebased system (and extension) and nothing under the default base."""
    assert outcome["resourceType"] == "OperationOutcome"
    if codes:
        assert systems(outcome)
        assert set(systems(outcome)) == {f"{base}/CodeSystem/iastm-error-code"}
    if fields:
        assert extension_urls(outcome)
        assert set(extension_urls(outcome)) == {f"{base}/StructureDefinition/issue-record-field"}
    assert D not in json.dumps(outcome)


def mapped(base: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["map", "--canonical-base", base, str(GOOD_01)])
    assert result.exit_code == 0, result.output
    bundle: dict[str, Any] = json.loads(result.stdout)
    return bundle


def procedure_without_laterality(bundle: dict[str, Any]) -> dict[str, Any]:
    """The session Procedure with its body site's laterality removed: an error the validator
    traces back to the record field ``treatment_sites[0]``."""
    proc = copy.deepcopy(next(e["resource"] for e in bundle["entry"]
                              if e["resource"]["resourceType"] == "Procedure"))
    site = proc["bodySite"][0]
    site["extension"] = [e for e in site["extension"] if "laterality" not in e["url"]]
    return proc


def served_index(http: Any, base: str) -> ProfileIndex:
    """The profile index of exactly the conformance resources the service serves."""
    served = [e["resource"] for rtype in CONFORMANCE
              for e in http.get(f"/fhir/{rtype}").get_json()["entry"]]
    assert D not in json.dumps(served)
    return parse_profiles(served, base)


def test_the_urls_move_with_the_base_and_default_to_the_placeholder(base: str) -> None:
    issue = Issue("error", "value", "pain.post", "too high", "E_RANGE", record_field="pain.post")
    assert error_code_system() == ERROR_CODE_SYSTEM
    assert record_field_extension(None) == RECORD_FIELD_EXTENSION
    assert error_code_system(base) == f"{base}/CodeSystem/iastm-error-code"
    assert record_field_extension(base + "/") == f"{base}/StructureDefinition/issue-record-field"
    assert extension_urls(operation_outcome([issue])) == [RECORD_FIELD_EXTENSION]
    assert systems(NotFoundError("gone").operation_outcome()) == [ERROR_CODE_SYSTEM]
    assert_rebased(operation_outcome([issue], base=base), base, fields=True)
    assert_rebased(NotFoundError("gone").operation_outcome(base=base), base)
    pulled = PullError("S-1", "Procedure/1", (issue,)).to_json(base)
    assert_rebased(pulled["error"], base, fields=True)


def test_the_service_renders_its_outcomes_under_the_configured_base(
    app: Flask, base: str
) -> None:
    http = app.test_client()
    invalid = http.post("/api/sessions", json=json.loads(BAD_02.read_text()))
    assert invalid.status_code == 422
    assert_rebased(invalid.get_json(), base)
    assert invalid.get_json()["issue"][0]["details"]["coding"][0]["code"] == "E_RANGE"

    for path in ("/api/sessions/S-NOT-THERE", "/fhir/Procedure/not-there", "/nowhere"):
        missing = http.get(path)
        assert missing.status_code == 404, path
        assert_rebased(missing.get_json(), base)

    malformed = http.post("/api/sessions", data="{", content_type="application/json")
    assert malformed.status_code == 400
    assert_rebased(malformed.get_json(), base)

    searchset = http.get("/fhir/Procedure?no-such-parameter=1").get_json()
    (outcome,) = [e["resource"] for e in searchset["entry"] if e["search"]["mode"] == "outcome"]
    assert_rebased(outcome, base)
    listing = http.get("/fhir/CodeSystem?no-such-parameter=1").get_json()
    (outcome,) = [e["resource"] for e in listing["entry"] if e["search"]["mode"] == "outcome"]
    assert_rebased(outcome, base)

    proc = procedure_without_laterality(mapped(base))
    checked = http.post("/fhir/Procedure/$validate", json=proc)
    assert checked.status_code == 200
    outcome = checked.get_json()
    assert_rebased(outcome, base, codes=False, fields=True)
    assert "treatment_sites[0]" in [e["valueString"] for i in outcome["issue"]
                                    for e in i.get("extension", [])]


def test_the_rebased_outcomes_are_defined_by_the_served_profiles(app: Flask, base: str) -> None:
    http = app.test_client()
    index = served_index(http, base)
    traced = http.post("/fhir/Procedure/$validate",
                       json=procedure_without_laterality(mapped(base))).get_json()
    coded = http.post("/api/sessions", json=json.loads(BAD_02.read_text())).get_json()
    for outcome in (traced, coded):
        found = validate(outcome, index)
        assert [i for i in found if i.is_error] == []
        # the extension has a definition here (no "unknown extension" warning, its context holds)
        assert [i for i in found if (i.details or "").startswith(("extension:", "context:"))] == []
    # the code system is the served, complete CodeSystem: a code it does not define is an error
    coded["issue"][0]["details"]["coding"][0]["code"] = "E_NOT_A_CODE"
    (unknown,) = [i for i in validate(coded, index) if i.is_error]
    assert unknown.details == f"codesystem:{base}/CodeSystem/iastm-error-code"
    # the same outcome under the default base names a system and an extension not served here
    default = http.post("/fhir/Procedure/$validate",
                        json=procedure_without_laterality(mapped(base))).get_json()
    default["issue"] = [{**i, "extension": [{**e, "url": RECORD_FIELD_EXTENSION}
                                            for e in i.get("extension", [])]}
                        for i in default["issue"]]
    assert any((i.details or "").startswith("extension:") for i in validate(default, index))


def test_the_cli_renders_its_outcomes_under_the_configured_base(
    base: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    bad_map = runner.invoke(main, ["map", "--canonical-base", base, str(BAD_02)])
    assert bad_map.exit_code == 1
    (line,) = bad_map.stderr.splitlines()
    assert_rebased(json.loads(line), base)

    empty = runner.invoke(main, ["map", "--canonical-base", base], input="  ")
    assert empty.exit_code == 1
    assert_rebased(json.loads(empty.stderr), base)

    (tmp_path / "p.json").write_text(json.dumps(procedure_without_laterality(mapped(base))))
    invalid = runner.invoke(main, ["validate", "--canonical-base", base, str(tmp_path / "p.json")])
    assert invalid.exit_code == 1
    assert_rebased(json.loads(invalid.stdout), base, codes=False, fields=True)
    (tmp_path / "broken.json").write_text("{")
    broken = runner.invoke(main, ["validate", "--canonical-base", base,
                                  str(tmp_path / "broken.json")])
    assert broken.exit_code == 1
    # an unreadable file is one tagged line: {"input": {file, line, item}, "outcome": ...}
    assert_rebased(json.loads(broken.stdout)["outcome"], base)

    env = {"IASTM_CANONICAL_BASE": base,
           "IASTM_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    imported = runner.invoke(main, ["import", str(BAD_02)], env=env)
    assert imported.exit_code == 1
    (line,) = imported.stdout.splitlines()
    assert json.loads(line)["status"] == "rejected"
    assert_rebased(json.loads(line)["operationOutcome"], base)

    pushed = runner.invoke(main, ["push", "--server", "http://127.0.0.1:9/fhir",
                                  "--canonical-base", base, str(BAD_02)])
    assert pushed.exit_code == 1
    assert_rebased(json.loads(pushed.stderr.splitlines()[0]), base)
