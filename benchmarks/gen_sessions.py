"""Many valid session records, fast: JSON Lines on stdout for ``fhir-iastm import``.

    .venv/bin/python benchmarks/gen_sessions.py N [--run ID] [--per-patient 10] [--clinics 20]
                                                 [--therapists 200] [--start 0] [--check 1000]

Records are the completed and cancelled good examples (``tests/data/examples/good-0[1-68]``)
with their identities and dates rewritten: session ``i`` belongs to patient ``i // per_patient``
(``MRN-<run>-<patient>``, demographics fixed per patient), the patient to clinic
``patient % clinics`` (``BC<run>-<clinic>``), the session to one of ``therapists`` NPIs; a
patient's sessions are a week apart, patients spread over 2025-07..2026-11, each record keeps its
example's clock times, offsets and the day distances between its own date-times. About 10
resources per session (Procedure, adjunct Procedures, Observations, Conditions, Encounter, plus
the shared Patient / Practitioner / Organization). ``--check K`` validates every K-th record with
``records.load_record`` (0: none) and stops at the first invalid one.

``records(n, ...)`` is the same generator for other benchmarks (fresh records for POSTs).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.strategies import npi_with_check_digit  # noqa: E402 — the repo's Luhn NPI helper

TEMPLATES = ("good-01", "good-02", "good-03", "good-04", "good-05", "good-06", "good-08")
FAMILIES = ("Alvarez", "Nguyen", "O'Brien", "Kowalski", "Okafor", "Schmidt", "Haddad", "Tanaka",
            "Moreau", "Silva", "Ivanova", "Mensah", "Larsen", "Rossi", "Cohen", "Dubois")
GIVEN = ("Maria", "Luis", "Anna", "Sean", "Thi", "José", "Amara", "Kenji", "Lena", "Omar")
GENDERS = ("female", "male", "female", "male", "other", "unknown")
FIRST_DAY = date(2025, 7, 1)
SPREAD_DAYS = 420
_DATE = re.compile(r'"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2})')
_EXAMPLES = ROOT / "tests/data/examples"


@cache
def _template(name: str) -> tuple[dict[str, Any], list[int]]:
    """An example with placeholders for its dates (``@D<k>@``: session day + k days)."""
    path = next(_EXAMPLES.glob(f"{name}-*.json"))
    data = json.loads(path.read_text(encoding="utf-8"))
    start = date.fromisoformat(data["session"]["start"][:10])
    text = json.dumps(data, ensure_ascii=False)
    deltas: set[int] = set()

    def mark(m: re.Match[str]) -> str:
        k = (date.fromisoformat(m.group(1)) - start).days
        deltas.add(k)
        return f'"@D{k}@{m.group(2)}'

    return json.loads(_DATE.sub(mark, text)), sorted(deltas)


def _npis(count: int, seed: int) -> list[str]:
    return [npi_with_check_digit(f"{(seed * 7919 + i * 104729) % 9 * 10**8 + 10**8 + i:09d}")
            for i in range(count)]


def records(n: int, run: str, *, start: int = 0, per_patient: int = 10, clinics: int = 20,
            therapists: int = 200) -> Iterator[dict[str, Any]]:
    """Records ``start .. start+n-1`` of run ``run`` (the same index gives the same record)."""
    clinic_npis = _npis(clinics, 1)
    therapist_npis = _npis(therapists, 2)
    for i in range(start, start + n):
        patient = i // per_patient
        clinic = patient % clinics
        name = TEMPLATES[i % len(TEMPLATES)]
        template, deltas = _template(name)
        day = FIRST_DAY + timedelta(days=(patient * 37) % SPREAD_DAYS + (i % per_patient) * 7)
        text = json.dumps(template, ensure_ascii=False)
        for k in deltas:
            text = text.replace(f"@D{k}@", (day + timedelta(days=k)).isoformat())
        record = json.loads(text)
        record["session_id"] = f"BS-{run}-{i:07d}"
        record["clinic"].update(clinic_id=f"BC{run}-{clinic:03d}", npi=clinic_npis[clinic],
                                name=f"Clinic {clinic:03d} Physical Therapy")
        record["patient"] = {
            "mrn": mrn(run, patient),
            "family_name": FAMILIES[patient % len(FAMILIES)],
            "given_names": [GIVEN[patient % len(GIVEN)]],
            "birth_date": (date(1940, 1, 1) + timedelta(days=(patient * 113) % 25000)).isoformat(),
            "gender": GENDERS[patient % len(GENDERS)],
        }
        record["therapist"]["npi"] = therapist_npis[(i * 7) % therapists]
        for k, condition in enumerate(record.get("conditions") or []):
            condition["condition_id"] = f"DX-{patient}-{k}"
        yield record


def mrn(run: str, patient: int) -> str:
    """Patient ``patient``'s MRN in run ``run``."""
    return f"MRN-{run}-{patient:06d}"


def mrn_system(run: str, patient: int, clinics: int = 20) -> str:
    """The identifier system of that MRN (its clinic's)."""
    return f"https://iastm.example.org/fhir/sid/clinic/BC{run}-{patient % clinics:03d}/mrn"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of sessions")
    parser.add_argument("--run", default="R1", help="identity prefix (unique per store)")
    parser.add_argument("--start", type=int, default=0, help="first session index")
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--clinics", type=int, default=20)
    parser.add_argument("--therapists", type=int, default=200)
    parser.add_argument("--check", type=int, default=1000, help="validate every K-th (0: none)")
    args = parser.parse_args(argv)
    from fhir_iastm.records import load_record
    out = sys.stdout
    for k, record in enumerate(records(args.n, args.run, start=args.start,
                                       per_patient=args.per_patient, clinics=args.clinics,
                                       therapists=args.therapists)):
        if args.check and k % args.check == 0:
            load_record(record)
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
