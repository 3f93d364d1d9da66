"""scripts/postgres on a fresh data folder: initdb, start, re-start, status, stop by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command: str, pg_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PG_DIR": str(pg_dir), "PG_PORT": str(port), "PG_DB": "script_check"}
    return subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A fresh folder the unprivileged server user can reach (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="fhir_iastm_pgtest_", dir="/tmp"))
    folder.chmod(0o755)
    yield folder / "pg"
    shutil.rmtree(folder, ignore_errors=True)


def test_fresh_start_restart_status_stop(pg_dir: Path) -> None:
    port = free_port()
    try:
        started = run("start", pg_dir, port)
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().splitlines()[-1]
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/script_check"
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=10) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("script_check",)
        again = run("start", pg_dir, port)  # re-run: same server, same URL
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == url
        status = run("status", pg_dir, port)
        pid = (pg_dir / "data" / "postmaster.pid").read_text().splitlines()[0]
        assert (status.returncode, status.stdout.split()[:3]) == (0, ["running", "pid", pid])
    finally:
        stopped = run("stop", pg_dir, port)
    assert stopped.returncode == 0, stopped.stderr
    assert not (pg_dir / "data" / "postmaster.pid").exists()
    assert run("status", pg_dir, port).returncode == 3


def test_unreachable_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user")  # a non-root user owns its dirs
    tmp_path.chmod(0o700)
    result = run("start", tmp_path / "pg", free_port())
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


def test_concurrent_starts_share_one_server(pg_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "PG_DIR": str(pg_dir), "PG_PORT": str(port), "PG_DB": "script_check"}
    try:
        procs = [
            subprocess.Popen([str(SCRIPT), "start"], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(3)
        ]
        outputs = [proc.communicate(timeout=300)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0]
        urls = {out.strip().splitlines()[-1] for out in outputs}
        assert urls == {f"postgresql+psycopg://postgres@127.0.0.1:{port}/script_check"}
    finally:
        assert run("stop", pg_dir, port).returncode == 0


def test_a_port_that_cannot_be_bound_moves_to_the_next(pg_dir: Path) -> None:
    """A bound, non-listening socket (like a client's ephemeral port) looks free but is not."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        try:
            started = run("start", pg_dir, port)
            assert started.returncode == 0, started.stderr
            assert "is taken; trying the next one" in started.stderr
            url = started.stdout.strip().splitlines()[-1]
            assert not url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{port}/")
        finally:
            run("stop", pg_dir, port)
