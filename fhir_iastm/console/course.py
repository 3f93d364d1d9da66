"""Records -> the course of care of one patient under one plan of care (docs/console.md#course).

Counting rules:

* a ``completed`` session counts: it is a point on every chart and "session n of N" counts it;
* a ``cancelled`` session does not count; it is kept (the pain chart draws a hollow tick);
* an ``entered-in-error`` session is no session at all: it is listed, never charted or counted.

The plan's size N is the ``planned_sessions`` of the newest counted session (the clinic may
extend a plan); the plan is exceeded when more sessions than N were done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fhir_iastm.console.thresholds import (
    DEFAULT_THRESHOLDS,
    Threshold,
    pain_important,
)
from fhir_iastm.records.model import SessionRecord

SEVERITY_ORDER = ("mild", "moderate", "severe")


@dataclass(frozen=True, slots=True)
class SessionPoint:
    """One session as the charts see it."""

    session_id: str
    number: int
    start: str
    status: str
    pain_pre: int | None
    pain_post: int | None
    #: pre-pain minus the baseline (None without a baseline or a pre-pain)
    change_from_baseline: int | None
    sync_state: str | None
    effects: tuple[tuple[str, str], ...]  # (type, severity)

    @property
    def counted(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True, slots=True)
class PainSummary:
    baseline: int | None
    latest: int | None
    change: int | None
    percent: float | None
    important: bool


@dataclass(frozen=True, slots=True)
class Series:
    """One outcome measure or one range of motion across sessions: (session number, value)."""

    key: str
    points: tuple[tuple[int, float], ...]
    threshold: Threshold | None = None

    @property
    def change(self) -> float | None:
        if len(self.points) < 2:
            return None
        return self.points[-1][1] - self.points[0][1]

    @property
    def improvement(self) -> float | None:
        """The change in the better direction (positive = better); None without a direction."""
        change = self.change
        if change is None or self.threshold is None:
            return None
        return change if self.threshold.higher_is_better else -change

    @property
    def important(self) -> bool:
        better = self.improvement
        points = self.threshold.points if self.threshold else None
        return better is not None and points is not None and better >= points


@dataclass(frozen=True, slots=True)
class EffectSummary:
    type: str
    sessions: int
    of: int
    severities: tuple[tuple[str, int], ...]  # (severity, sessions) in SEVERITY_ORDER

    @property
    def text(self) -> str:
        head = f"{self.type} {self.sessions} of {self.of} sessions"
        if len(self.severities) == 1:
            return f"{head}, all {self.severities[0][0]}"
        return head + " (" + ", ".join(f"{n} {sev}" for sev, n in self.severities) + ")"


@dataclass(frozen=True, slots=True)
class CourseView:
    plan_of_care_id: str | None
    latest: SessionRecord | None
    sessions: tuple[SessionPoint, ...]  # completed and cancelled, in session order
    entered_in_error: tuple[str, ...]  # session ids
    done: int
    planned: int | None
    pain: PainSummary
    measures: tuple[Series, ...]
    rom: tuple[Series, ...]
    effects: tuple[EffectSummary, ...]

    @property
    def exceeded(self) -> bool:
        return self.planned is not None and self.done > self.planned

    @property
    def cancelled(self) -> tuple[SessionPoint, ...]:
        return tuple(s for s in self.sessions if s.status == "cancelled")

    @property
    def counted(self) -> tuple[SessionPoint, ...]:
        return tuple(s for s in self.sessions if s.counted)


def _order(record: SessionRecord) -> tuple[int, str, str]:
    return (record.session.session_number, record.session.start, record.session_id)


def _point(record: SessionRecord, baseline: int | None, sync: Mapping[str, str]) -> SessionPoint:
    pain = record.pain
    pre = pain.pre if pain else None
    change = None if baseline is None or pre is None or record.status != "completed" \
        else pre - baseline
    return SessionPoint(
        session_id=record.session_id, number=record.session.session_number,
        start=record.session.start, status=record.status,
        pain_pre=pre, pain_post=pain.post if pain else None, change_from_baseline=change,
        sync_state=sync.get(record.session_id),
        effects=tuple((e.type, e.severity) for e in record.adverse_effects))


def _baseline(counted: list[SessionRecord]) -> int | None:
    for record in counted:
        if record.pain is not None and record.pain.pre is not None:
            return record.pain.pre
    return None


def pain_summary(points: Iterable[SessionPoint], baseline: int | None) -> PainSummary:
    """Baseline pre-pain against the newest counted session's pre-pain (the lasting change,
    not the immediate post-treatment relief)."""
    pres = [p.pain_pre for p in points if p.counted and p.pain_pre is not None]
    if baseline is None or len(pres) < 2:
        return PainSummary(baseline, pres[-1] if pres else None, None, None, False)
    latest = pres[-1]
    change = latest - baseline
    percent = change * 100.0 / baseline if baseline else None
    return PainSummary(baseline, latest, change, percent, pain_important(baseline, change))


def measure_series(counted: list[SessionRecord], table: Mapping[str, Threshold]
                   ) -> tuple[Series, ...]:
    """One series per outcome instrument, in the order they first appear."""
    found: dict[str, list[tuple[int, float]]] = {}
    for record in counted:
        for measure in record.outcome_measures:
            found.setdefault(measure.instrument, []).append(
                (record.session.session_number, float(measure.score)))
    return tuple(Series(name, tuple(points), table.get(name)) for name, points in found.items())


def rom_series(counted: list[SessionRecord]) -> tuple[Series, ...]:
    """One series per ROM key (joint-motion-side-mode-timing)."""
    found: dict[str, list[tuple[int, float]]] = {}
    for record in counted:
        for rom in record.rom:
            found.setdefault(rom.key, []).append(
                (record.session.session_number, float(rom.degrees)))
    return tuple(Series(key, tuple(points)) for key, points in found.items())


def effect_summaries(counted: list[SessionRecord]) -> tuple[EffectSummary, ...]:
    """Per effect type: in how many counted sessions, and each session's worst severity."""
    worst: dict[str, dict[str, str]] = {}
    for record in counted:
        for effect in record.adverse_effects:
            seen = worst.setdefault(effect.type, {})
            before = seen.get(record.session_id)
            if before is None or SEVERITY_ORDER.index(effect.severity) > \
                    SEVERITY_ORDER.index(before):
                seen[record.session_id] = effect.severity
    out = []
    for kind, by_session in worst.items():
        severities = tuple((sev, n) for sev in SEVERITY_ORDER
                           if (n := list(by_session.values()).count(sev)))
        out.append(EffectSummary(kind, len(by_session), len(counted), severities))
    return tuple(out)


def plans_of(records: Iterable[SessionRecord]) -> list[str | None]:
    """The plans of care of a patient's records, newest session's plan first."""
    ordered = sorted(records, key=lambda r: r.session.start, reverse=True)
    return list(dict.fromkeys(r.session.plan_of_care_id for r in ordered))


def course_view(records: Iterable[SessionRecord], plan_of_care_id: str | None, *,
                table: Mapping[str, Threshold] = DEFAULT_THRESHOLDS,
                sync: Mapping[str, str] | None = None) -> CourseView:
    """The course of care of one patient's ``records`` under ``plan_of_care_id`` (None: the
    sessions recorded without a plan); ``sync`` maps session ids to their sync state."""
    mine = sorted((r for r in records if r.session.plan_of_care_id == plan_of_care_id),
                  key=_order)
    shown = [r for r in mine if r.status != "entered-in-error"]
    counted = [r for r in shown if r.status == "completed"]
    baseline = _baseline(counted)
    points = tuple(_point(r, baseline, sync or {}) for r in shown)
    planned = next((r.session.planned_sessions for r in reversed(counted)
                    if r.session.planned_sessions is not None), None)
    return CourseView(
        plan_of_care_id=plan_of_care_id,
        latest=next(iter(reversed(counted or shown or mine)), None),
        sessions=points,
        entered_in_error=tuple(r.session_id for r in mine if r.status == "entered-in-error"),
        done=len(counted),
        planned=planned,
        pain=pain_summary(points, baseline),
        measures=measure_series(counted, table),
        rom=rom_series(counted),
        effects=effect_summaries(counted),
    )


__all__ = ["CourseView", "EffectSummary", "PainSummary", "SessionPoint", "Series",
           "course_view", "effect_summaries", "measure_series", "pain_summary", "plans_of",
           "rom_series"]
