"""The live facade shared by the real-client tests (``test_fhirpy``, ``test_fhirclient``).

``served``: (FHIR base URL, run) of an app on 127.0.0.1 holding one run's records, one per test
module; ``run`` and ``expected`` (the run's records mapped, not read from the facade) follow from
it. A module that needs another run (``test_oracle_hapi``) defines its own ``run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.facade.support import Run, expected_resources, live_facade, new_run


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Run]]:
    """(FHIR base URL, run) of a live app holding the run's records."""
    run = new_run()
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with live_facade(folder, run) as base:
        yield base, run


@pytest.fixture(scope="module")
def run(served: tuple[str, Run]) -> Run:
    """The run whose records the live app holds."""
    return served[1]


@pytest.fixture(scope="module")
def expected(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The run's records mapped to FHIR resources, by type."""
    return expected_resources(run)
