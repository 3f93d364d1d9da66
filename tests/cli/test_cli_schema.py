"""``fhir-iastm schema`` prints the record's JSON Schema."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.records.contract import record_json_schema


def test_schema_command_prints_the_record_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == record_json_schema()
