"""The mutation corpus (tests/data/mutations/): each resource breaks one profile rule, and the
validator reports exactly that issue (plus the co-failing twin rule where a profile states one
requirement twice) and no other error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import validate

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "data" / "mutations").glob("[0-9][0-9][0-9]-*.json"))


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


def _key(issue: dict[str, Any]) -> tuple[str, str, str]:
    return (issue["severity"], issue["expression"], issue["rule"])


def test_corpus_is_large_and_covers_every_rule_kind() -> None:
    docs = [json.loads(p.read_text()) for p in CORPUS]
    assert len(docs) >= 60
    single = [d for d in docs if not d.get("also_expected")]
    assert len(single) >= 60
    kinds = {d["expected"]["rule"].split(":")[0] for d in docs}
    assert {"card", "slice", "pattern", "binding", "type"} <= kinds
    invariants = {d["expected"]["rule"] for d in docs if ":" not in d["expected"]["rule"]}
    for key in (
        "iastm-proc-1",
        "iastm-proc-2",
        "iastm-proc-3",
        "iastm-proc-4",
        "iastm-proc-5",
        "iastm-proc-6",
        "iastm-proc-7",
        "iastm-proc-8",
        "iastm-proc-9",
        "iastm-proc-10",
        "us-core-7",
        "iastm-cond-4",
        "iastm-obs-5",
        "iastm-cond-1",
        "iastm-cond-2r",
        "iastm-cond-2l",
        "iastm-cond-2b",
        "iastm-cond-3",
        "con-5",
        "con-3",
        "iastm-obs-1",
        "iastm-obs-2",
        "iastm-obs-3",
        "iastm-obs-4",
        "us-core-1",
        "us-core-3",
        "us-core-6",
        "us-core-17",
        "per-1",
    ):
        assert key in invariants or any(
            key == e["rule"] for d in docs for e in d.get("also_expected", [])
        ), key


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_mutation_reports_exactly_its_issue(path: Path, index: ProfileIndex) -> None:
    doc = json.loads(path.read_text())
    resource = doc["resource"]
    assert doc["profile"] in resource["meta"]["profile"]
    issues = validate(resource, index)
    expected = {_key(doc["expected"])} | {_key(e) for e in doc.get("also_expected", [])}
    errors = {(i.severity, i.expression, i.details) for i in issues if i.is_error}
    if doc["expected"]["severity"] == "warning":
        warnings = {
            (i.severity, i.expression, i.details) for i in issues if i.severity == "warning"
        }
        assert _key(doc["expected"]) in warnings
        assert errors == {e for e in expected if e[0] == "error"}
    else:
        assert errors == expected
