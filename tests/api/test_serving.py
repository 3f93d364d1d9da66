"""The real gunicorn with the project's config (``fhir_iastm/gunicorn_conf.py``, as ``scripts/run``
starts it) on 127.0.0.1: stalled uploads do not starve it, errors that gunicorn answers itself are
OperationOutcomes, and no log stream carries PHI sent in any part of a request."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.strategies import example

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
CLIENT_TIMEOUT_S = 8  # the server's per-read client timeout in these tests
#: How long the test client waits for an answer: a wide margin over the server's timeout, for a
#: loaded machine. That a request was not starved is shown by the order of the answers (it was
#: served while every stalled upload was still held, see ``unanswered``), not by a short timeout.
WAIT_S = CLIENT_TIMEOUT_S * 4
STALLED = 24  # below workers x threads (2 x 16) minus the two requests of the check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    port: int
    stdout: Path
    stderr: Path
    pid: int = 0

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the gunicorn master)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
        return found

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with gunicorn(tmp_path_factory.mktemp("gunicorn")) as started:
        yield started


@contextmanager
def gunicorn(tmp: Path, **environ: str) -> Iterator[Server]:
    """gunicorn as ``scripts/run`` starts it, on a free port and a fresh SQLite file."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite'}",
           "IASTM_CLIENT_TIMEOUT_S": str(CLIENT_TIMEOUT_S), "HOME": str(tmp)}
    for name in ("IASTM_DATABASE_URL", "IASTM_API_TOKENS", "IASTM_FHIR_BASE_URL",
                 "WEB_CONCURRENCY", "IASTM_WEB_THREADS", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    env.update(environ)
    out, err = tmp / "stdout.log", tmp / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([str(GUNICORN), "-c", "python:fhir_iastm.gunicorn_conf"],
                                cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        # gunicorn's default control socket is $HOME/.gunicorn/gunicorn.ctl, shared by every
        # instance of a user: there must be none
        assert not (tmp / ".gunicorn").exists(), "a control socket"
        yield Server(port, out, err, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def get(port: int, path: str, timeout: float = 3) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None,
         timeout: float = 3) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 3) -> bytes:
    """Send bytes as they are; the whole answer (the server closes or we time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def stall(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.sendall(b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{")
    return s


def unanswered(sockets: list[socket.socket]) -> bool:
    """Whether the server has sent nothing on any of ``sockets`` yet, not even a close: each
    request is still held (none is readable)."""
    readable, _, _ = select.select(sockets, [], [], 0)
    return not readable


def outcome_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/fhir+json" in head.lower(), head
    return status, json.loads(body)


def test_stalled_uploads_do_not_starve_health_or_a_normal_post(server: Server) -> None:
    stalled = [stall(server.port) for _ in range(STALLED)]
    try:
        time.sleep(0.5)  # every stalled request is now inside a worker thread, blocked on its body
        assert get(server.port, "/healthz", timeout=WAIT_S)[0] == 200
        status, body = post(server.port, "/api/sessions",
                            json.dumps(example("good-02")).encode(), timeout=WAIT_S)
        assert status == 201, body
        # both were served while the stalled uploads still held their threads, not after the
        # server had cut them (a starved server answers them only once the stalls time out)
        assert unanswered(stalled), "a stalled upload was cut before the normal requests ended"
        # each stalled upload is cut after the client timeout with a 408 OperationOutcome
        answer = b""
        while chunk := stalled[0].recv(65536):  # until the server closes
            answer += chunk
        status, outcome = outcome_of(answer)
        assert status == 408
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == "E_TIMEOUT"
    finally:
        for s in stalled:
            s.close()


def test_an_aborted_worker_answers_the_requests_it_holds_with_an_outcome(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    with gunicorn(tmp_path_factory.mktemp("abort"), WEB_CONCURRENCY="1") as server:
        (worker,) = server.workers()
        held = stall(server.port)
        time.sleep(0.5)  # the request is in the app, its body not read yet
        os.kill(worker, signal.SIGABRT)  # what the arbiter sends a worker that timed out
        answer = b""
        while chunk := held.recv(65536):
            answer += chunk
        held.close()
        status, outcome = outcome_of(answer)
        assert status == 503
        assert outcome["issue"][0]["code"] == "transient"
        assert "retry" in outcome["issue"][0]["diagnostics"]
        deadline = time.monotonic() + 60  # the arbiter starts another worker, which serves
        while True:
            try:
                if get(server.port, "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "no worker serves after the abort"
                time.sleep(0.2)
        assert worker not in server.workers()
        assert '"msg":"worker aborted"' in server.logs()


# --- errors gunicorn answers itself, and PHI in logs -----------------------------------------

MRN, FAMILY, BIRTH = "MRN-7734501", "Zyxwvutsson", "1961-04-19"
PHI = (MRN, FAMILY, BIRTH)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (f"GET /api/sessions?patient={MRN}&x={'y' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-{FAMILY}: {'z' * 9000}\r\n\r\n", 431),
        (f"GET /{FAMILY} {BIRTH} {MRN} HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (f"{FAMILY}\r\n\r\n", 400),
        (f"GET /healthz HTTP/1.1\r\nHost: x\r\n{FAMILY} {MRN}\r\n\r\n", 400),
        (f"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {MRN}\r\n\r\n", 400),
        (f"GET /x HTTP/9.{BIRTH}\r\n\r\n", 400),
    ],
    ids=["414", "431", "request-line", "garbage", "header-line", "content-length", "version"],
)
def test_server_level_errors_are_outcomes_naming_no_request_content(
        server: Server, request_bytes: str, status: int) -> None:
    got, outcome = outcome_of(raw(server.port, request_bytes.encode()))
    assert got == status
    assert outcome["resourceType"] == "OperationOutcome"
    text = json.dumps(outcome)
    assert not any(value in text for value in PHI)
    assert "Traceback" not in text
    assert "Error" not in outcome["issue"][0]["diagnostics"]  # no Python exception names


def test_request_ids_are_kept_only_when_plain_and_bounded(server: Server) -> None:
    for given, kept in [("0af7651916cd43dd8448eb211c80319c", True),
                        ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", True),
                        (f"{MRN} {FAMILY}", False), (f"{MRN}-{FAMILY}", False),
                        ("7734501", False), ("a" * 65, False), ("\u00e9" * 20, False)]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
        conn.putrequest("GET", "/healthz")
        conn.putheader("X-Request-Id", given.encode("utf-8"))
        conn.endheaders()
        response = conn.getresponse()
        echoed = response.getheader("X-Request-Id")
        response.read()
        conn.close()
        assert (echoed == given) is kept, echoed
        assert echoed
        assert len(echoed) <= 64


def test_phi_in_every_part_of_a_request_reaches_no_log(server: Server) -> None:
    record = example("good-03")
    record["patient"].update(mrn=MRN, family_name=FAMILY, birth_date=BIRTH)
    body = json.dumps(record).encode()
    headers = {"X-Request-Id": f"{MRN}-{FAMILY}", "X-Patient": f"{FAMILY} {BIRTH}",
               "User-Agent": FAMILY, "Referer": f"http://x/{MRN}",
               "Authorization": f"Bearer {MRN}"}
    port = server.port
    assert post(port, "/api/sessions", body, headers)[0] == 201
    assert post(port, f"/api/sessions?mrn={MRN}", body[:-2], headers)[0] == 400  # malformed
    assert post(port, f"/fhir/Patient/$validate?family={FAMILY}", body, headers)[0] == 400
    bad = body.replace(FAMILY.encode(), FAMILY.encode() + b"\xff")
    assert post(port, f"/api/sessions/{MRN}", bad, headers)[0] == 405
    assert post(port, "/api/sessions", bad, headers)[0] == 400
    assert get(port, f"/api/sessions?patient={MRN}&family={FAMILY}&birthdate={BIRTH}")[0] == 200
    assert get(port, f"/fhir/Patient?identifier={MRN}")[0] == 200
    assert get(port, f"/api/sessions/{MRN}/{FAMILY}/{BIRTH}")[0] == 404
    assert get(port, f"/fhir/{FAMILY}/{MRN}")[0] == 404
    for line in (f"GET /{FAMILY} {BIRTH} {MRN} HTTP/1.1\r\n\r\n", f"{FAMILY} {MRN}\r\n\r\n",
                 f"GET /?{MRN}={'y' * 5000} HTTP/1.1\r\n\r\n",
                 f"POST /api/sessions HTTP/1.1\r\nContent-Length: 10\r\n\r\n{MRN}"):
        raw(port, line.encode(), timeout=1)
    time.sleep(0.5)
    logs = server.logs()
    assert '"logger":"fhir_iastm.access"' in logs  # the streams were written at all
    assert "gunicorn.error" in logs
    for line in logs.splitlines():
        json.loads(line)  # every line is one JSON object
    for value in PHI:
        assert value not in logs, f"PHI found in the logs: {value[:3]}…"


def test_each_worker_freezes_its_startup_objects_for_the_collector(server: Server) -> None:
    """``post_worker_init``: every worker, once it has loaded the app, freezes what it built
    (``gc.freeze``: the collector's full passes skip those objects, docs/performance.md#gc)."""
    assert get(server.port, "/healthz")[0] == 200
    frozen = [json.loads(line)["msg"] for line in server.logs().splitlines()
              if "objects frozen for the garbage collector" in line]
    assert len(frozen) == 2, frozen  # WEB_CONCURRENCY's default: two workers
    assert all(int(msg.rsplit(" ", 1)[1]) > 50_000 for msg in frozen), frozen


def test_gunicorn_messages_keep_arguments_only_when_they_cannot_carry_request_data(
        capsys: pytest.CaptureFixture[str]) -> None:
    from gunicorn.config import Config

    from fhir_iastm.serving import JsonLogger

    log = JsonLogger(Config())
    log.exception("Error handling request %s %s", "GET", f"/api/sessions?patient={MRN}")
    log.info("Booting worker with pid: %s", 4242)
    log.info("Listening at: %s (%s)", "http://127.0.0.1:8000", 4241)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["msg"] == "Error handling request %s %s"
    assert lines[0]["redacted"] is True
    assert lines[1]["msg"] == "Booting worker with pid: 4242"
    assert lines[2]["msg"] == "Listening at: http://127.0.0.1:8000 (4241)"
