"""``fhir-iastm clients add | list | disable``: SMART client registration by an administrator."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fhir_iastm.cli import main

DATA = Path(__file__).resolve().parent.parent / "data" / "smart"


def test_add_list_disable(tmp_path: Path) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}"]
    runner = CliRunner()
    added = runner.invoke(main, ["clients", "add", "--name", "EHR bulk", "--jwks",
                                 str(DATA / "ES384.public.json"), "--scope", "system/*.rs", *db])
    assert added.exit_code == 0, added.output
    client = json.loads(added.output)
    assert len(client["client_id"]) == 32
    assert client["enabled"] is True
    by_url = runner.invoke(main, ["clients", "add", "--name", "by url", "--jwks-url",
                                  "https://ehr.example/jwks.json", "--scope", "system/*.read", *db])
    assert by_url.exit_code == 0, by_url.output
    listed = [json.loads(line) for line in runner.invoke(main, ["clients", "list", *db])
              .output.splitlines()]
    assert [c["name"] for c in listed] == ["EHR bulk", "by url"]
    assert listed[0]["jwks_keys"] == 1
    assert listed[1]["jwks_url"] == "https://ehr.example/jwks.json"
    off = runner.invoke(main, ["clients", "disable", client["client_id"], *db])
    assert off.exit_code == 0
    listed = [json.loads(line) for line in runner.invoke(main, ["clients", "list", *db])
              .output.splitlines()]
    assert [c["enabled"] for c in listed] == [False, True]
    assert runner.invoke(main, ["clients", "disable", "nope", *db]).exit_code != 0


def test_add_refuses_bad_input(tmp_path: Path) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}"]
    runner = CliRunner()
    private = runner.invoke(main, ["clients", "add", "--name", "x", "--jwks",
                                   str(DATA / "ES384.private.json"), "--scope", "system/*.rs", *db])
    assert private.exit_code != 0
    assert "private" in private.output
    scope = runner.invoke(main, ["clients", "add", "--name", "x", "--jwks",
                                 str(DATA / "ES384.public.json"), "--scope", "patient/*.rs", *db])
    assert scope.exit_code != 0
    assert "--scope" in scope.output
    both = runner.invoke(main, ["clients", "add", "--name", "x", "--scope", "system/*.rs", *db])
    assert both.exit_code != 0
    assert "exactly one" in both.output
    url = runner.invoke(main, ["clients", "add", "--name", "x", "--jwks-url", "ftp://x/k",
                               "--scope", "system/*.rs", *db])
    assert url.exit_code != 0
    assert "--jwks-url" in url.output
