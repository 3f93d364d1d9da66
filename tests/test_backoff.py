"""The one backoff policy: exponential, capped, jitter within its share."""

from __future__ import annotations

import pytest

from fhir_iastm.backoff import Backoff


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    policy = Backoff(base=0.5, factor=2, cap=3, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_stays_within_its_share(draw: float) -> None:
    policy = Backoff(base=10, factor=2, cap=1000, jitter=0.1)
    assert 9.0 <= policy.delay(1, rng=lambda: draw) <= 11.0
    assert 18.0 <= policy.delay(2, rng=lambda: draw) <= 22.0


def test_the_push_conflict_wait_is_20_to_100_ms_doubling() -> None:
    from fhir_iastm.sync.push import CONFLICT_BACKOFF

    assert CONFLICT_BACKOFF.delay(1, rng=lambda: 0.0) == pytest.approx(0.02)
    assert CONFLICT_BACKOFF.delay(1, rng=lambda: 1.0) == pytest.approx(0.1)
    assert CONFLICT_BACKOFF.delay(3, rng=lambda: 0.0) == pytest.approx(0.08)


@pytest.mark.parametrize("bad", [{"base": -1}, {"factor": 0.5}, {"jitter": 1.5}, {"cap": -1}])
def test_nonsense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff needs"):
        Backoff(**bad)
