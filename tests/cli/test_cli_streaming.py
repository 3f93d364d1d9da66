"""The CLI at volume: results as they are made (a result appears before the input ends), tagged
with their input, a summary line; encodings named by file and byte offset; database failures as
one line and exit 4; ``export`` refuses a missing database and writes shared resources once."""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_iastm.cli import main
from tests.strategies import example

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fhir_iastm"]


def records(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        record = example("good-01")
        record["session_id"] = f"RBPT-2025-{900000 + i}"
        out.append(record)
    return out


def ndjson(items: list[Any]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def test_validate_writes_each_result_before_the_input_ends(tmp_path: Path) -> None:
    bundle = json.loads(CliRunner().invoke(main, ["map", "-"], input=json.dumps(
        example("good-01"))).stdout)
    proc = subprocess.Popen([*CLI, "validate", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        for _ in range(2):  # two documents: JSON Lines, so the first one's result can go out
            proc.stdin.write((json.dumps(bundle) + "\n").encode())
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # the input is still open
        assert ready, "no result while the input was still open"
        first = json.loads(proc.stdout.readline())
        assert first["input"] == {"file": "-", "line": 1, "item": 0,
                                  "session_id": "RBPT-2025-000311"}
        assert first["outcome"]["resourceType"] == "OperationOutcome"
    finally:
        proc.stdin.close()
        proc.wait(120)
    assert proc.returncode == 0
    assert proc.stderr is not None
    last = proc.stderr.read().decode().splitlines()[-1]
    proc.stdout.close()
    proc.stderr.close()
    assert last.startswith("validate: 2 documents from 1 file: 2 valid")
    assert "\r" not in last  # no progress line: stderr is not a terminal


def _validate_peak(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Peak traced memory of ``fhir-iastm validate FILE`` in process, its output discarded."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        monkeypatch.setattr(sys, "stdout", sink)
        gc.collect()  # no earlier garbage in the peak
        tracemalloc.start()
        try:
            main.main(["validate", str(path)], standalone_mode=False)
            _size, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            monkeypatch.undo()
    return peak


def test_validate_holds_one_document_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten times the input, the same peak memory: the documents read are not kept (a command
    that kept them would grow by several times the input's size)."""
    bundle = json.loads(CliRunner().invoke(main, ["map", "-"], input=json.dumps(
        example("good-01"))).stdout)
    small, large = tmp_path / "small.ndjson", tmp_path / "large.ndjson"
    small.write_text(ndjson([bundle] * 20))
    large.write_text(ndjson([bundle] * 200))
    _validate_peak(large, monkeypatch)  # fill every cache first (profiles, FHIRPath, tables)
    grown = _validate_peak(large, monkeypatch) - _validate_peak(small, monkeypatch)
    added = large.stat().st_size - small.stat().st_size
    assert added > 1_500_000
    assert grown < added / 4, (grown, added)  # kept documents: several times ``added``


@pytest.mark.parametrize("command", ["map", "import", "push", "validate"])
def test_a_windows_1252_file_is_a_clear_error_naming_file_and_offset(
        tmp_path: Path, command: str) -> None:
    data = json.dumps(example("good-01"))[:-1] + ', "x": "caf\u00e9"}'
    path = tmp_path / "cp1252.json"
    path.write_bytes(data.encode("cp1252"))
    offset = data.encode("cp1252").index(b"\xe9")
    args = {"import": ["--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}"],
            "push": ["--server", "http://127.0.0.1:9/fhir"]}.get(command, [])
    result = CliRunner().invoke(main, [command, *args, str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path} is not UTF-8: byte offset {offset}" in result.output


def test_utf8_with_a_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(example("good-01")).encode())
    result = CliRunner().invoke(main, ["map", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resourceType"] == "Bundle"


def test_import_tags_each_line_with_its_input_and_sums_up(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    batch = records(3)
    batch[1]["pain"]["post"] = 11
    path.write_text(ndjson(batch))
    result = CliRunner().invoke(main, ["import", "--database-url",
                                       f"sqlite:///{tmp_path / 'db.sqlite'}", str(path)])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["input"]["line"], x["session_id"], x["status"]) for x in lines] == [
        (1, batch[0]["session_id"], "created"), (2, batch[1]["session_id"], "rejected"),
        (3, batch[2]["session_id"], "created")]
    assert lines[1]["operationOutcome"]["issue"][0]["diagnostics"].startswith(f"{path}:2 ")
    assert result.stderr.splitlines()[-1].startswith(
        "import: 3 documents from 1 file: 2 created, 1 rejected")


def test_a_database_failure_is_one_line_and_exit_4(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text(ndjson(records(1)))
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}"
    for args in (["import", "--database-url", url, str(path)], ["init-db", "--database-url", url]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 4, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith("fhir-iastm: database failure: OperationalError: unable to open")


def test_export_refuses_a_mistyped_database_path(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(main, ["export", "--database-url", f"sqlite:///{missing}"])
    assert result.exit_code == 4
    assert f"no database at '{missing}'" in result.stderr
    assert not missing.exists()


def test_export_writes_a_shared_resource_once(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    batch = records(5)
    path.write_text(ndjson(batch))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(main, ["import", "--database-url", url, str(path)]).exit_code == 0
    result = CliRunner().invoke(main, ["export", "--database-url", url])
    assert result.exit_code == 0, result.output
    resources = [json.loads(line) for line in result.stdout.splitlines()]
    by_type: dict[str, int] = {}
    for resource in resources:
        by_type[resource["resourceType"]] = by_type.get(resource["resourceType"], 0) + 1
    assert by_type["Organization"] == 1  # one clinic
    assert by_type["Patient"] == 1  # one patient (same MRN)
    assert by_type["Procedure"] >= 5  # every session's own resources
    keys = [(r["resourceType"], r["id"]) for r in resources]
    assert len(keys) == len(set(keys))
    assert result.stderr.strip() == f"export: 5 sessions, {len(resources)} resources"


def test_push_spools_an_unseekable_input_to_read_it_twice() -> None:
    from fhir_iastm.cli.io import file_name
    from fhir_iastm.cli.remote import _rereadable

    read_end, write_end = os.pipe()
    os.write(write_end, b'{"a": 1}\n{"b": 2}\n')
    os.close(write_end)
    with open(read_end, "rb") as pipe, open(__file__, "rb") as regular:
        assert not pipe.seekable()
        spooled, same = _rereadable((pipe, regular))
        assert same is regular
        assert spooled.read() == b'{"a": 1}\n{"b": 2}\n'
        spooled.seek(0)
        assert spooled.read() == b'{"a": 1}\n{"b": 2}\n'  # a second pass reads it all again
        assert file_name(spooled) == "-"
        spooled.close()
