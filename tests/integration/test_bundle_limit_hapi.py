"""The ``max_bundle_entries`` receiver setting against a server that enforces a Bundle limit
itself: the test HAPI's ``/limited/fhir`` refuses a transaction of more than
``HAPI_MAX_BUNDLE_ENTRIES`` entries (default 5) with 413
(docs/targets.md#bundle-size-limit-on-the-test-hapi). Without the setting the session is
refused and nothing lands; with it the push splits the session, every part is accepted, and the
last part is the Procedure's ``PUT`` with ``If-Match`` (the version guard of
docs/targets.md#split-transactions-and-the-version-guard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import RetryPolicy
from fhir_iastm.mapping import canonical_for_roundtrip
from fhir_iastm.records import load_record
from fhir_iastm.sync.pull import pull_records
from fhir_iastm.sync.push import push_record
from tests.integration.test_dryrun_hapi import Recording
from tests.integration.test_push_pull import CANON, GOOD, _amended, variant

pytestmark = pytest.mark.integration
LIMIT = 5  # HAPI_MAX_BUNDLE_ENTRIES: scripts/hapi leaves it unset, the server's default
ENV = {"IASTM_TARGET_FILE": "", "IASTM_FHIR_TOKEN": "", "IASTM_CANONICAL_BASE": ""}


@pytest.fixture
def limited(hapi_base_url: str) -> str:
    base = hapi_base_url.rsplit("/fhir", 1)[0] + "/limited/fhir"
    assert requests.get(f"{base}/metadata", timeout=30).status_code == 200, (
        f"the HAPI at {hapi_base_url} predates tests/fhir_server's /limited/fhir endpoint")
    return base


def _sessions(base: str, session_id: str) -> int:
    found = requests.get(f"{base}/Procedure", timeout=30, params={
        "identifier": f"{CANON}/sid/iastm-session|{session_id}", "_summary": "count"},
        headers={"Cache-Control": "no-cache"})
    return int(found.json()["total"])


def _push(base: str, data: dict[str, object], tmp_path: Path, *extra: str) -> list[str]:
    path = tmp_path / f"{data['session_id']}.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["push", "--server", base, "--canonical-base", CANON,
                                       *extra, str(path)], env=ENV)
    return [str(result.exit_code), *result.stdout.splitlines()]


def test_without_the_setting_the_server_refuses_the_session(limited: str, tmp_path: Path) -> None:
    data = variant(GOOD[5])
    code, line = _push(limited, data, tmp_path)
    assert code == "1"
    out = json.loads(line)
    assert out["status"] == "rejected"
    [issue] = [i for i in out["operationOutcome"]["issue"] if "entries" in i.get("diagnostics", "")]
    assert f"at most {LIMIT} entries in a Bundle" in issue["diagnostics"]
    assert _sessions(limited, str(data["session_id"])) == 0  # nothing landed


def test_the_setting_splits_within_the_servers_limit(limited: str, tmp_path: Path) -> None:
    data = variant(GOOD[5])
    target = tmp_path / "limited.toml"
    target.write_text(f"max_bundle_entries = {LIMIT}\n")
    code, line = _push(limited, data, tmp_path, "--target", str(target))
    assert code == "0", line
    assert json.loads(line)["status"] == "pushed"
    client = Recording(limited, retry=RetryPolicy(max_attempts=4))
    [pulled] = pull_records(client, session_id=str(data["session_id"]))
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(data))
    code, line = _push(limited, data, tmp_path, "--target", str(target))
    assert (code, json.loads(line)["status"]) == ("0", "unchanged")

    # version 2 through the library, to see the parts: all within the limit, the guard last
    v2 = _amended(data)
    outcome = push_record(client, load_record(v2), max_entries=LIMIT)
    assert outcome.status == "pushed"
    assert len(client.sent) >= 3
    assert all(len(tx["entry"]) <= LIMIT for tx, _ in client.sent)
    last, _ = client.sent[-1]
    [guard] = last["entry"]
    assert guard["request"]["method"] == "PUT"
    assert guard["request"]["url"].startswith("Procedure/")
    assert guard["request"]["ifMatch"].startswith('W/"')
    [pulled] = pull_records(client, session_id=str(data["session_id"]))
    assert canonical_for_roundtrip(pulled) == canonical_for_roundtrip(load_record(v2))
