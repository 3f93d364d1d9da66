"""The settings: one parser per variable, shared by the CLI and the HTTP service; README in step."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_iastm.api import create_app
from fhir_iastm.cli import main
from fhir_iastm.config import Settings, markdown_table, variables
from fhir_iastm.errors import ConfigError
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.service import mapping_settings

ROOT = Path(__file__).resolve().parent.parent
BAD = object()  # the value is refused

#: (variable, value, the setting's value or BAD)
TABLE: list[tuple[str, str, Any]] = [
    ("IASTM_INCLUDE_CPT", "ture", BAD),
    ("IASTM_INCLUDE_CPT", "TRUE", True),
    ("IASTM_INCLUDE_CPT", "Yes", True),
    ("IASTM_INCLUDE_CPT", "on", True),
    ("IASTM_INCLUDE_CPT", "0", False),
    ("IASTM_INCLUDE_CPT", "", False),  # empty = unset: the default
    ("IASTM_CLAIM_US_CORE", "off", False),
    ("IASTM_CLAIM_US_CORE", "2", BAD),
    ("IASTM_MAX_BODY_BYTES", "1MB", BAD),
    ("IASTM_MAX_BODY_BYTES", "1.5MiB", BAD),
    ("IASTM_MAX_BODY_BYTES", "0", BAD),
    ("IASTM_MAX_BODY_BYTES", "-5", BAD),
    ("IASTM_MAX_BODY_BYTES", "4096", 4096),
    ("IASTM_MAX_BODY_BYTES", "1MiB", 1_048_576),
    ("IASTM_MAX_BODY_BYTES", " 512 kib ", 524_288),
    ("IASTM_CANONICAL_BASE", "https://pt.example.com/fhir/", "https://pt.example.com/fhir"),
    ("IASTM_CANONICAL_BASE", "pt.example.com/fhir", BAD),
    ("IASTM_CANONICAL_BASE", "ftp://pt.example.com/fhir", BAD),
    ("IASTM_CANONICAL_BASE", "https://pt.example.com/fhir?x=1", BAD),
    ("IASTM_FHIR_BASE_URL", "http://127.0.0.1:18080/fhir", "http://127.0.0.1:18080/fhir"),
    ("IASTM_FHIR_BASE_URL", "localhost:8080/fhir", BAD),
    ("IASTM_FHIR_BASE_URL", "https:///fhir", BAD),
    ("IASTM_FHIR_TOKEN", "  s3cret ", "s3cret"),
    ("IASTM_API_TOKENS", "rtok:read, wtok:read+write", {"rtok": {"read"},
                                                       "wtok": {"read", "write"}}),
    ("IASTM_API_TOKENS", "plain", {"plain": {"read"}}),
    ("IASTM_API_TOKENS", "tok:root", BAD),
    ("IASTM_API_TOKENS", "tok:read+admin", {"tok": {"read", "admin"}}),
    ("IASTM_API_TOKENS", ":read", BAD),
    ("IASTM_API_TOKENS", "tok:read,tok:write", BAD),
    ("IASTM_DATABASE_URL", "fhir_iastm.db", BAD),
    ("DATABASE_URL", "/var/lib/fhir.db", BAD),
    ("IASTM_PROFILES_DIR", "/no/such/folder", BAD),
    ("IASTM_PROFILES_DIR", str(ROOT / "profiles"), ROOT / "profiles"),
]


def _field(variable: str) -> str:
    return next(name for name, v in variables().items() if variable in v.names)


def _comparable(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: set(v) for k, v in value.items()}
    return value


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A process environment with no IASTM_* variables and a store in tmp_path."""
    for name in list(os.environ):
        if name.startswith("IASTM_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/config.db")
    return monkeypatch


@pytest.mark.parametrize(("variable", "value", "expected"), TABLE)
def test_the_service_reads_each_variable_so(environ: pytest.MonkeyPatch, variable: str,
                                            value: str, expected: Any) -> None:
    environ.setenv(variable, value)
    if expected is BAD:
        with pytest.raises(ConfigError) as caught:
            create_app()
        assert caught.value.message.startswith(f"{variable}=")
        assert "expected" in caught.value.message
        return
    app = create_app()
    state = app.extensions["fhir_iastm"]
    try:
        assert _comparable(getattr(state.settings, _field(variable))) == _comparable(expected)
        if variable == "IASTM_MAX_BODY_BYTES":
            assert app.config["MAX_CONTENT_LENGTH"] == expected
    finally:
        state.store.close()


@pytest.mark.parametrize(("variable", "value", "expected"), TABLE)
def test_the_cli_reads_each_variable_so(environ: pytest.MonkeyPatch, variable: str, value: str,
                                        expected: Any) -> None:
    environ.setenv(variable, value)
    name = _field(variable)
    result = CliRunner().invoke(main, ["config", "--get", name])
    if expected is BAD:
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"Error: {variable}=")
        assert "Traceback" not in result.output
        return
    assert result.exit_code == 0, result.output
    if variables()[name].secret:
        assert result.stdout.strip() == "(set)"
    else:
        shown = expected if isinstance(expected, str) else json.dumps(expected, default=str)
        assert result.stdout.strip() == str(shown).strip('"')


def test_a_bad_value_stops_every_command(environ: pytest.MonkeyPatch) -> None:
    """Not only `config`: `map` refuses IASTM_INCLUDE_CPT=ture instead of reading it as false."""
    environ.setenv("IASTM_INCLUDE_CPT", "ture")
    example = ROOT / "tests/data/examples/good-03-plantar-fasciitis-hawkgrips-bruising.json"
    result = CliRunner().invoke(main, ["map", str(example)])
    assert result.exit_code == 2
    assert "IASTM_INCLUDE_CPT='ture'" in result.stderr
    assert "true/false" in result.stderr


def test_secret_values_are_never_echoed(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("IASTM_API_TOKENS", "hunter2:sudo")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert "hunter2" not in caught.value.message
    assert "unknown scope 'sudo'" in caught.value.message
    environ.setenv("IASTM_API_TOKENS", "hunter2:write")
    assert "hunter2" not in repr(Settings.from_env())
    assert "hunter2" not in CliRunner().invoke(main, ["config"]).output


def test_database_url_alias_and_precedence() -> None:
    assert Settings.from_env({}).database_url == "sqlite:///fhir_iastm.db"
    assert Settings.from_env({"DATABASE_URL": "sqlite:///a.db"}).database_url == "sqlite:///a.db"
    both = {"DATABASE_URL": "sqlite:///a.db", "IASTM_DATABASE_URL": "sqlite:///b.db"}
    assert Settings.from_env(both).database_url == "sqlite:///b.db"
    blank = {"DATABASE_URL": "sqlite:///a.db", "IASTM_DATABASE_URL": " "}
    assert Settings.from_env(blank).database_url == "sqlite:///a.db"


def test_options_are_parsed_like_their_variable(environ: pytest.MonkeyPatch) -> None:
    example = ROOT / "tests/data/examples/good-01-lateral-epicondylitis-graston.json"
    result = CliRunner().invoke(main, ["map", "--canonical-base", "ftp://x/fhir", str(example)])
    assert result.exit_code == 2
    assert "scheme 'ftp' is not http or https" in result.stderr
    # an option beats the variable; a variable fills an option left out
    environ.setenv("IASTM_CANONICAL_BASE", "https://env.example.com/fhir")
    given = CliRunner().invoke(main, ["map", "--canonical-base", "https://opt.example.com/fhir/",
                                      str(example)])
    assert "https://opt.example.com/fhir/sid/" in given.stdout
    assert "env.example.com" not in given.stdout
    assert "https://env.example.com/fhir/sid/" in CliRunner().invoke(
        main, ["map", str(example)]).stdout


def test_the_defaults_are_the_mappers_defaults() -> None:
    assert mapping_settings(Settings()) == MappingSettings()
    assert Settings.from_env({}) == Settings()


def _readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"^\|.*\|$", section, flags=re.MULTILINE))


def test_readme_table_is_the_settings() -> None:
    """Every setting has its README row and every row a setting; regenerate with
    ``python -c 'from fhir_iastm.config import markdown_table; print(markdown_table())'``."""
    assert _readme_table() == markdown_table()
