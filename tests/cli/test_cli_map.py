"""``fhir-iastm map`` / ``unmap`` (README.md): CliRunner for the contract, one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.mapping import canonical_for_roundtrip, from_fhir
from fhir_iastm.records import load_record
from tests.mapping.support import EXAMPLES, GOOD

ROOT = Path(__file__).resolve().parents[2]
GOOD_03 = EXAMPLES / "good-03-plantar-fasciitis-hawkgrips-bruising.json"
GOOD_01 = EXAMPLES / "good-01-lateral-epicondylitis-graston.json"  # the example with billing
BAD_02 = EXAMPLES / "bad-02-pain-11.json"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _outcomes(stderr: str) -> list[dict]:
    """The OperationOutcome lines of stderr (not the summary line)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_map_one_record_prints_one_bundle(runner: CliRunner) -> None:
    result = runner.invoke(main, ["map", str(GOOD_03)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    record = load_record(json.loads(GOOD_03.read_text()))
    assert canonical_for_roundtrip(from_fhir(bundle)) == canonical_for_roundtrip(record)
    assert result.stderr == ""


def test_map_reads_stdin(runner: CliRunner) -> None:
    result = runner.invoke(main, ["map", "-"], input=GOOD_03.read_text())
    assert result.exit_code == 0
    assert json.loads(result.stdout)["resourceType"] == "Bundle"


def test_map_bad_record_exits_1_with_operation_outcome(runner: CliRunner) -> None:
    result = runner.invoke(main, ["map", str(BAD_02)])
    assert result.exit_code == 1
    assert result.stdout == ""
    (outcome,) = _outcomes(result.stderr)
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["expression"] == ["pain.post"]
    assert issue["details"]["coding"][0]["code"] == "E_RANGE"


def test_map_array_prints_json_lines(runner: CliRunner) -> None:
    records = [json.loads((EXAMPLES / f"{name}.json").read_text()) for name in GOOD]
    result = runner.invoke(main, ["map"], input=json.dumps(records))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(GOOD)
    ids = [from_fhir(json.loads(line)).session_id for line in lines]
    assert ids == [r["session_id"] for r in records]


def test_map_json_lines_with_one_invalid_item(runner: CliRunner) -> None:
    text = "\n".join(json.dumps(json.loads(p.read_text())) for p in (GOOD_03, BAD_02, GOOD_03))
    result = runner.invoke(main, ["map"], input=text + "\n")
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2
    (outcome,) = _outcomes(result.stderr)
    issue = outcome["issue"][0]
    assert issue["expression"] == ["pain.post"]
    assert issue["diagnostics"].startswith("-:2 (session RBPT-")  # file:line (session)
    assert result.stderr.splitlines()[-1].startswith("map: 3 documents from 1 file: 1 invalid, 2 ok")


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("{", "E_FORMAT", "malformed JSON"),
        ("", "E_FORMAT", "empty"),
        ("42", "E_TYPE", "JSON object"),
        ('{"a": 1}\n{"b": ', "E_FORMAT", "line 2"),
    ],
)
def test_map_bad_input_is_an_outcome_not_a_traceback(
    runner: CliRunner, text: str, code: str, fragment: str
) -> None:
    result = runner.invoke(main, ["map"], input=text)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    issues = [o["issue"][0] for o in _outcomes(result.stderr)]
    issue = next(i for i in issues if i["details"]["coding"][0]["code"] == code)  # each item's
    assert fragment in issue["diagnostics"]


def test_map_unknown_field_is_reported(runner: CliRunner) -> None:
    data = json.loads(GOOD_03.read_text())
    data["colour"] = "blue"
    result = runner.invoke(main, ["map"], input=json.dumps(data))
    assert result.exit_code == 1
    issue = _outcomes(result.stderr)[0]["issue"][0]
    assert issue["expression"] == ["colour"]


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    assert runner.invoke(main, ["map", "no-such-file.json"]).exit_code == 2
    assert runner.invoke(main, ["map", "--no-such-option"]).exit_code == 2


def test_map_options_and_environment(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "map",
            str(GOOD_01),
            "--include-cpt",
            "--claim-us-core",
            "--canonical-base",
            "https://pt.example.com/fhir",
        ],
    )
    assert result.exit_code == 0
    assert '"97140"' in result.stdout
    assert "us-core-procedure" in result.stdout
    assert "https://pt.example.com/fhir/StructureDefinition/iastm-procedure" in result.stdout
    env = {"IASTM_INCLUDE_CPT": "true", "IASTM_CANONICAL_BASE": "https://env.example.com/fhir"}
    result = runner.invoke(main, ["map", str(GOOD_01)], env=env)
    assert '"97140"' in result.stdout  # the record's billing line (docs/clinical.md#billing)
    assert "https://env.example.com/fhir/sid/" in result.stdout
    assert "us-core-procedure" not in result.stdout


def test_unmap_round_trip(runner: CliRunner) -> None:
    bundle = runner.invoke(main, ["map", str(GOOD_03)]).stdout
    result = runner.invoke(main, ["unmap", "-"], input=bundle)
    assert result.exit_code == 0
    record = load_record(json.loads(result.stdout))
    original = load_record(json.loads(GOOD_03.read_text()))
    assert canonical_for_roundtrip(record) == canonical_for_roundtrip(original)


def test_unmap_list_of_resources_is_one_session(runner: CliRunner) -> None:
    bundle = json.loads(runner.invoke(main, ["map", str(GOOD_03)]).stdout)
    listed = json.dumps([e["resource"] for e in bundle["entry"]])
    result = runner.invoke(main, ["unmap"], input=listed)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["session_id"] == "RBPT-2025-000518"


def test_unmap_rejection_names_the_fhirpath(runner: CliRunner) -> None:
    bundle = json.loads(runner.invoke(main, ["map", str(GOOD_03)]).stdout)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Procedure":
            entry["resource"]["status"] = "on-hold"
    result = runner.invoke(main, ["unmap"], input=json.dumps(bundle))
    assert result.exit_code == 1
    issue = _outcomes(result.stderr)[0]["issue"][0]
    assert issue["expression"] == ["Procedure.status"]
    assert issue["details"]["coding"][0]["code"] == "E_CODE_UNKNOWN"


def test_python_dash_m_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fhir_iastm", "map", str(GOOD_03)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bundle = json.loads(done.stdout)
    assert len(bundle["entry"]) == 11  # good-03: 9 + 2 expected-effect findings
    bad = subprocess.run(
        [sys.executable, "-m", "fhir_iastm", "map", str(BAD_02)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "pain.post" in bad.stderr
    assert "E_RANGE" in bad.stderr
    assert "Traceback" not in bad.stderr
