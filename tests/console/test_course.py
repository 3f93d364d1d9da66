"""The course-of-care numbers (fhir_iastm.console.course): counting, baseline, thresholds."""

from __future__ import annotations

import pytest

from fhir_iastm.console.course import course_view, plans_of
from fhir_iastm.console.thresholds import DEFAULT_THRESHOLDS, pain_important, thresholds
from fhir_iastm.records import load_record
from fhir_iastm.records.model import SessionRecord
from tests.console.seed import course_dicts


def records(**kwargs: object) -> list[SessionRecord]:
    return [load_record(d) for d in course_dicts(**kwargs)]  # type: ignore[arg-type]


def test_counts_completed_sessions_against_the_plan() -> None:
    view = course_view(records(sessions=6, planned=8), "POC-1")
    assert (view.done, view.planned, view.exceeded) == (6, 8, False)
    assert [p.number for p in view.sessions] == [1, 2, 3, 4, 5, 6]


def test_plan_exceeded_when_more_sessions_than_planned() -> None:
    view = course_view(records(sessions=10, planned=8), "POC-1")
    assert view.done == 10
    assert view.exceeded


def test_cancelled_kept_but_not_counted_and_in_error_dropped() -> None:
    view = course_view(records(sessions=6, cancelled=(3,), in_error=(5,)), "POC-1")
    assert view.done == 4
    assert [p.number for p in view.sessions] == [1, 2, 3, 4, 6]
    assert [p.number for p in view.cancelled] == [3]
    assert view.cancelled[0].pain_pre is None
    assert view.entered_in_error == ("C14-MRN-C14-1-005",)
    assert [n for n, _ in view.measures[0].points] == [1, 2, 4, 6]


def test_change_from_baseline_uses_first_completed_pre_pain() -> None:
    view = course_view(records(sessions=6, cancelled=(1,)), "POC-1")
    # session 1 cancelled: the baseline is session 2's pre-pain (8)
    assert view.pain.baseline == 8
    assert [p.change_from_baseline for p in view.sessions] == [None, 0, -1, -1, -2, -2]
    assert view.pain.latest == 6
    assert view.pain.change == -2
    assert view.pain.percent == pytest.approx(-25.0)
    assert view.pain.important  # 2 points


def test_pain_change_below_threshold_is_not_important() -> None:
    view = course_view(records(sessions=2), "POC-1")
    assert view.pain.change == 0
    assert not view.pain.important


@pytest.mark.parametrize(("baseline", "change", "important"), [
    (8, -2, True),      # 2 points
    (3, -1, True),      # 33 %
    (10, -1, False),    # 10 %, 1 point
    (4, 1, False),      # worse
    (0, 0, False),
])
def test_farrar_threshold(baseline: int, change: int, important: bool) -> None:
    assert pain_important(baseline, change) is important


def test_outcome_measure_reaches_its_threshold() -> None:
    view = course_view(records(sessions=4), "POC-1")
    lefs = view.measures[0]
    assert lefs.key == "LEFS"
    assert lefs.change == 9.0
    assert lefs.important  # LEFS +9, Binkley 1999
    assert not course_view(records(sessions=3), "POC-1").measures[0].important  # +6


def test_lower_is_better_measures_improve_downwards() -> None:
    dicts = course_dicts(sessions=2)
    dicts[0]["outcome_measures"] = [{"instrument": "QuickDASH", "score": 50}]
    dicts[1]["outcome_measures"] = [{"instrument": "QuickDASH", "score": 40}]
    view = course_view([load_record(d) for d in dicts], "POC-1")
    quick = view.measures[0]
    assert (quick.change, quick.improvement, quick.important) == (-10.0, 10.0, True)


def test_thresholds_overridden_by_setting() -> None:
    table = thresholds({"LEFS": 12.0})
    assert table["LEFS"].points == 12.0
    assert not course_view(records(sessions=4), "POC-1", table=table).measures[0].important
    assert DEFAULT_THRESHOLDS["LEFS"].points == 9.0
    with pytest.raises(ValueError, match="unknown outcome instrument 'NOPE'"):
        thresholds({"NOPE": 1.0})


def test_measure_without_published_threshold_never_badged() -> None:
    dicts = course_dicts(sessions=2)
    for d, score in zip(dicts, (10, 90), strict=True):
        d["schema_version"] = "2.0"
        d["session"]["iastm_minutes"] = 15
        d["outcome_measures"] = [{"instrument": "KOOS-JR", "score": score}]
    view = course_view([load_record(d) for d in dicts], "POC-1")
    assert view.measures[0].improvement == 80.0
    assert not view.measures[0].important


def test_rom_series_per_measurement_key() -> None:
    view = course_view(records(sessions=3), "POC-1")
    assert [(s.key, s.points) for s in view.rom] == [
        ("ankle-dorsiflexion-right-active-pre", ((1, 10.0), (2, 11.0), (3, 12.0)))]


def test_adverse_effect_summary_text() -> None:
    view = course_view(records(sessions=6, bruising=(1, 3, 4)), "POC-1")
    assert [e.text for e in view.effects] == ["bruising 3 of 6 sessions, all mild"]
    dicts = course_dicts(sessions=2, bruising=(1, 2))
    dicts[1]["adverse_effects"][0]["severity"] = "moderate"
    mixed = course_view([load_record(d) for d in dicts], "POC-1")
    assert mixed.effects[0].text == "bruising 2 of 2 sessions (1 mild, 1 moderate)"


def test_only_the_named_plan_and_sync_states() -> None:
    mine = records(sessions=3)
    other = records(sessions=2, plan="POC-2", prefix="OTHER")
    sync = {mine[0].session_id: "pushed", mine[1].session_id: "dead-letter"}
    view = course_view(mine + other, "POC-1", sync=sync)
    assert view.done == 3
    assert [p.sync_state for p in view.sessions] == ["pushed", "dead-letter", None]
    assert plans_of(mine + other) == ["POC-1", "POC-2"]  # session 3 of POC-1 is the newest
    assert course_view(mine, "POC-9").latest is None


def test_planned_sessions_of_the_newest_counted_session() -> None:
    dicts = course_dicts(sessions=3, planned=8)
    dicts[2]["session"]["planned_sessions"] = 12  # the plan was extended
    assert course_view([load_record(d) for d in dicts], "POC-1").planned == 12


@pytest.mark.parametrize(("instrument", "change", "important"), [
    ("FAAM-ADL", 8, True), ("FAAM-ADL", 7, False),
    ("FAAM-Sports", 9, True), ("FAAM-Sports", 8, False),
])
def test_faam_thresholds_from_martin_2005(instrument: str, change: int, important: bool) -> None:
    dicts = course_dicts(sessions=2)
    for d, score in zip(dicts, (50, 50 + change), strict=True):
        d["schema_version"] = "2.0"
        d["session"]["iastm_minutes"] = 15
        d["outcome_measures"] = [{"instrument": instrument, "score": score}]
    view = course_view([load_record(d) for d in dicts], "POC-1")
    assert view.measures[0].improvement == change
    assert view.measures[0].important is important
