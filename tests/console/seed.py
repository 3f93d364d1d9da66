"""Records of one patient's course of care, for the console's tests and benchmarks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parents[1] / "data/examples"
EXAMPLE = EXAMPLES / "good-03-plantar-fasciitis-hawkgrips-bruising.json"


def course_dicts(mrn: str = "MRN-C14-1", sessions: int = 8, *, planned: int = 8,
                 plan: str | None = "POC-1", prefix: str = "C14",
                 cancelled: tuple[int, ...] = (), in_error: tuple[int, ...] = (),
                 bruising: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """``sessions`` records, numbered 1.., pain pre 8 falling by 1 every two sessions, post 2
    below pre, LEFS 40 + 3 per session, ankle dorsiflexion 10 + 1 per session."""
    base = json.loads(EXAMPLE.read_text("utf-8"))
    out = []
    for n in range(1, sessions + 1):
        rec = copy.deepcopy(base)
        rec["schema_version"] = "1.0"
        rec["session_id"] = f"{prefix}-{mrn}-{n:03d}"
        rec["record_version"] = 1
        rec["patient"]["mrn"] = mrn
        day = f"2025-{1 + (n - 1) // 28:02d}-{1 + (n - 1) % 28:02d}"
        rec["session"] = {"start": f"{day}T08:15:00-05:00", "end": f"{day}T08:45:00-05:00",
                          "duration_min": 30, "session_number": n, "planned_sessions": planned}
        if plan is not None:
            rec["session"]["plan_of_care_id"] = plan
        rec["recorded_at"] = f"{day}T09:10:00-05:00"
        rec.pop("last_modified", None)
        pre = 8 - (n - 1) // 2
        rec["pain"] = {"scale": "NRS-11", "pre": max(pre, 0), "post": max(pre - 2, 0)}
        rec["outcome_measures"] = [{"instrument": "LEFS", "score": min(40 + 3 * (n - 1), 80)}]
        rec["rom"] = [{"joint": "ankle", "motion": "dorsiflexion", "laterality": "right",
                       "degrees": 10 + (n - 1), "mode": "active", "method": "goniometer",
                       "timing": "pre"}]
        rec["adverse_effects"] = (
            [{"type": "bruising", "severity": "mild", "site_index": 0, "expected": True}]
            if n in bruising else [])
        if not rec["adverse_effects"]:
            del rec["adverse_effects"]
        rec["status"] = "completed"
        if n in cancelled:
            rec["status"] = "cancelled"
            rec["status_reason"] = "Patient cancelled same day."
            for key in ("pain", "rom", "outcome_measures", "instruments", "adverse_effects",
                        "adjunct_therapies", "notes"):
                rec.pop(key, None)
            for key in ("end", "duration_min"):
                rec["session"].pop(key)
        if n in in_error:
            rec["status"] = "entered-in-error"
            rec["status_reason"] = "Recorded for the wrong patient."
        out.append(rec)
    return out


OO_REJECTED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing",
               "diagnostics": "Procedure.bodySite: unknown code",
               "expression": ["Bundle.entry[5].resource.bodySite[0]"]}],
}


def seed(store: Any, mapping: Any) -> dict[str, list[str]]:
    """A course of 8 planned sessions for MRN-C14-1 (6 done, session 3 cancelled, session 5
    entered in error, bruising at 1, 2 and 4), two other patients' sessions; the first two
    sessions pushed, the fourth and O3-MRN-C14-3-001 dead letters. Returns the session ids by
    role."""
    from fhir_iastm.service import save_record
    from fhir_iastm.sync.outcome import PushOutcome

    course = course_dicts("MRN-C14-1", 7, planned=8, cancelled=(3,), in_error=(5,),
                          bruising=(1, 2, 4))
    others = course_dicts("MRN-C14-2", 2, prefix="O2") + course_dicts("MRN-C14-3", 1, prefix="O3")
    for raw in course + others:
        save_record(store, raw, mapping, actor="seed")
    ids = [raw["session_id"] for raw in course]
    pushed, dead = ids[:2], (ids[3], others[-1]["session_id"])
    while (item := store.claim("seed")) is not None:
        if item.session_id in pushed:
            store.complete(item, PushOutcome("pushed", item.session_id, 1,
                                             fhir_ids={"x": f"Procedure/{item.session_id}"}))
        elif item.session_id in dead:
            store.dead_letter(item, PushOutcome("dead-letter", item.session_id, 1,
                                                operation_outcome=OO_REJECTED,
                                                error_code="E_PUSH_REJECTED"))
        else:
            store.retry_later(item, 3600, PushOutcome("failed", item.session_id, 1))
    return {"course": ids, "pushed": pushed, "dead": list(dead),
            "others": [raw["session_id"] for raw in others]}
