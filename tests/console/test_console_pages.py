"""The console's pages over Flask's test client: login, scopes, CSRF, 404s, retry, resolve.
(tests/console/test_browser.py drives the same pages in a real browser.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.api import create_app
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError
from tests.console.seed import seed

TOKENS = "rw-token:read+write,ro-token:read"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    settings = Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
                                  "IASTM_API_TOKENS": TOKENS,
                                  "IASTM_CONSOLE_SECRET": "test-secret"})
    application = create_app(settings)
    state = application.extensions["fhir_iastm"]
    application.config["SEED"] = seed(state.store, state.mapping)
    yield application
    state.store.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: Any, token: str) -> None:
    page = client.get("/console/login")
    answer = client.post("/console/login", data={"token": token, "csrf_token": csrf_of(
        page.get_data(as_text=True)), "next": "/console/sessions"})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def test_pages_need_a_login(app: Any) -> None:
    client = app.test_client()
    answer = client.get("/console/sessions?patient=MRN-C14-1")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login?next=/console/sessions")
    page = client.get("/console/login").get_data(as_text=True)
    bad = client.post("/console/login", data={"token": "nope", "csrf_token": csrf_of(page)})
    assert bad.status_code == 401
    assert "This token is not accepted." in bad.get_data(as_text=True)


def test_login_without_csrf_is_refused(app: Any) -> None:
    client = app.test_client()
    answer = client.post("/console/login", data={"token": "rw-token"})
    assert answer.status_code == 400
    assert "CSRF token is missing or not valid" in answer.get_data(as_text=True)


def test_sessions_list_with_filters(app: Any) -> None:
    client = app.test_client()
    login(client, "ro-token")
    html = client.get("/console/sessions").get_data(as_text=True)
    rows = re.findall(r'<tr data-session="([^"]+)" data-sync="([^"]*)"', html)
    assert len(rows) == 10
    assert rows[0][0] == "C14-MRN-C14-1-007"  # newest first
    assert ("C14-MRN-C14-1-004", "dead-letter") in rows
    assert ("O3-MRN-C14-3-001", "dead-letter") in rows
    mine = client.get("/console/sessions?patient=MRN-C14-1&sync=pushed").get_data(as_text=True)
    assert re.findall(r'<tr data-session="([^"]+)"', mine) == [
        "C14-MRN-C14-1-002", "C14-MRN-C14-1-001"]
    assert "7 of 8" in html
    bad = client.get("/console/sessions?from=yesterday")
    assert bad.status_code == 400
    assert "from: a date YYYY-MM-DD" in bad.get_data(as_text=True)


def test_unknown_ids_are_404_pages(app: Any) -> None:
    client = app.test_client()
    login(client, "ro-token")
    for url in ("/console/sessions/NOPE-1", "/console/patients/MRN-NOPE/course",
                "/console/patients/MRN-C14-1/course?plan=POC-9"):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert answer.mimetype == "text/html"
        assert "404 · Not Found" in answer.get_data(as_text=True)


def test_read_only_login_gets_403_on_retry(app: Any) -> None:
    client = app.test_client()
    login(client, "ro-token")
    page = client.get("/console/sessions/C14-MRN-C14-1-004").get_data(as_text=True)
    answer = client.post("/console/sessions/C14-MRN-C14-1-004/retry",
                         data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 403
    assert "lacks the &#39;write&#39; scope" in answer.get_data(as_text=True)
    assert app.extensions["fhir_iastm"].store.get_sync("C14-MRN-C14-1-004").state == \
        "dead-letter"


def test_retry_of_a_pushed_session_pushes_nothing(app: Any) -> None:
    client = app.test_client()
    login(client, "rw-token")
    store = app.extensions["fhir_iastm"].store
    before = store.outbox_counts()
    page = client.get("/console/sessions/C14-MRN-C14-1-001").get_data(as_text=True)
    answer = client.post("/console/sessions/C14-MRN-C14-1-001/retry",
                         data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert "is already on the FHIR server; nothing was pushed again" in \
        answer.get_data(as_text=True)
    assert store.outbox_counts() == before
    assert store.get_sync("C14-MRN-C14-1-001").state == "pushed"


def test_retry_and_resolve_dead_letters(app: Any) -> None:
    client = app.test_client()
    login(client, "rw-token")
    store = app.extensions["fhir_iastm"].store
    html = client.get("/console/outbox").get_data(as_text=True)
    assert 'data-session="C14-MRN-C14-1-004"' in html
    assert "Procedure.bodySite: unknown code" in html
    answer = client.post("/console/outbox/retry-kind",
                         data={"kind": "E_PUSH_REJECTED", "csrf_token": csrf_of(html)},
                         follow_redirects=True)
    assert "2 dead letter(s) with E_PUSH_REJECTED queued again" in answer.get_data(as_text=True)
    assert store.get_sync("C14-MRN-C14-1-004").state == "queued"
    assert client.post("/console/outbox/resolve/C14-MRN-C14-1-004",
                       data={"csrf_token": csrf_of(html)},
                       follow_redirects=True).status_code == 200
    assert store.get_sync("C14-MRN-C14-1-004").state == "queued"  # not a dead letter now


def test_session_detail_shows_narratives_and_server_issue_field(app: Any) -> None:
    client = app.test_client()
    login(client, "ro-token")
    html = client.get("/console/sessions/C14-MRN-C14-1-004").get_data(as_text=True)
    assert '<div xmlns="http://www.w3.org/1999/xhtml"><ul><li><b>Procedure</b>' in html
    assert "treatment_sites[0]" in html  # the server's issue traced to the record field
    assert 'id="no-issues"' in html


def test_course_page(app: Any) -> None:
    client = app.test_client()
    login(client, "ro-token")
    html = client.get("/console/patients/MRN-C14-1/course").get_data(as_text=True)
    assert "session 5 of 8 planned" in html
    assert html.count('class="dumbbell"') == 5
    assert html.count('class="cancelled"') == 1
    assert "bruising 3 of 5 sessions, all mild" in html
    assert "Entered in error, not counted: C14-MRN-C14-1-005" in html


def test_bad_thresholds_setting_stops_start_up(tmp_path: Path) -> None:
    settings = Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                                  "IASTM_CONSOLE_MCID": "NOPE:3"})
    with pytest.raises(ConfigError, match="IASTM_CONSOLE_MCID is not accepted"):
        create_app(settings)
