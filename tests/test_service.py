"""The use cases of fhir_iastm.service on a real (SQLite) store: save, the stored Bundle, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fhir_iastm.records as records_package
import fhir_iastm.records.load as records_load
from fhir_iastm import service
from fhir_iastm.errors import InvalidRecordError
from fhir_iastm.facade import stored_resources
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records import load_record
from tests.conftest_storage import sample_raw

EXAMPLES = Path(__file__).parent / "data" / "examples"
SETTINGS = MappingSettings()


def test_save_record_validates_and_stores(sqlite_store) -> None:
    raw = sample_raw("S-SAVE-1")
    saved = service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    assert (saved.result.status, saved.result.http_status) == ("created", 201)
    assert sqlite_store.get_record("S-SAVE-1").body == raw
    again = service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    assert again.result.status == "unchanged"


def test_save_record_refuses_an_invalid_body_naming_the_field(sqlite_store) -> None:
    raw = sample_raw("S-SAVE-2")
    raw["pain"]["pre"] = 11
    with pytest.raises(InvalidRecordError) as caught:
        service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    assert any(path and "pain" in path for _code, path in caught.value.codes)
    assert sqlite_store.list_records().items == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("good-*.json")), ids=lambda p: p.stem)
def test_stored_bundle_is_the_bundle_of_the_record(sqlite_store, path: Path) -> None:
    raw = json.loads(path.read_text())
    service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    stored = sqlite_store.get_record(raw["session_id"])
    assert service.stored_bundle(stored, SETTINGS) == to_fhir(load_record(raw), SETTINGS)


def test_stored_bundle_does_not_validate_the_stored_body_again(sqlite_store, monkeypatch) -> None:
    raw = sample_raw("S-BUNDLE-1")
    service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    stored = sqlite_store.get_record("S-BUNDLE-1")
    expected = to_fhir(load_record(raw), SETTINGS)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a stored body was validated again")

    for module in (records_package, records_load, service):
        for name in ("load_record", "check_record"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)
    assert service.stored_bundle(stored, SETTINGS) == expected


def test_export_streams_the_resources_of_every_stored_session(sqlite_store) -> None:
    raws = [sample_raw("S-EXPORT-1"), sample_raw("S-EXPORT-2")]
    for raw in raws:
        service.save_record(sqlite_store, raw, SETTINGS, actor="test")
    exported = list(service.export(sqlite_store, SETTINGS))
    expected = [r for raw in raws for r in stored_resources(to_fhir(load_record(raw), SETTINGS))]
    assert exported == expected
