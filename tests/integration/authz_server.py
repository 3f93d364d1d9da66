"""Start panva ``oidc-provider`` (tests/authz/server.mjs, installed by ``npm ci`` there, which
scripts/test runs) on 127.0.0.1 for a test module, and stop it by its PID afterwards."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AUTHZ = Path(__file__).resolve().parent.parent / "authz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def oidc_provider(folder: Path, clients: list[dict[str, Any]], *, port: int | None = None,
                  resource: str | None = None) -> Iterator[str]:
    """The provider's issuer URL. With ``resource`` it issues JWT access tokens for that FHIR
    base (server.mjs). A missing install FAILS."""
    node = shutil.which("node")
    assert node, "node is required for the oidc-provider tests"
    assert (AUTHZ / "node_modules" / "oidc-provider").is_dir(), \
        "run `npm ci` in tests/authz (scripts/test does)"
    clients_file = folder / "clients.json"
    clients_file.write_text(json.dumps(clients))
    errors = folder / "stderr.txt"
    args = [node, "server.mjs", str(port or free_port()), str(clients_file)]
    with errors.open("w") as err:
        proc = subprocess.Popen(args + ([resource] if resource else []), cwd=AUTHZ,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("ready "), errors.read_text()
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
