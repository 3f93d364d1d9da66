"""What each field of the internal record means — the ``description`` of every property of
the record's JSON Schema (``records.contract``) and of ``docs/record.md``.

Keyed by the object (the schema class name without ``Schema``) and the field. A test fails when a
field of the marshmallow schemas has no entry here, or an entry names no field. Rules that read
several fields (checked by ``records.cross_field``, not expressible per field) are stated here in
words: the JSON Schema alone accepts some records the service rejects.
"""

from __future__ import annotations

OBJECTS: dict[str, str] = {
    "SessionRecord": "One IASTM treatment session, as the clinic's software records it.",
    "Clinic": "The clinic (organisation) where the session took place.",
    "Address": "A postal address in the United States.",
    "Patient": "The patient treated.",
    "Therapist": "The physical therapist who gave the treatment.",
    "Session": "When the session took place and where it sits in the plan of care.",
    "Technique": "The IASTM technique (method or brand) used.",
    "Instrument": "An instrument used during the session.",
    "TreatmentSite": "A body site treated.",
    "Condition": "A diagnosis treated in this session (one per ICD-10-CM code).",
    "Pain": "Pain on the 0-10 numeric rating scale, before and after the session.",
    "RangeOfMotion": "One range-of-motion measurement.",
    "OutcomeMeasure": "The score of one patient-reported outcome instrument.",
    "PsfsItem": "One activity of the Patient-Specific Functional Scale.",
    "AdverseEffect": "An adverse effect of the treatment.",
    "AdjunctTherapy": "Another therapy given in the same visit.",
    "Billing": "Billing lines (not mapped to clinical FHIR resources).",
    "CptLine": "One CPT billing line.",
    "IastmParameters": "Schema 2.0: how the IASTM was given: strokes, pressure, tolerance "
                       "(docs/clinical.md#iastm-parameters).",
    "Screening": "Schema 2.0: the pre-treatment contraindication / precaution screening and "
                 "consent (docs/clinical.md#screening).",
}

FIELDS: dict[str, dict[str, str]] = {
    "SessionRecord": {
        "schema_version": "Version of this record contract: \"1.0\" or \"2.0\" "
                          "(docs/clinical.md#record-contract-version-2).",
        "session_id": "The clinic system's session key: stable, never reused; the basis of every "
                      "FHIR identifier the session produces.",
        "record_version": "1 for the first version, +1 on every amendment; a lower version than "
                          "the stored one is refused (E_STALE_VERSION).",
        "status": "completed, cancelled (the session did not take place) or entered-in-error "
                  "(the record was a mistake).",
        "status_reason": "Why the session was cancelled or entered in error; required when the "
                         "status is not completed.",
        "recorded_at": "When the note was signed (RFC 3339 date-time with a UTC offset).",
        "last_modified": "The source system's last change (audit only; not mapped).",
        "notes": "Free-text clinical note of the session.",
        "clinic": "The clinic.",
        "patient": "The patient.",
        "therapist": "The treating therapist.",
        "session": "Date, time and plan-of-care position of the session.",
        "technique": "The technique used.",
        "instruments": "The instruments used (optional).",
        "treatment_sites": "The body sites treated (at least one); adverse_effects[].site_index "
                           "points into this array, so its order matters.",
        "conditions": "The diagnoses treated (at least one; one entry per ICD-10-CM code, a "
                      "bilateral condition without a bilateral code is listed twice).",
        "pain": "Pain scores; pain.pre is required when the status is completed.",
        "rom": "Range-of-motion measurements, unique by joint, motion, laterality, mode and "
               "timing.",
        "outcome_measures": "Patient-reported outcome scores, one per instrument.",
        "adverse_effects": "Adverse effects observed (mild bruising and petechiae are common and "
                           "expected after IASTM).",
        "adjunct_therapies": "Stretching or strengthening given in the same visit, unique by "
                             "type.",
        "billing": "CPT billing lines.",
        "visit_kind": "Schema 2.0: evaluation, re-evaluation or treatment (Encounter.type).",
        "screening": "Schema 2.0: contraindication / precaution screening and consent "
                     "(an Observation part of the IASTM Procedure).",
        "iastm_parameters": "Schema 2.0: stroke types, pressure and tolerance (extensions of "
                            "the IASTM Procedure).",
    },
    "Clinic": {
        "clinic_id": "The clinic's identifier in the clinic system (letters, digits, . _ -).",
        "name": "The clinic's name.",
        "npi": "The clinic's type-2 (organisational) NPI: 10 digits with a valid Luhn check "
               "digit (prefix 80840).",
        "address": "The clinic's address.",
        "phone": "The clinic's phone number.",
    },
    "Address": {
        "line": "Street lines (at most 4).",
        "city": "City.",
        "state": "USPS two-letter state, district, territory or military code.",
        "postal_code": "ZIP code: 5 digits, optionally -4 more.",
    },
    "Patient": {
        "mrn": "The patient's medical record number at the clinic (never echoed in messages).",
        "family_name": "Family name.",
        "given_names": "Given names, at least one.",
        "birth_date": "Date of birth, YYYY-MM-DD.",
        "gender": "Administrative gender (FHIR administrative-gender).",
        "phone": "Phone number.",
        "email": "E-mail address.",
        "address": "Home address.",
    },
    "Therapist": {
        "npi": "The therapist's type-1 (individual) NPI: 10 digits with a valid Luhn check digit.",
        "family_name": "Family name.",
        "given_names": "Given names, at least one.",
        "credentials": "Credentials after the name, e.g. PT, DPT, OCS.",
        "license_state": "USPS code of the state that issued the licence.",
        "license_number": "The state licence number.",
    },
    "Session": {
        "start": "Start of the session (RFC 3339 date-time with a UTC offset).",
        "end": "End of the session, after start; required unless the status is cancelled.",
        "duration_min": "Length in minutes; when given it must equal end - start within 1 "
                        "minute.",
        "session_number": "The n-th IASTM session of this plan of care (1 or more).",
        "planned_sessions": "Sessions planned (1 or more); a session_number above it is a "
                            "warning, not an error.",
        "plan_of_care_id": "The plan of care's identifier in the clinic system.",
        "iastm_minutes": "Schema 2.0: minutes of IASTM in the visit (required when completed); "
                         "with the adjuncts' minutes it fits in the visit.",
    },
    "Technique": {
        "code": "The technique (a local code system: no standard code exists for the brands).",
        "text": "The technique in words; required for iastm-other.",
    },
    "Instrument": {
        "code": "The kind of instrument.",
    },
    "TreatmentSite": {
        "site": "The body site (mapped to a SNOMED CT body structure).",
        "laterality": "The side treated.",
    },
    "Condition": {
        "condition_id": "The condition's identifier, stable across the sessions of an episode.",
        "icd10cm": "A billable ICD-10-CM code of the configured fiscal year, upper-case and "
                   "dotted (M77.11); categories such as M77.1 are refused.",
        "snomed": "The matching SNOMED CT concept, from the verified list only; omit it when "
                  "none is verified.",
        "text": "The clinician's wording of the diagnosis.",
        "laterality": "The side; must agree with the ICD-10-CM laterality digit and with a "
                      "treatment site on that side.",
        "onset_date": "Onset: YYYY, YYYY-MM or YYYY-MM-DD.",
        "clinical_status": "FHIR condition-clinical; required unless the verification status is "
                           "entered-in-error, and absent when it is.",
        "verification_status": "FHIR condition-ver-status.",
        "is_primary": "The primary diagnosis of the encounter; at most one true.",
        "site_index": "Schema 2.0: index (0-based) of the treatment site this condition is "
                      "treated at; the site's laterality must be the condition's.",
    },
    "Pain": {
        "scale": "The pain scale: NRS-11, the 0-10 numeric rating scale.",
        "pre": "Pain at the start of the session, 0-10.",
        "post": "Pain at the end of the session, 0-10.",
    },
    "RangeOfMotion": {
        "joint": "The joint measured.",
        "motion": "The motion measured; only the motions coded for that joint are accepted.",
        "laterality": "The side measured.",
        "degrees": "Degrees, -30 to 180; negative means short of neutral (a lack of extension).",
        "mode": "Active or passive motion.",
        "method": "How it was measured.",
        "timing": "Before (pre) or after (post) the treatment.",
    },
    "OutcomeMeasure": {
        "instrument": "The instrument: LEFS, QuickDASH or PSFS; schema 2.0 adds PRTEE, FAAM-ADL, "
                      "FAAM-Sports, VISA-P, KOOS-JR and HOOS-JR.",
        "score": "The score: LEFS an integer 0-80, QuickDASH 0-100, PSFS 0-10 (mean of its "
                 "items).",
        "items": "The PSFS activities and their scores (PSFS only).",
    },
    "PsfsItem": {
        "activity": "The activity the patient named.",
        "score": "Ability to perform it, 0 (unable) to 10 (as before the problem).",
    },
    "AdverseEffect": {
        "type": "The kind of adverse effect.",
        "severity": "Its severity.",
        "site_index": "Index of the affected site in treatment_sites (0-based).",
        "expected": "Whether the effect was expected.",
    },
    "AdjunctTherapy": {
        "type": "The kind of therapy.",
        "minutes": "Minutes spent, 1 to 1440.",
        "text": "What was done, in words.",
    },
    "Billing": {
        "cpt_lines": "The CPT lines billed (at most 20).",
    },
    "IastmParameters": {
        "strokes": "The stroke types used, each once.",
        "pressure": "The instrument pressure: light, moderate or heavy.",
        "tolerance": "How the patient tolerated the treatment.",
    },
    "Screening": {
        "performed_at": "When the screening was done (RFC 3339 date-time with a UTC offset).",
        "anticoagulant_therapy": "Whether the patient takes anticoagulants (a precaution: "
                                 "bruising is likelier).",
        "skin_intact": "Whether the skin over the treatment area is intact.",
        "consent_obtained": "Whether the patient consented to IASTM; must be true when the "
                            "session is completed.",
        "findings": "The contraindications and precautions found, each once; an absolute one "
                    "stops a completed session unless override_reason is given.",
        "override_reason": "Why the session went ahead despite an absolute contraindication.",
    },
    "CptLine": {
        "code": "A CPT code: 5 characters, 4 digits then a digit, F, T or U.",
        "units": "Units billed, 1 to 99.",
    },
}

__all__ = ["FIELDS", "OBJECTS"]
