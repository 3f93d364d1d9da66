"""The import rules of pyproject.toml ([tool.importlinter]) hold: ``lint-imports`` exits 0.

The second test proves the check can fail: one forbidden import added to a copy of the package
breaks the contract that forbids it, and ``lint-imports`` says which.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    done = lint_imports(ROOT, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fhir_iastm", tmp_path / "fhir_iastm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    push = tmp_path / "fhir_iastm" / "sync" / "push.py"
    push.write_text(push.read_text() + "\nfrom fhir_iastm.storage import Store  # noqa\n")
    done = lint_imports(tmp_path, tmp_path)
    assert done.returncode != 0
    assert "sync reaches the FHIR client and the store only through sync/ports.py BROKEN" in (
        done.stdout
    )
    assert "fhir_iastm.sync.push -> fhir_iastm.storage" in done.stdout
