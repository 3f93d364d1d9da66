"""``fhir-iastm validate``: one OperationOutcome per input document, exit 0/1, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD_06 = ROOT / "tests/data/examples/good-06-post-tka-tecnica-gavilan-rom-lefs.json"
MUTATION = sorted((ROOT / "tests/data/mutations").glob("*-pain-11.json"))[0]


def run(args: list[str], stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["validate", *args], input=stdin, env=env)


def outcomes(text: str) -> list[dict[str, Any]]:
    """The OperationOutcomes on stdout: one pretty document, or one per line (each tagged with
    its input; the tags must name a file and an item)."""
    stripped = text.strip()
    if stripped.startswith("{\n"):
        return [json.loads(stripped)]
    lines = [json.loads(line) for line in stripped.splitlines() if line.startswith("{")]
    assert all({"file", "line", "item"} <= set(line["input"]) for line in lines), lines
    return [line["outcome"] for line in lines]


def test_map_piped_into_validate_exits_0() -> None:
    cli = [sys.executable, "-m", "fhir_iastm"]
    mapped = subprocess.run(
        [*cli, "map", str(GOOD_06)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    checked = subprocess.run(
        [*cli, "validate", "-"],
        input=mapped.stdout,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [outcome] = outcomes(checked.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(i["severity"] not in ("error", "fatal") for i in outcome["issue"])


def test_invalid_resource_exits_1_with_located_issue(tmp_path: Path) -> None:
    resource = json.loads(MUTATION.read_text())["resource"]
    path = tmp_path / "pain.json"
    path.write_text(json.dumps(resource))
    result = run([str(path)])
    assert result.exit_code == 1
    [outcome] = outcomes(result.stdout)
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert [(e["expression"], e["details"]["text"]) for e in errors] == [
        (["Observation"], "iastm-obs-1")
    ]


def test_json_lines_give_one_outcome_per_line() -> None:
    resource = json.loads(MUTATION.read_text())["resource"]
    good = json.loads(json.dumps(resource))
    good["valueQuantity"]["value"] = 4
    result = run(["-"], stdin=json.dumps(good) + "\n" + json.dumps(resource) + "\n")
    assert result.exit_code == 1
    first, second = outcomes(result.stdout)
    assert not [i for i in first["issue"] if i["severity"] == "error"]
    assert [i["details"]["text"] for i in second["issue"] if i["severity"] == "error"] == [
        "iastm-obs-1"
    ]


def test_broken_json_is_an_outcome_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"resourceType": "Patient",')
    (tmp_path / "latin1.json").write_bytes(b'{"x": "\xe9"}')
    result = run([str(tmp_path / "bad.json"), str(tmp_path / "latin1.json")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    first, second = outcomes(result.stdout)
    assert "malformed JSON" in first["issue"][0]["diagnostics"]
    assert "UTF-8" in second["issue"][0]["diagnostics"]


def test_unknown_profile_option_is_an_error() -> None:
    resource = {"resourceType": "Patient", "gender": "female"}
    result = run(
        ["--profile", "https://nowhere.example.org/StructureDefinition/x", "-"],
        stdin=json.dumps(resource),
    )
    assert result.exit_code == 1
    [outcome] = outcomes(result.stdout)
    assert outcome["issue"][0]["details"]["text"] == "unknown-profile"


def test_wrong_resource_type_is_an_error() -> None:
    result = run(["-"], stdin=json.dumps({"resourceType": "Pateint"}))
    assert result.exit_code == 1
    assert "unknown resource type" in result.output


@pytest.mark.parametrize("via_env", [False, True])
def test_profiles_dir_option_and_env(tmp_path: Path, via_env: bool) -> None:
    folder = tmp_path / "profiles"
    shutil.copytree(ROOT / "profiles", folder)
    (folder / "StructureDefinition-zz-broken.json").write_text("{")
    args = ["-"] if via_env else ["--profiles", str(folder), "-"]
    env = {"IASTM_PROFILES_DIR": str(folder)} if via_env else None
    result = run(args, stdin="{}", env=env)
    assert result.exit_code == 1
    assert "StructureDefinition-zz-broken.json" in result.output
    assert "Traceback" not in result.output


def test_subprocess_never_prints_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('[1, {"resourceType": "Bundle", "entry": 5}]')
    proc = subprocess.run(
        [sys.executable, "-m", "fhir_iastm", "validate", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(outcomes(proc.stdout)) == 2


@pytest.mark.parametrize(
    "case",
    [p for p in sorted((ROOT / "tests/data/mutations").glob("1[34][0-9]-cond-2*.json"))],
    ids=lambda p: p.stem,
)
def test_wrong_side_diagnoses_fail_validate(case: Path, tmp_path: Path) -> None:
    """Issue 10 #1: M76.61 + left, M79.672 + right, M76.61 without a side, … exit 1."""
    doc = json.loads(case.read_text())
    path = tmp_path / "condition.json"
    path.write_text(json.dumps(doc["resource"]))
    result = run([str(path)])
    assert result.exit_code == 1, result.output
    [outcome] = outcomes(result.output)
    errors = [i["details"]["text"] for i in outcome["issue"] if i["severity"] == "error"]
    assert errors == [doc["expected"]["rule"]]


@pytest.mark.parametrize(
    "profile",
    [
        "http://hl7.org/fhir/StructureDefinition/Bundle",
        "https://iastm.example.org/fhir/StructureDefinition/iastm-procedure",
    ],
)
def test_profile_option_on_a_mapped_bundle_gives_no_error(profile: str) -> None:
    cli = [sys.executable, "-m", "fhir_iastm"]
    mapped = subprocess.run(
        [*cli, "map", str(GOOD_06)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    result = run(["--profile", profile, "-"], stdin=mapped.stdout)
    assert result.exit_code == 0, result.output
    [outcome] = outcomes(result.output)
    assert not [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
