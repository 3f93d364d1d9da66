"""Receiver settings against the real HAPI (docs/targets.md#receiver-settings): a split
transaction lands the same session as one transaction, survives a failure between its parts,
and search-then-write sends no conditional request; the mapping options per target."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.errors import FhirUnavailableError
from fhir_iastm.mapping import MappingSettings, canonical_for_roundtrip
from fhir_iastm.records import load_record
from fhir_iastm.sync.pull import pull_records
from fhir_iastm.sync.push import push_record
from tests.integration.test_dryrun_hapi import Recording
from tests.integration.test_push_pull import GOOD, _amended, session_census, variant

pytestmark = pytest.mark.integration


def once_each(client: FhirClient, data: dict[str, Any]) -> bool:
    """Every business identifier of the session is held by exactly one resource."""
    census = session_census(client, load_record(data))
    return {v for k, v in census.items() if not k.endswith("?encounter")} == {1}


@pytest.fixture
def client(hapi_base_url: str) -> Recording:
    return Recording(hapi_base_url, retry=RetryPolicy(max_attempts=4))


class FailingAfter(Recording):
    """Fails the n-th transaction as an outage would (before sending it)."""

    def __init__(self, *args: Any, fail_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls, self.fail_at = 0, fail_at

    def transaction(self, bundle: dict[str, Any], *, idempotent: bool | None = None
                    ) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise FhirUnavailableError("POST transaction: injected outage")
        return super().transaction(bundle, idempotent=idempotent)


def test_a_split_push_lands_what_one_transaction_lands(client: Recording) -> None:
    whole, split = variant(GOOD[5]), variant(GOOD[5])
    assert push_record(client, load_record(whole)).status == "pushed"
    one = len(client.sent)
    outcome = push_record(client, load_record(split), max_entries=4)
    assert outcome.status == "pushed"
    parts = client.sent[one:]
    assert len(parts) >= 4
    assert all(len(tx["entry"]) <= 4 for tx, _ in parts)
    assert sorted(session_census(client, load_record(split)).values()) == sorted(
        session_census(client, load_record(whole)).values())
    [pulled] = pull_records(client, session_id=split["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(split))
    assert push_record(client, load_record(split), max_entries=4).status == "unchanged"
    v2 = _amended(split)
    second = push_record(client, load_record(v2), max_entries=4, last_pushed=outcome)
    assert (second.status, len(second.retracted)) == ("pushed", 5)
    [pulled] = pull_records(client, session_id=split["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(v2))


def test_a_failure_between_parts_is_completed_by_the_next_push(hapi_base_url: str) -> None:
    data = variant(GOOD[5])
    failing = FailingAfter(hapi_base_url, fail_at=3)
    with pytest.raises(FhirUnavailableError):
        push_record(failing, load_record(data), max_entries=4)
    client = Recording(hapi_base_url)
    again = push_record(client, load_record(data), max_entries=4)
    assert again.status == "pushed", "a pending Procedure is never taken for unchanged"
    assert once_each(client, data)  # nothing duplicated
    [pulled] = pull_records(client, session_id=data["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(data))


def test_search_first_sends_no_conditional_request(client: Recording) -> None:
    data = variant(GOOD[2])
    first = push_record(client, load_record(data), search_first=True)
    assert first.status == "pushed"
    changed = {**json.loads(json.dumps(data)), "record_version": 2, "notes": "search first"}
    assert push_record(client, load_record(changed), search_first=True).status == "pushed"
    for tx, _ in client.sent[-2:]:
        for entry in tx["entry"]:
            assert "ifNoneExist" not in entry["request"]
            assert "?" not in entry["request"]["url"]
    assert once_each(client, changed)
    [pulled] = pull_records(client, session_id=data["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(changed))


def test_pain_category_exam_is_added_after_survey(client: Recording) -> None:
    data = variant(GOOD[0])
    settings = MappingSettings(pain_category=("survey", "exam"))
    assert push_record(client, load_record(data), settings=settings).status == "pushed"
    [pulled] = pull_records(client, session_id=data["session_id"])
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(data))
    tx, _ = client.sent[-1]
    pains = [e["resource"] for e in tx["entry"]
             if "/obs/pain-" in json.dumps(e["resource"].get("identifier"))]
    assert pains
    assert all([c["coding"][0]["code"] for c in p["category"]] == ["survey", "exam"]
               for p in pains)


def test_check_server_writes_a_target_file_that_push_follows(hapi_base_url: str,
                                                            tmp_path: Path) -> None:
    base = f"https://target-{uuid.uuid4().hex[:8]}.example.org/fhir"
    target = tmp_path / "hapi.toml"
    runner = CliRunner()
    runner.invoke(main, ["check-server", "--server", hapi_base_url, "--canonical-base", base,
                         "--write-target", str(target)])
    text = target.read_text()
    assert "strip_profiles = true" in text  # nothing loaded under this fresh base
    target.write_text(text.replace("performed_as_datetime = false",
                                   "performed_as_datetime = true")
                      .replace("max_bundle_entries = 0", "max_bundle_entries = 5"))
    data = variant(GOOD[0])
    record = tmp_path / "r.json"
    record.write_text(json.dumps(data))
    result = runner.invoke(main, ["push", "--server", hapi_base_url, "--canonical-base", base,
                                  "--target", str(target), str(record)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["status"] == "pushed"
    client = FhirClient(hapi_base_url)
    system = f"{base}/sid/iastm-session"
    [procedure] = client.search_all("Procedure", [("identifier", f"{system}|{data['session_id']}")])
    assert "performedDateTime" in procedure
    assert "performedPeriod" not in procedure
    assert "profile" not in procedure.get("meta", {})
