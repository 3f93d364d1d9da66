"""One rule for ``amended`` on every write path (issue 10 #9, docs/clinical.md#amended): the
same version sequence stored by ``POST /api/sessions`` (``service.save_record``), by
``fhir-iastm import`` (``service.import_records``, all versions in one file) and by the back-fill
``reindex`` (``service.index_store``) gives identical stored FHIR resources — on SQLite and
PostgreSQL."""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlalchemy import select

from fhir_iastm import service
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.records import load_record
from fhir_iastm.storage import Store
from fhir_iastm.storage.schema import fhir_resource
from tests.conftest_storage import sample_raw

SID = "RBPT-2025-000311"
SETTINGS = MappingSettings()


def versions() -> list[dict[str, Any]]:
    """v1; v2 changes the post-treatment pain; v3 changes only the notes (still amended)."""
    v1 = sample_raw(SID, 1)
    v2 = copy.deepcopy(v1) | {"record_version": 2}
    v2["pain"] = dict(v2["pain"], post=v2["pain"]["post"] + 1)
    v3 = copy.deepcopy(v2) | {"record_version": 3, "notes": "reading confirmed"}
    return [v1, v2, v3]


def stored(store: Store) -> dict[str, Any]:
    """Live resources by type and business identifier (ids, meta and narrative left out)."""
    out = {}
    with store.read() as conn:
        rows = conn.execute(select(fhir_resource.c.res_type, fhir_resource.c.body)
                            .where(fhir_resource.c.gone.is_(False))).all()
    for rtype, body in rows:
        key = f"{rtype}|{json.dumps(body.get('identifier'), sort_keys=True)}"
        out[key] = {k: v for k, v in body.items() if k not in ("id", "meta", "text")}
    return out


def _clear(store: Store) -> None:
    from sqlalchemy import delete, text

    from fhir_iastm.storage.schema import fhir_resource_version

    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE fhir_resource, fhir_resource_version, fhir_token, "
                              "fhir_string, fhir_date, fhir_link RESTART IDENTITY CASCADE"))
        else:
            for table in ("fhir_token", "fhir_string", "fhir_date", "fhir_link"):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(delete(fhir_resource_version))
            conn.execute(delete(fhir_resource))


def _observation_statuses(resources: dict[str, Any]) -> dict[str, str]:
    return {r["identifier"][0]["value"]: r["status"] for r in resources.values()
            if "valueQuantity" in r or "component" in r}


def test_post_import_and_reindex_store_identical_resources(store: Store) -> None:
    sequence = versions()
    for body in sequence:
        assert service.save_record(store, body, SETTINGS, actor="a").result.status in (
            "created", "new-version")
    posted = stored(store)
    statuses = _observation_statuses(posted)
    assert statuses[f"{SID}/obs/pain-post"] == "amended"
    assert statuses[f"{SID}/obs/pain-pre"] == "final"
    # reindex: every resource rebuilt from the stored versions
    _clear(store)
    assert service.index_store(store, SETTINGS, everything=True) == 1
    assert stored(store) == posted


def test_import_of_the_versions_in_one_file_matches_the_posts(store: Store) -> None:
    sequence = versions()
    results = list(service.import_records(store, sequence, SETTINGS, actor="a"))
    assert [r.status for _, r in results] == ["created", "new-version", "new-version"]
    imported = stored(store)
    assert _observation_statuses(imported)[f"{SID}/obs/pain-post"] == "amended"
    reference = Store("sqlite://")
    reference.migrate()
    for body in sequence:
        service.save_record(reference, body, SETTINGS, actor="a")
    assert imported == stored(reference)
    reference.close()


def test_a_back_filled_store_indexes_amended(store: Store) -> None:
    """Records stored without resources (``init-db`` back-fill) are indexed by the same rule."""
    for body in versions():
        store.save_record(load_record(body), body, actor="a")
    assert service.index_store(store, SETTINGS) == 1
    assert _observation_statuses(stored(store))[f"{SID}/obs/pain-post"] == "amended"
