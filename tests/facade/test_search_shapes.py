"""The search fast path answers byte for byte what the general path answers, on SQLite and on
PostgreSQL.

``fhir_search.FAST`` runs each query shape's SQL through the driver (``search_shape``,
``driver.select_rows``); off, every statement is built by SQLAlchemy from the query. Every query
of the HAPI agreement table and more (pages by cursor, sorts, ``_id`` lists, LIKE wildcards,
refusals) is asked both ways, every page: same status, body and headers; the AuditEvent's
patients read from ``StoredResource.head`` equal those of the decoded bodies.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_iastm.facade import bundle as bundle_module
from fhir_iastm.facade.audit import concerned, patient_references
from fhir_iastm.facade.bundle import resource_json, with_meta
from fhir_iastm.facade.parse import parse_search
from fhir_iastm.storage import StoredResource
from fhir_iastm.storage import fhir_search as fs
from fhir_iastm.storage.fhir_types import compact_json
from tests.facade.oracle import Side
from tests.facade.support import Run, new_run, serve, store_records
from tests.facade.test_oracle_hapi import QUERIES

MORE: tuple[str, ...] = (
    "Procedure?_count=1",
    "Procedure?_count=2&_sort=date",
    "Procedure?_count=2&_sort=-date&_total=none",
    "Observation?_count=3&_sort=-_lastUpdated",
    "Observation?_count=4&_sort=_id",
    "Condition?_count=1&_sort=recorded-date",
    "Procedure?patient={P0}&_include=Procedure:patient&_count=1",
    "Procedure?patient={P1}&_include=Procedure:patient:Patient",
    "Procedure?patient:Patient={P0}",
    "Patient?_id={P0},{P1}",
    "Patient?_id:not={P0}",
    "Patient?_id:missing=false",
    "Patient?identifier={MRN0}&_revinclude=Procedure:patient&_revinclude=Encounter:patient",
    "Procedure?_lastUpdated=ge2020&_lastUpdated=le2999",
    "Procedure?date:missing=false&_count=2",
    "Procedure?patient.identifier={MRN1}&_count=1",
    "Patient?family=a%25",
    "Patient?family=_",
    "Patient?family:contains=%5C",
    "Patient?family:exact=",
    "Patient?identifier={MRN0}&_summary=true",
    "Patient?identifier={MRN0}&_summary=data",
    "Patient?identifier={MRN0}&_pretty=true",
    "Patient?identifier={MRN0}&unknown=1",
    "Procedure?date=2025-13",
    "Procedure?_cursor=bm90LWEtY3Vyc29y",
)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Any]:
    from fhir_iastm.api import create_app
    from fhir_iastm.config import Settings

    folder: Path = tmp_path_factory.mktemp("shapes")
    url = (f"sqlite:///{folder}/facade.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    application = create_app(Settings.from_env({"IASTM_DATABASE_URL": url}))
    yield application
    application.extensions["fhir_iastm"].store.close()


@pytest.fixture(scope="module")
def side(app: Any) -> Iterator[tuple[Side, Run]]:
    run = new_run()
    with serve(app) as base:
        store_records(base, run.records)
        found = Side("facade", base, run)
        yield found, run
        found.close()


def _url(side: Side, template: str) -> str:
    rtype, _, query = template.partition("?")
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    params = [(k, side.fill(v)) for k, v in pairs]
    return f"{side.base}/{rtype}?" + urllib.parse.urlencode(params, safe=",|:/%",
                                                           quote_via=urllib.parse.quote)


def _get(url: str, fast: bool,
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, bytes, dict[str, str]]:
    monkeypatch.setattr(fs, "FAST", fast)
    response = requests.get(url, timeout=60)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("date", "x-request-id")}
    return response.status_code, response.content, headers


@pytest.mark.parametrize("template", QUERIES + MORE)
def test_the_fast_path_answers_as_the_general_path(
        template: str, side: tuple[Side, Run], monkeypatch: pytest.MonkeyPatch) -> None:
    url: str | None = _url(side[0], template)
    pages = 0
    while url:
        fast, general = _get(url, True, monkeypatch), _get(url, False, monkeypatch)
        assert fast == general, (template, pages)
        pages += 1
        url = None
        if fast[0] == 200 and b'"next"' in fast[1]:
            links = json.loads(fast[1]).get("link") or []
            url = next((link["url"] for link in links if link["relation"] == "next"), None)
        assert pages < 50


def test_the_issue_searches_take_the_fast_path(side: tuple[Side, Run],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    original = fs.select_rows

    def spy(*args: Any) -> Any:
        rows = original(*args)
        taken.append(rows is not None)
        return rows

    monkeypatch.setattr(fs, "select_rows", spy)
    for template in ("Patient?identifier={MRN0}",
                     "Procedure?patient={P0}&_include=Procedure:patient"):
        assert requests.get(_url(side[0], template), timeout=60).status_code == 200
    # the Patient page (its total from the page), the Procedure page and its include
    assert taken == [True, True, True]


@pytest.mark.parametrize("template", QUERIES + MORE)
def test_the_audited_patients_are_those_of_the_bodies(template: str, app: Any,
                                                      side: tuple[Side, Run]) -> None:
    rtype, _, query = template.partition("?")
    args = [(k, side[0].fill(urllib.parse.unquote(v)))
            for k, v in (p.split("=", 1) for p in query.split("&") if p)]
    try:
        parsed = parse_search(rtype, args, side[0].base)
    except Exception:  # refused: nothing read, nothing audited
        return
    store = app.extensions["fhir_iastm"].store
    result = store.search(parsed.query)
    found = [*result.matches, *result.included]
    if store.engine.dialect.name == "sqlite":  # JSONB answers bodies decoded, without a head
        assert all(r.head is not None and r.decoded is None for r in found)
    audited = concerned(found)
    assert audited == patient_references(r.body for r in found)


# --- the text-only splice and the head, on any body ---------------------------------------------

#: text with JSON's special characters (no lone surrogates: a store cannot hold them)
_TEXT = st.text(alphabet=st.sampled_from('ab"\\,:{}[]é\u2028\n /|')
                | st.characters(exclude_categories=["Cs"]), max_size=12)
_LEAF = (st.none() | st.booleans() | st.integers()
         | st.floats(allow_nan=False, allow_infinity=False) | _TEXT)
_VALUE = st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["id", "meta", "resourceType", "reference", "x", "subject"]) | _TEXT,
    inner, max_size=3), max_leaves=8)
_REF = st.one_of(_VALUE, st.fixed_dictionaries({"reference": st.sampled_from(
    ["Patient/p-1", "Group/g", "http://x/fhir/Patient/p.2/_history/3", "Patient/", ""])
    | _VALUE}))


@st.composite
def _bodies(draw: st.DrawFn, rtype: str = "Procedure", rid: str = "abc-1") -> dict[str, Any]:
    """Bodies mostly in the stored layout (resourceType, meta, …, id last: of ``rtype`` and
    ``rid``), with tricky text and now and then another layout."""
    stored = draw(st.integers(0, 3)) > 0
    body: dict[str, Any] = {"resourceType": rtype if stored else draw(
        st.sampled_from(["Procedure", "Patient", "X"]))}
    if stored or draw(st.booleans()):
        body["meta"] = draw(st.dictionaries(_TEXT, _VALUE, max_size=2) if stored else _VALUE)
    for key in draw(st.lists(st.sampled_from(["subject", "patient", "text", "note", "meta"])
                             | _TEXT, max_size=4)):
        if key not in ("meta", "resourceType", "id") or not stored:
            body[key] = draw(_REF if key in ("subject", "patient") else _VALUE)
    if stored or draw(st.booleans()):
        body["id"] = rid if stored else draw(st.sampled_from(["abc-1", "p-1", "other"]) | _TEXT)
    return body


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from(["Procedure", "Patient"]), st.sampled_from(["abc-1", "p-1"]))
def test_the_text_only_splice_is_with_meta_encoded(data: st.DataObject, rtype: str,
                                                   rid: str) -> None:
    body = data.draw(_bodies(rtype, rid))
    text = compact_json(body)
    lazy = StoredResource(7, rtype, rid, 3, "2025-01-02T03:04:05.000006", False, None, text)
    decoded = StoredResource(7, rtype, rid, 3, "2025-01-02T03:04:05.000006", False, body)
    try:
        want = json.dumps(with_meta(decoded), separators=(",", ":"), ensure_ascii=False)
    except TypeError:  # a meta that is not an object: both ways refuse it
        with pytest.raises(TypeError):
            resource_json(lazy)
        return
    assert resource_json(lazy) == want
    if bundle_module._text_only(lazy) is not None:
        assert lazy.decoded is None  # only meta was decoded


@settings(max_examples=400, deadline=None)
@given(_bodies())
def test_the_head_gives_the_audited_patients_of_the_body(body: dict[str, Any]) -> None:
    text = compact_json(body)
    with sqlite3.connect(":memory:") as conn:
        (head,) = conn.execute(f"SELECT json_extract(?, {', '.join('?' * len(fs._HEAD))})",
                               (text, *fs._HEAD)).fetchone()
    stored = StoredResource(1, "Procedure", "x", 1, "2025-01-02T03:04:05", False, None, text,
                            head)
    try:
        want = patient_references([body])
    except TypeError:  # a reference that is not a string: both ways fail alike
        with pytest.raises(TypeError):
            concerned([stored])
        return
    assert concerned([stored]) == want
