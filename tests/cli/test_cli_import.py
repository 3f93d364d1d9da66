"""``fhir-iastm import``: records are validated and mapped (in worker processes with --jobs),
written several per transaction, each still all-or-nothing, with one result line per record."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.errors import ConflictRecordError
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.service import prepare_record
from fhir_iastm.storage import Condition, SaveResult, SearchQuery, Store, TokenMatch
from fhir_iastm.storage import store as store_module
from tests.conftest_storage import sample_raw


def _records() -> list[Any]:
    a1, b1 = sample_raw("RBPT-2025-870001", 1), sample_raw("RBPT-2025-870002", 1)
    a_other = copy.deepcopy(a1)
    a_other["notes"] = "Other content under the same record_version."
    invalid = sample_raw("RBPT-2025-870003", 1)
    del invalid["patient"]
    a2 = sample_raw("RBPT-2025-870001", 2)
    return [a1, invalid, a1, a_other, b1, a2, sample_raw("RBPT-2025-870004", 1)]


EXPECTED = [("RBPT-2025-870001", "created"), ("RBPT-2025-870003", "rejected"),
            ("RBPT-2025-870001", "unchanged"), ("RBPT-2025-870001", "rejected"),
            ("RBPT-2025-870002", "created"), ("RBPT-2025-870001", "new-version"),
            ("RBPT-2025-870004", "created")]


@pytest.mark.parametrize("options", [["--batch", "1", "--jobs", "1"],
                                     ["--batch", "3", "--jobs", "1"],
                                     ["--batch", "2", "--jobs", "2"]])
def test_import_stores_each_record_whole_in_batches(tmp_path: Path, options: list[str]) -> None:
    source = tmp_path / "records.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in _records()), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'import.db'}"
    done = CliRunner().invoke(main, ["import", str(source), "--database-url", url, *options])
    assert done.exit_code == 1, done.output  # two records were rejected
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["session_id"], line["status"]) for line in lines] == EXPECTED
    assert lines[3]["operationOutcome"]["issue"][0]["code"] == "duplicate"  # 409
    assert "import: 7 documents from 1 file" in done.stderr
    assert "/s)" in done.stderr  # the rate
    assert "2 rejected" in done.stderr
    store = Store(url)
    assert store.list_versions("RBPT-2025-870001") == [1, 2]
    assert store.count_unindexed() == 0
    for sid, stored in (("RBPT-2025-870002", 1), ("RBPT-2025-870003", 0),
                        ("RBPT-2025-870004", 1)):
        query = SearchQuery("Procedure", (Condition("identifier", "token", (
            TokenMatch(None, sid),)),))
        assert len(store.search(query).matches) == stored
    saves = [row for row in store.audit_log(limit=100) if row["action"] == "save"]
    assert len(saves) == 5  # the refused records wrote nothing
    store.close()


def test_a_refused_record_in_a_batch_keeps_the_others(store: Store) -> None:
    settings = MappingSettings()
    prepared = [prepare_record(r, settings) for r in _records()]
    writes = [p for p in prepared if isinstance(p, tuple)]
    results = store.save_records(writes, actor="t")
    assert [r.status if isinstance(r, SaveResult) else "rejected" for r in results] \
        == ["created", "unchanged", "rejected", "created", "new-version", "created"]
    assert isinstance(results[2], ConflictRecordError)
    assert store.get_record("RBPT-2025-870001").record_version == 2
    assert store.get_record("RBPT-2025-870004").record_version == 1


def test_a_batch_that_hits_a_database_error_is_stored_record_by_record(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    settings = MappingSettings()
    writes = [p for p in (prepare_record(r, settings) for r in _records()) if isinstance(p, tuple)]
    original = store_module.save_batch

    def racing(conn: Any, items: Any, actor: str | None, clock: Any) -> Any:
        original(conn, items, actor, clock)  # rows written, then as if another process
        monkeypatch.setattr(store_module, "save_batch", original)  # stored one first
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(store_module, "save_batch", racing)
    results = store.save_records(writes, actor="t")
    assert [r.status if isinstance(r, SaveResult) else "rejected" for r in results] \
        == ["created", "unchanged", "rejected", "created", "new-version", "created"]
    assert store.list_versions("RBPT-2025-870001") == [1, 2]  # the rolled-back batch, redone
