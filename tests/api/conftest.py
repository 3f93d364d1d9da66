"""Fixtures of the HTTP tests: apps on the test's store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fhir_iastm.api import create_app
from fhir_iastm.config import Settings
from fhir_iastm.storage import Store


@pytest.fixture
def app_for(store: Store) -> Iterator[Callable[..., Any]]:
    """``app_for(**environ)``: an app on the test's store with these ``IASTM_*`` variables (and no
    others); its connections are closed afterwards."""
    apps: list[Any] = []

    def make(**environ: str) -> Any:
        url = store.engine.url.render_as_string(hide_password=False)
        apps.append(create_app(Settings.from_env({"IASTM_DATABASE_URL": url, **environ})))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["fhir_iastm"].store.close()


@pytest.fixture
def make_bulk(app_for: Callable[..., Any], tmp_path: Any) -> Callable[..., Any]:
    """An app with SMART on, exports under tmp_path, polling unthrottled and the examples stored;
    a :class:`tests.api.bulk_support.Bulk` client on it (``scope``; more settings as keywords)."""
    from tests.api.bulk_support import Bulk, load

    def build(scope: str = "system/*.rs", **environ: str) -> Bulk:
        settings = {"IASTM_SMART_AUTH": "true", "IASTM_API_TOKENS": "dev:read+write",
                    "IASTM_EXPORT_DIR": str(tmp_path / "exports"),
                    "IASTM_EXPORT_POLL_SECONDS": "0", **environ}
        b = Bulk(app_for(**settings), scope=scope)
        load(b.client)
        return b
    return build
