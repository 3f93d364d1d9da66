"""The SVG charts: well-formed XML, accessible, one mark per session / point / effect."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fhir_iastm.console.charts import pain_chart, series_chart
from fhir_iastm.console.course import course_view
from fhir_iastm.records import load_record
from tests.console.seed import course_dicts

NS = {"s": "http://www.w3.org/2000/svg"}


def view(**kwargs: object):  # type: ignore[no-untyped-def]
    return course_view([load_record(d) for d in course_dicts(**kwargs)], "POC-1")  # type: ignore[arg-type]


def classed(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def test_pain_chart_marks_each_session() -> None:
    root = ET.fromstring(pain_chart(view(sessions=6, cancelled=(3,), in_error=(5,),
                                         bruising=(1, 2))))
    assert root.get("role") == "img"
    assert root.find("s:title", NS).text == "Pain before and after each session"  # type: ignore[union-attr]
    assert [g.get("data-session") for g in classed(root, "dumbbell")] == ["1", "2", "4", "6"]
    assert [g.get("data-session") for g in classed(root, "cancelled")] == ["3"]
    effects = classed(root, "effect")
    assert len(effects) == 2
    assert {e.get("data-shape") for e in effects} == {"triangle"}
    assert len(classed(root, "baseline")) == 1
    assert classed(root, "baseline")[0].get("stroke-dasharray") == "6 4"
    assert len(classed(root, "mcid-band")) == 1
    labels = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("Farrar et al., Pain 2001" in t for t in labels)
    # the x axis runs through the planned 8 sessions
    x_ticks = [t.text for t in classed(root, "tick") if t.get("text-anchor") == "middle"]
    assert x_ticks == [str(n) for n in range(1, 9)]


def test_pain_desc_states_the_trend() -> None:
    root = ET.fromstring(pain_chart(view(sessions=6, cancelled=(1,))))
    desc = root.find("s:desc", NS).text or ""  # type: ignore[union-attr]
    assert desc.startswith("Pain before treatment fell from 8 at the first session to 6")
    assert "(-2 points, -25 %)" in desc
    assert "clinically important change reached" in desc
    assert "1 cancelled session(s)" in desc
    assert "Within sessions pain fell by 2.0 points on average" in desc


def test_pain_chart_without_pain() -> None:
    root = ET.fromstring(pain_chart(view(sessions=2, cancelled=(1, 2))))
    assert classed(root, "dumbbell") == []
    assert classed(root, "baseline") == []
    assert root.find("s:desc", NS).text == "No pain scores were recorded in this course of care."  # type: ignore[union-attr]


def test_small_multiple_points_direction_and_desc() -> None:
    v = view(sessions=4)
    root = ET.fromstring(series_chart(v.measures[0], 8, "m-lefs"))
    assert len(classed(root, "pt")) == 4
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "LEFS (↑ better)" in labels
    desc = root.find("s:desc", NS).text or ""  # type: ignore[union-attr]
    assert desc.startswith("LEFS went from 40 at session 1 to 49 at session 4 (+9).")
    assert "clinically important change of 9 reached (Binkley et al., Phys Ther 1999)" in desc


def test_rom_chart_has_its_own_scale() -> None:
    v = view(sessions=3)
    root = ET.fromstring(series_chart(v.rom[0], 8, "rom-0", "°"))
    ys = [float(c.get("cy") or 0) for c in classed(root, "pt")]
    assert len(ys) == 3
    assert ys[0] > ys[1] > ys[2]  # rising degrees drawn upwards
    assert "went from 10° at session 1 to 12° at session 3" in (root.find("s:desc", NS).text or "")  # type: ignore[union-attr]


def test_text_is_escaped() -> None:
    v = view(sessions=2)
    from dataclasses import replace
    odd = replace(v.rom[0], key="a<b&c")
    root = ET.fromstring(series_chart(odd, 2, "x"))
    assert root.find("s:title", NS).text == "a<b&c"  # type: ignore[union-attr]
