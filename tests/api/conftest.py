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
