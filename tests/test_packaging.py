"""Installable anywhere: the wheel carries profiles/ and the migrations, and the installed commands
work outside the checkout.

``test_the_wheel_works_outside_the_checkout`` builds the wheel from a copy of the sources
(``pip wheel --no-deps``), installs it with its dependencies (pip's cache) into a fresh venv, and
from a temporary folder runs ``fhir-iastm map``, ``validate``, ``serve`` and gunicorn with
``fhir_iastm.api:create_app()``, with one HTTP request each. It takes about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import setuptools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests/data/examples/good-01-lateral-epicondylitis-graston.json"
#: what a wheel is built from (pyproject.toml names them); nothing else of the checkout is needed
SOURCES = ("pyproject.toml", "README.md", "fhir_iastm", "profiles")


def test_pyproject_lists_every_package() -> None:
    """The explicit package list (needed to map profiles/ into the wheel) misses no package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(setuptools.find_packages(str(ROOT), include=["fhir_iastm*"]))
    assert set(config["packages"]) == found | {"fhir_iastm.profile_files"}
    assert config["package-dir"] == {"fhir_iastm.profile_files": "profiles"}


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this checkout's settings (no IASTM_*, DATABASE_URL, PYTHONPATH)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IASTM_", "VIRTUAL_ENV")) and k not in ("DATABASE_URL", "PYTHONPATH")
    }
    env.update(extra)
    return env


def _run(args: list[Any], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kwargs,
    )
    assert done.returncode == 0, f"{args}: rc={done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/fhir+json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


@contextmanager
def _server(args: list[Any], cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    """Start a server process, wait for /healthz, yield its base URL, stop it (by its pid)."""
    log = cwd / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(a) for a in args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"{base}/healthz")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{args[0]} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", src],
         tmp_path, env=_clean_env())
    (wheel,) = (tmp_path / "dist").glob("fhir_iastm-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    bin_ = venv / "bin"
    _run([bin_ / "python", "-m", "pip", "install", "-q", wheel], tmp_path, env=_clean_env())
    shutil.rmtree(src)  # nothing may be read from a source tree any more

    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(IASTM_DATABASE_URL=f"sqlite:///{work / 'store.db'}")
    where = _run([bin_ / "python", "-c", "import fhir_iastm.config as c; "
                  "print(c.DEFAULT_PROFILES_DIR)"], work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    assert len(list(Path(where).glob("StructureDefinition-*.json"))) >= 20

    shutil.copy2(EXAMPLE, work / "record.json")
    bundle = _run([bin_ / "fhir-iastm", "map", "record.json"], work, env=env).stdout
    (work / "bundle.json").write_text(bundle)
    outcome = json.loads(_run([bin_ / "fhir-iastm", "validate", "bundle.json"], work,
                              env=env).stdout)
    assert [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")] == []

    port = _free_port()
    with _server([bin_ / "fhir-iastm", "serve", "--port", port], work, env, port) as base:
        status, sd = _get(f"{base}/fhir/StructureDefinition/iastm-procedure")
        assert (status, sd["url"]) == (
            200, "https://iastm.example.org/fhir/StructureDefinition/iastm-procedure")

    port = _free_port()
    gunicorn = [bin_ / "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
                "fhir_iastm.api:create_app()"]
    with _server(gunicorn, work, env, port) as base:
        procedure = next(e["resource"] for e in json.loads(bundle)["entry"]
                         if e["resource"]["resourceType"] == "Procedure")
        status, checked = _get(f"{base}/fhir/Procedure/$validate", procedure)
        assert status == 200
        assert checked["resourceType"] == "OperationOutcome"
        assert [i for i in checked["issue"] if i["severity"] in ("error", "fatal")] == []
