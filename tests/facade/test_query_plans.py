"""Every query the facade, the write path and the console run on SQLite uses an index: no
statement's ``EXPLAIN QUERY PLAN`` walks a whole table (docs/performance.md#indexes).

The statements are the ones really executed (captured from the engine, and the shapes the
write path's locking reads hand the driver on SQLite, ``driver.FAST``) while records are POSTed,
the HAPI agreement table's searches and more are asked (every page, on the general path, whose
SQL the fast path compiles alike), resources are read by id, version and history, and
the console lists sessions with each filter.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event

from fhir_iastm.storage import driver
from fhir_iastm.storage import fhir_search as fs
from fhir_iastm.storage.console import ConsoleStore, SessionFilter
from tests.facade.oracle import Side
from tests.facade.support import new_run, serve, store_records
from tests.facade.test_oracle_hapi import QUERIES
from tests.facade.test_search_shapes import MORE

#: A plan step reading every row of a table (or of an index, in full); a CONSTANT ROW list or
#: a subquery's result is not a table.
FULL_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(?!\()(\S+)")
#: An index walked in the order of ``ORDER BY … LIMIT``: it stops after the page's rows.
ORDERED_WALK = re.compile(r"^SCAN \S+ USING (COVERING )?INDEX ")
#: The one known whole-table read: ``:missing`` on a reference parameter (``part-of:missing``)
#: reads fhir_link's rows of every type; an index leading with (res_type, param) would serve it
#: but cost every stored session about 11 more pages (docs/performance.md#indexes).
KNOWN = ("NOT IN (SELECT fhir_link.res_pk \nFROM fhir_link \n"
         "WHERE fhir_link.res_type = ? AND fhir_link.param = ?)")


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Any]]]:
    """(database file, [(SQL, parameters)] of every SELECT run)."""
    from fhir_iastm.api import create_app
    from fhir_iastm.config import Settings

    db = tmp_path_factory.mktemp("plans") / "facade.db"
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{db}"}))
    store = app.extensions["fhir_iastm"].store
    seen: list[Any] = []

    def spy(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")) and not many:
            seen.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", spy)
    run = new_run()
    patch = pytest.MonkeyPatch()
    patch.setattr(fs, "FAST", False)
    patch.setattr(driver, "_SELECTS", {})  # the driver's shapes compiled from here on
    try:
        with serve(app) as base:
            store_records(base, run.records)
            side = Side("facade", base, run)
            for template in QUERIES + MORE:
                _every_page(side, template)
            patient = side.fill("{P0}")
            for path in (f"Patient/{patient}", f"Patient/{patient}/_history",
                         f"Patient/{patient}/_history/1"):
                assert requests.get(f"{base}/{path}", timeout=60).status_code == 200
            side.close()
        record = run.records[0]
        console = ConsoleStore(store)
        clinic = record["clinic"]["clinic_id"]
        for f in (SessionFilter(), SessionFilter(clinic=clinic),
                  SessionFilter(patient=record["patient"]["mrn"]),
                  SessionFilter(status=record.get("status") or "final"),
                  SessionFilter(sync="queued"),
                  SessionFilter(sync="pushed", clinic=clinic),
                  SessionFilter(date_from="2020-01-01", date_to="2030-01-01")):
            assert console.sessions(f, limit=2).rows is not None
        seen.extend((sql, (None,) * sql.count("?"))
                    for sql, *_ in driver._SELECTS.values())
        yield db, seen
    finally:
        patch.undo()
        event.remove(store.engine, "before_cursor_execute", spy)
        store.close()


def _every_page(side: Side, template: str) -> None:
    rtype, _, query = template.partition("?")
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    url: str | None = f"{side.base}/{rtype}?" + urllib.parse.urlencode(
        [(k, side.fill(v)) for k, v in pairs], safe=",|:/%", quote_via=urllib.parse.quote)
    pages = 0
    while url and pages < 20:
        response = requests.get(url, timeout=60)
        pages += 1
        url = None
        if response.status_code == 200 and b'"next"' in response.content:
            links = json.loads(response.content).get("link") or []
            url = next((link["url"] for link in links if link["relation"] == "next"), None)


def full_scans(db: Path, statements: list[Any]) -> list[tuple[str, str]]:
    """(plan step, SQL) of each statement step that reads a whole table."""
    found: list[tuple[str, str]] = []
    with sqlite3.connect(db) as conn:
        for sql, params in statements:
            for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params):
                step = row[3]
                if not FULL_SCAN.match(step) or KNOWN in sql:
                    continue
                if ORDERED_WALK.match(step) and "ORDER BY" in sql and "LIMIT" in sql:
                    continue
                found.append((step, sql))
    return found


def test_many_statement_shapes_are_checked(captured: tuple[Path, list[Any]]) -> None:
    _db, statements = captured
    shapes = {sql for sql, _ in statements}
    assert len(shapes) > 60, len(shapes)
    # the write path's locking reads, by (type, id) and by session, are among them
    assert any("fhir_resource.res_type = ? AND fhir_resource.res_id IN (?" in s for s in shapes)
    assert any("records.session_id IN (?" in s and "FROM records" in s for s in shapes)
    assert any(KNOWN in s for s in shapes)


def test_no_statement_walks_a_whole_table(captured: tuple[Path, list[Any]]) -> None:
    db, statements = captured
    found = full_scans(db, statements)
    assert found == [], "\n\n".join(f"{step}: {sql}" for step, sql in found)


def test_a_full_scan_is_reported(captured: tuple[Path, list[Any]]) -> None:
    db, _ = captured
    by_id = "SELECT pk FROM fhir_resource WHERE res_id = ?"
    assert [step for step, _ in full_scans(db, [(by_id, ("x",))])] == [
        "SCAN fhir_resource USING COVERING INDEX sqlite_autoindex_fhir_resource_1"]
    walk = "SELECT session_id FROM records ORDER BY status LIMIT 5"
    assert full_scans(db, [(walk, ())]) == []  # ix_records_status_session_start, in order
    whole = "SELECT session_id FROM records ORDER BY status"
    assert [step for step, _ in full_scans(db, [(whole, ())])] == [
        "SCAN records USING INDEX ix_records_status_session_start"]
