"""Back-fill (``init-db``) and ``reindex``: records stored without their FHIR resources become
searchable; reindexing unchanged content keeps every version."""

from __future__ import annotations

from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.service import index_store
from fhir_iastm.storage import Condition, SearchQuery, Store, TokenMatch


def _procedures(store: Store) -> list[tuple[str, int]]:
    result = store.search(SearchQuery("Procedure", count=500))
    return sorted((r.resource_id, r.version) for r in result.matches)


def test_back_fill_then_reindex(store: Store, make_record) -> None:  # type: ignore[no-untyped-def]
    record, raw = make_record("RBPT-2025-880001", 1)
    store.save_record(record, raw, actor="t")  # stored the old way: no resources yet
    assert store.count_unindexed() == 1
    assert _procedures(store) == []
    seen: list[int] = []
    assert index_store(store, MappingSettings(), progress=seen.append) == 1
    assert seen == [1]
    assert store.count_unindexed() == 0
    found = _procedures(store)
    assert found
    assert all(version == 1 for _, version in found)
    assert index_store(store, MappingSettings()) == 0
    assert index_store(store, MappingSettings(), everything=True) == 1
    assert _procedures(store) == found  # same content: same versions
    query = SearchQuery("Procedure", (Condition("identifier", "token", (
        TokenMatch(None, "RBPT-2025-880001"),)),))
    assert len(store.search(query).matches) == 1


def test_reindex_command_reports_progress(tmp_path, make_record) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    store.migrate()
    store.save_record(*make_record("RBPT-2025-880002", 1), actor="t")
    store.close()
    done = CliRunner().invoke(main, ["init-db", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert "1 record(s) indexed" in done.output
    again = CliRunner().invoke(main, ["reindex", "--database-url", url])
    assert again.exit_code == 0
    assert "1 record(s) reindexed" in again.output
