"""Clinically important changes, with their published sources (docs/console.md#thresholds).

Pain (NRS 0-10): a reduction of 2 points or 30 % of the baseline (Farrar et al., Pain 2001).
Outcome measures: a change of at least ``points`` in the better direction. The points of each
instrument can be overridden by the ``IASTM_CONSOLE_MCID`` setting; instruments without a fixed
published value (docs/clinical.md#outcome-measures) get no badge unless the setting names one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

PAIN_POINTS = 2.0
PAIN_PERCENT = 30.0
PAIN_SOURCE = "Farrar et al., Pain 2001"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One instrument: its clinically important change, which direction is better, the source."""

    instrument: str
    points: float | None
    higher_is_better: bool
    source: str
    scale: tuple[float, float]


_CLINICAL = "docs/clinical.md#outcome-measures"
DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    t.instrument: t
    for t in (
        Threshold("LEFS", 9.0, True, "Binkley et al., Phys Ther 1999", (0, 80)),
        Threshold("PSFS", 2.0, True, "Abbott & Schmitt, JOSPT 2014", (0, 10)),
        Threshold("QuickDASH", 8.0, False, "Mintken et al., J Shoulder Elbow Surg 2009",
                  (0, 100)),
        Threshold("PRTEE", 9.0, False, f"MIC of the PRTEE clinimetric reviews ({_CLINICAL})",
                  (0, 100)),
        Threshold("VISA-P", 13.0, True, f"as quoted in the VISA-P literature ({_CLINICAL})",
                  (0, 100)),
        Threshold("FAAM-ADL", 8.0, True, "Martin et al., Foot Ankle Int 2005", (0, 100)),
        Threshold("FAAM-Sports", 9.0, True, "Martin et al., Foot Ankle Int 2005", (0, 100)),
        Threshold("KOOS-JR", None, True, f"anchor-dependent ({_CLINICAL})", (0, 100)),
        Threshold("HOOS-JR", None, True, f"anchor-dependent ({_CLINICAL})", (0, 100)),
    )
}


def thresholds(overrides: Mapping[str, float]) -> dict[str, Threshold]:
    """The default thresholds with the points of ``overrides`` (instrument -> points) applied;
    an overridden value's source says it is the clinic's setting."""
    out = dict(DEFAULT_THRESHOLDS)
    for instrument, points in overrides.items():
        base = out.get(instrument)
        if base is None:
            raise ValueError(f"unknown outcome instrument {instrument!r}")
        out[instrument] = replace(base, points=points, source="clinic setting IASTM_CONSOLE_MCID")
    return out


def pain_important(baseline: float, change: float) -> bool:
    """A pain reduction (``change`` < 0) of 2 points or 30 % of ``baseline`` (Farrar 2001)."""
    drop = -change
    if drop <= 0:
        return False
    return drop >= PAIN_POINTS or (baseline > 0 and drop * 100.0 / baseline >= PAIN_PERCENT)


__all__ = ["DEFAULT_THRESHOLDS", "PAIN_PERCENT", "PAIN_POINTS", "PAIN_SOURCE", "Threshold",
           "pain_important", "thresholds"]
