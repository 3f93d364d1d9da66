"""Receiver settings files (docs/targets.md#receiver-settings): accepted forms, refusals naming the
key and the file, the file check-server writes, and the mapping they select."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.config import Settings
from fhir_iastm.errors import ConfigError
from fhir_iastm.service import mapping_settings, suggested_target_toml, target_settings
from fhir_iastm.sync.readiness import Facts, judge
from fhir_iastm.target_config import TargetSettings, load_target, parse_target, target_toml
from tests.sync.test_readiness import statement


def test_toml_and_json_files_read_alike(tmp_path: Path) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text('[target]\nstrip_profiles = true\nmax_bundle_entries = 50\n'
                    'pain_category = ["survey", "exam"]\n')
    flat = tmp_path / "t.json"
    flat.write_text(json.dumps({"strip_profiles": True, "max_bundle_entries": 50,
                                "pain_category": ["survey", "exam"]}))
    expected = TargetSettings(strip_profiles=True, max_bundle_entries=50,
                              pain_category=("survey", "exam"))
    assert load_target(toml) == load_target(flat) == expected


@pytest.mark.parametrize(("document", "message"), [
    ({"strip_profile": True}, "unknown setting 'strip_profile'"),
    ({"strip_profiles": "yes"}, "strip_profiles must be true or false"),
    ({"max_bundle_entries": 1}, "max_bundle_entries must be 0 (no limit) or an integer >= 2"),
    ({"max_bundle_entries": -5}, "max_bundle_entries must be 0"),
    ({"pain_category": ["exam"]}, 'starting with "survey"'),
    ({"pain_category": ["survey", "vital-signs"]}, "pain_category must list"),
    ([1, 2], "expected a table"),
])
def test_bad_settings_are_refused_naming_key_and_file(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(document, "ehr.toml")
    assert caught.value.message.startswith("ehr.toml: ")
    assert message in caught.value.message


def test_unreadable_or_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the target file"):
        load_target(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[target\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_target(bad)


def test_the_written_file_reads_back_to_the_same_settings() -> None:
    settings = TargetSettings(performed_as_datetime=True, conditional_requests=False,
                              max_bundle_entries=20, smart_v1_scopes=True)
    text = target_toml(settings, {"max_bundle_entries": "the EHR's limit"})
    assert "# the EHR's limit\nmax_bundle_entries = 20" in text
    assert parse_target(tomllib.loads(text), "x") == settings


def test_check_server_suggests_settings_from_its_report() -> None:
    caps = Capabilities(statement(conditional_update=False))
    checks = judge(Facts("https://hapi.fhir.org/baseR4", caps, profiles={"a": False}))
    suggested = parse_target(tomllib.loads(suggested_target_toml(checks)), "x")
    assert suggested == TargetSettings(strip_profiles=True, conditional_requests=False,
                                       public_sandbox=True)
    ready = judge(Facts("https://ehr.example/fhir", Capabilities(statement()),
                        profiles={"a": True}))
    assert parse_target(tomllib.loads(suggested_target_toml(ready)), "x") == TargetSettings()


def test_the_target_file_selects_the_mapping_options(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[target]\nperformed_as_datetime = true\npain_category = ["survey", "exam"]\n')
    settings = Settings(target_file=path, strip_profiles=True)
    mapping = mapping_settings(settings)
    assert (mapping.performed_as_datetime, mapping.strip_profiles, mapping.pain_category) == (
        True, False, ("survey", "exam"))  # the file replaces the global receiver options
    assert target_settings(Settings(strip_profiles=True)) == TargetSettings(strip_profiles=True)
