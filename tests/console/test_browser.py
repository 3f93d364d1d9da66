"""The console in a real browser: Debian's chromium driven by Playwright over a live server on
127.0.0.1 with seeded records. DOM assertions, a retry clicked, a form without its CSRF token
refused, screenshots of the four pages (tests/artifacts/) and axe-core in each page.

chromium comes from Debian (scripts/test installs it); Playwright never downloads a browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from fhir_iastm.api import create_app
from fhir_iastm.config import Settings
from tests.console.seed import seed

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
AXE = Path(__file__).parent / "vendor/axe.min.js"
TOKENS = "rw-token:read+write,ro-token:read"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("console") / "console.db"
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{db}",
                                        "IASTM_API_TOKENS": TOKENS}))
    state = app.extensions["fhir_iastm"]
    seed(state.store, state.mapping)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)
    state.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install -y chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


def logged_in(browser: Browser, server: str, token: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/console/sessions")
    assert page.url.startswith(f"{server}/console/login")
    page.fill("#token", token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{server}/console/sessions")
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def serious_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text("utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_sessions_page(browser: Browser, server: str) -> None:
    page = logged_in(browser, server, "ro-token")
    rows = page.locator("#sessions tbody tr[data-session]")
    assert rows.count() == 10
    assert rows.first.get_attribute("data-session") == "C14-MRN-C14-1-007"
    assert page.locator("#sessions tr[data-sync=dead-letter]").count() == 2
    page.select_option("#f-sync", "pushed")
    page.fill("#f-patient", "MRN-C14-1")
    page.click(".filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#sessions tbody tr[data-session]").count() == 2
    assert "sync=pushed" in page.url
    page.goto(f"{server}/console/sessions")
    shot(page, "sessions")
    assert serious_violations(page) == []


def test_course_page(browser: Browser, server: str) -> None:
    page = logged_in(browser, server, "ro-token")
    page.goto(f"{server}/console/patients/MRN-C14-1/course")
    assert page.locator("#progress-text").inner_text() == "session 5 of 8 planned"
    assert page.locator("#exceeded").count() == 0
    chart = page.locator("svg#pain-chart")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("g.dumbbell").count() == 5
    assert chart.locator("g.cancelled").count() == 1
    assert chart.locator("g.effect").count() == 3
    assert chart.locator(".baseline").count() == 1
    assert "Pain before treatment fell from 8" in (chart.locator("desc").text_content() or "")
    assert page.locator("#pain-table tbody tr").count() == 6  # 5 done + 1 cancelled
    assert page.locator("#effects").inner_text() == "bruising 3 of 5 sessions, all mild"
    lefs = page.locator("figure[data-instrument=LEFS]")
    assert lefs.locator("svg circle.pt").count() == 5
    assert "clinically important change reached" in lefs.locator(".badge").inner_text()
    assert lefs.locator("tbody td").count() == 5
    assert page.locator("figure[data-rom] svg circle.pt").count() == 5
    shot(page, "course")
    assert serious_violations(page) == []
    page.emulate_media(media="print")  # printable: no navigation or forms, the charts stay
    assert not page.locator("header.top").is_visible()
    assert chart.is_visible()
    shot(page, "course-print")


def test_session_page_retry_and_csrf(browser: Browser, server: str) -> None:
    page = logged_in(browser, server, "rw-token")
    page.goto(f"{server}/console/sessions/C14-MRN-C14-1-001")
    assert page.locator("#sync .state").first.inner_text() == "pushed"
    page.click("#retry")
    page.wait_for_load_state()
    assert "already on the FHIR server; nothing was pushed again" in \
        page.locator(".flash").inner_text()
    assert page.locator("#history tbody tr").count() == 1  # no second entry
    page.goto(f"{server}/console/sessions/C14-MRN-C14-1-004")
    assert page.locator("#sync .state").first.inner_text() == "dead-letter"
    assert "treatment_sites[0]" in page.locator("#server-issues").inner_text()
    assert page.locator(".resource .narrative").count() == 12
    condition = page.locator(".resource[data-type=Condition]").inner_text()
    assert "Plantar fasciitis, right foot" in condition
    shot(page, "session")
    assert serious_violations(page) == []
    page.click("#retry")
    page.wait_for_load_state()
    assert page.locator("#sync .state").first.inner_text() == "queued"
    assert "is queued" in page.locator(".flash").inner_text()
    # the same form without its CSRF token is refused
    page.evaluate("document.querySelector('#sync form input[name=csrf_token]').remove()")
    page.click("#retry")
    page.wait_for_load_state()
    assert "CSRF token is missing or not valid" in page.locator(".error-text").inner_text()


def test_outbox_page_and_resolve(browser: Browser, server: str) -> None:
    page = logged_in(browser, server, "rw-token")
    page.goto(f"{server}/console/outbox")
    assert page.locator("#counts .tile").count() == 4
    assert page.locator("#counts [data-state=dead-letter] .n").inner_text() == "2"
    row = page.locator("#dead-letters tr[data-session='O3-MRN-C14-3-001']")
    assert "Procedure.bodySite: unknown code" in row.inner_text()
    assert row.locator(".record-field").inner_text() == "treatment_sites[0]"
    shot(page, "outbox")
    assert serious_violations(page) == []
    row.locator("button", has_text="Mark resolved").click()
    page.wait_for_load_state()
    assert "marked resolved" in page.locator(".flash").inner_text()
    assert page.locator("#dead-letters tr[data-session]").count() == 0
    assert page.locator("#sync-counts td[data-state=resolved]").inner_text() == "1"


def test_read_only_user_gets_403_and_unknown_ids_404(browser: Browser, server: str) -> None:
    page = logged_in(browser, server, "ro-token")
    answer = page.goto(f"{server}/console/sessions/NOPE-1")
    assert answer is not None
    assert answer.status == 404
    assert "404 · Not Found" in page.locator("h1").inner_text()
    page.goto(f"{server}/console/sessions/C14-MRN-C14-1-002")
    page.click("#retry")
    page.wait_for_load_state()
    assert "403 · Forbidden" in page.locator("h1").inner_text()
