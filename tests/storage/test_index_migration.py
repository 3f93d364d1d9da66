"""Migration 0011 (docs/performance.md#indexes): ``fhir-iastm init-db`` upgrades a store made at
0010 — the two indexes no query needs are gone, every row and answer is what it was, and the
writes that follow store what they store on a new store — on SQLite and PostgreSQL; the
downgrade puts the indexes back."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import inspect

from fhir_iastm.cli import main
from fhir_iastm.storage import Store
from fhir_iastm.storage.engine import current_revision
from fhir_iastm.storage.fhir_write import write_many
from tests.conftest_storage import downgrade_to
from tests.storage.test_fhir_write import _bodies, _dump, _script

DROPPED = {("fhir_resource", "ix_fhir_resource_res_id"), ("records", "ix_records_status")}


def _indexes(store: Store) -> set[tuple[str, str]]:
    found = inspect(store.engine)
    return {(table, ix["name"] or "") for table in ("fhir_resource", "records")
            for ix in found.get_indexes(table)}


def test_init_db_upgrades_a_store_made_at_0010_and_its_answers_stay(store: Store) -> None:
    script = _script("mA")
    try:
        downgrade_to(store, "0010")
        assert _indexes(store) >= DROPPED
        with store.write() as conn:  # a store written before 0011
            write_many(conn, script[:5])
        before = _dump(store, "mA"), _bodies(store, "mAb"), _bodies(store, "mAp")
        url = store.engine.url.render_as_string(hide_password=False)
        result = CliRunner().invoke(main, ["init-db", "--database-url", url])
        assert result.exit_code == 0, result.output
        assert current_revision(store.engine) == "0011"
        assert not DROPPED & _indexes(store)
        assert (_dump(store, "mA"), _bodies(store, "mAb"), _bodies(store, "mAp")) == before
        with store.write() as conn:  # and goes on as a new store
            write_many(conn, script[5:])
        with store.write() as conn:
            write_many(conn, _script("mB"))
        assert _dump(store, "mA") == _dump(store, "mB")
        downgrade_to(store, "0010")
        assert _indexes(store) >= DROPPED
        assert _dump(store, "mA") == _dump(store, "mB")
    finally:
        store.migrate()
