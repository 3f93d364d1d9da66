"""What ``load-profiles`` sends: every conformance resource but the ones profiles/README.md says a
validating server must not get (issue 10 #3)."""

from __future__ import annotations

import re
from pathlib import Path

from fhir_iastm.service import NOT_FOR_SERVERS, conformance_resources

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_list_is_the_code_list() -> None:
    readme = (ROOT / "profiles/README.md").read_text()
    line = next(x for x in readme.splitlines() if "**Loading into HAPI**" in x)
    named = set(re.findall(r"`((?:ValueSet|CodeSystem)-[\w.-]+)\.json`",
                           line.split("With the two ValueSets loaded")[0]))
    assert {k.replace("/", "-") for k in NOT_FOR_SERVERS} == named


def test_server_upload_leaves_out_exactly_those() -> None:
    everything = conformance_resources(ROOT / "profiles")
    for_server = conformance_resources(ROOT / "profiles", for_server=True)
    keys = {f"{r['resourceType']}/{r['id']}" for r in everything}
    assert keys >= NOT_FOR_SERVERS
    assert {f"{r['resourceType']}/{r['id']}" for r in for_server} == keys - NOT_FOR_SERVERS
    # what references them still goes: the extension falls back to "ValueSet not found" (warning)
    assert "StructureDefinition/mcode-body-location-qualifier" in keys - NOT_FOR_SERVERS
