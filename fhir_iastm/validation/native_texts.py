"""The FHIRPath texts of profiles/ invariants that ``native.py`` implements natively.

Copied verbatim (whitespace-normalised) from profiles/ — a native check is used only while the
profile's expression is exactly this text; if a profile changes its expression, the FHIRPath is
evaluated instead (``tests/test_validation_native.py`` reports it).
"""

from __future__ import annotations

EXPRESSIONS: dict[str, str] = {
    "us-core-7": ("(status='completed' or status='in-progress') implies performed.exists()"),
    "iastm-proc-1": (
        "performed.ofType(Period).all(start.exists() and end.exists() and start < end)"
    ),
    "iastm-proc-3": ("status = 'not-done' implies statusReason.exists()"),
    "iastm-proc-7": (
        "(status = 'completed') implies (reasonReference.exists() or reasonCode.exists())"
    ),
    "iastm-proc-9": ("status = 'completed' implies performed.ofType(Period).exists()"),
    "iastm-cond-1": ("code.coding.where(system='http://hl7.org/fhir/sid/icd-10-cm').count() = 1"),
    "iastm-cond-2r": (
        "code.coding.where(system='http://hl7.org/fhir/sid/icd-10-cm' and (code.matches('^(M77\\\\."
        "[01]|M76\\\\.5)1$') or code.matches('^S76\\\\.3[0-9]1[ADS]$') or code.matches('^Z96\\\\.6[45]1"  # noqa: E501
        "$'))).exists() implies bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/Struct"
        "ureDefinition/mcode-laterality-qualifier').value.coding.where(system='http://snomed.info"
        "/sct' and code='24028007').exists()"
    ),
    "iastm-cond-2l": (
        "code.coding.where(system='http://hl7.org/fhir/sid/icd-10-cm' and (code.matches('^(M77\\\\."
        "[01]|M76\\\\.5)2$') or code.matches('^S76\\\\.3[0-9]2[ADS]$') or code.matches('^Z96\\\\.6[45]2"  # noqa: E501
        "$'))).exists() implies bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/Struct"
        "ureDefinition/mcode-laterality-qualifier').value.coding.where(system='http://snomed.info"
        "/sct' and code='7771000').exists()"
    ),
    "iastm-cond-2b": (
        "code.coding.where(system='http://hl7.org/fhir/sid/icd-10-cm' and code.matches('^Z96\\\\.6["
        "45]3$')).exists() implies bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/Str"
        "uctureDefinition/mcode-laterality-qualifier').value.coding.where(system='http://snomed.i"
        "nfo/sct' and code='51440002').exists()"
    ),
    "iastm-cond-3": (
        "code.coding.where(system='http://hl7.org/fhir/sid/icd-10-cm' and code.startsWith('S76.')"
        ").all(code.matches('^S76\\\\.[0-9]{3}[ADS]$'))"
    ),
    "iastm-cond-4": (
        "bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-bod"
        "y-location-qualifier').all(value.coding.where(system='http://snomed.info/sct' and (code="
        "'49370004' or code='255561001' or code='255551008')).exists())"
    ),
    "us-core-16": ("value.matches('^[0-9]{10}$')"),
    "us-core-17": (
        "(((select(value.substring(0,1).toInteger()).select(iif($this<5, $this*2, (($this*2)-9)))"
        ")+(value.substring(1,1).toInteger())+(select(value.substring(2,1).toInteger()).select(ii"
        "f($this<5, $this*2, (($this*2)-9))))+(value.substring(3,1).toInteger())+(select(value.su"
        "bstring(4,1).toInteger()).select(iif($this<5, $this*2, (($this*2)-9))))+(value.substring"
        "(5,1).toInteger())+(select(value.substring(6,1).toInteger()).select(iif($this<5, $this*2"
        ", (($this*2)-9))))+(value.substring(7,1).toInteger())+(select(value.substring(8,1).toInt"
        "eger()).select(iif($this<5, $this*2, (($this*2)-9))))+(value.substring(9,1).toInteger())"
        " + 24)mod 10=0)"
    ),
    "us-core-2": (
        "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.ex"
        "ists())"
    ),
    "iastm-obs-1": (
        "code.coding.where(system='http://loinc.org' and code='72514-3').exists() implies (value."
        "ofType(Quantity).code = '{score}' and value.ofType(Quantity).value >= 0 and value.ofType"
        "(Quantity).value <= 10 and value.ofType(Quantity).value.floor() = value.ofType(Quantity)"
        ".value)"
    ),
    "iastm-obs-2": (
        "code.coding.where(system='http://loinc.org' and code='72514-3').exists() implies extensi"
        "on.where(url='https://iastm.example.org/fhir/StructureDefinition/iastm-measurement-timin"
        "g').value.where($this = 'pre' or $this = 'post').count() = 1"
    ),
    "iastm-obs-4": ("partOf.exists()"),
    "us-core-1": ("$this is dateTime implies $this.toString().length() >= 10"),
    "us-core-3": (
        "ofType(Quantity).system.empty() or ofType(Quantity).system = 'http://unitsofmeasure.org'"
    ),
    "us-core-6": (
        "(family.exists() or given.exists()) xor extension.where(url='http://hl7.org/fhir/Structu"
        "reDefinition/data-absent-reason').exists()"
    ),
    "iastm-proc-2": (
        "code.coding.where(system='https://iastm.example.org/fhir/CodeSystem/iastm-technique' and"
        " code='iastm').exists() implies extension.where(url='https://iastm.example.org/fhir/Stru"
        "ctureDefinition/iastm-technique').count() = 1"
    ),
    "iastm-proc-4": (
        "bodySite.all(extension.where(url='http://hl7.org/fhir/us/mcode/StructureDefinition/mcode"
        "-laterality-qualifier').count() = 1)"
    ),
    "iastm-proc-5": (
        "identifier.where(system='https://iastm.example.org/fhir/sid/iastm-session').count() = 1"
    ),
    "iastm-proc-6": (
        "(extension.where(url='https://iastm.example.org/fhir/StructureDefinition/iastm-session-n"
        "umber').exists() and extension.where(url='https://iastm.example.org/fhir/StructureDefini"
        "tion/iastm-planned-sessions').exists()) implies (extension.where(url='https://iastm.exam"
        "ple.org/fhir/StructureDefinition/iastm-session-number').value <= extension.where(url='ht"
        "tps://iastm.example.org/fhir/StructureDefinition/iastm-planned-sessions').value)"
    ),
    "iastm-proc-8": (
        "complication.all(extension.where(url='https://iastm.example.org/fhir/StructureDefinition"
        "/iastm-adverse-effect-severity').count() = 1)"
    ),
    "iastm-proc-10": (
        "bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-bod"
        "y-location-qualifier').all(value.coding.where(system='http://snomed.info/sct' and (code="
        "'49370004' or code='255561001' or code='255551008')).exists())"
    ),
    "iastm-obs-3": (
        "code.coding.where(system='https://iastm.example.org/fhir/CodeSystem/iastm-observation' a"
        "nd code.startsWith('rom-')).exists() implies value.ofType(Quantity).code = 'deg'"
    ),
    "iastm-obs-5": (
        "bodySite.extension.where(url='http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-bod"
        "y-location-qualifier').all(value.coding.where(system='http://snomed.info/sct' and (code="
        "'49370004' or code='255561001' or code='255551008')).exists())"
    ),
}

__all__ = ["EXPRESSIONS"]
