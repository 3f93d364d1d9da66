"""benchmarks/loadgen.py: the one-thread open-loop generator sends what ``http.client`` sends and
records every request once, with its status, against a real local HTTP server."""

from __future__ import annotations

import http.client
import io
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from loadgen import Request, request_bytes, response_status, reusable, run_open_loop  # noqa: E402


class _Capture:
    """A socket stand-in that keeps what ``http.client`` writes."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data

    def makefile(self, *_: Any, **__: Any) -> io.BytesIO:
        return io.BytesIO(b"")

    def close(self) -> None:
        """Nothing to close."""


def _http_client_bytes(req: Request) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", 8123)
    capture = _Capture()
    conn.sock = capture  # type: ignore[assignment]
    method, path, body = req
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    return capture.data


def test_request_bytes_are_http_clients() -> None:
    for req in [("GET", "/fhir/Patient?identifier=a%7Cb", None),
                ("POST", "/api/sessions", b'{"session_id":"x"}')]:
        assert request_bytes("127.0.0.1", 8123, req) == _http_client_bytes(req)


def test_response_status_waits_for_the_whole_body() -> None:
    head = b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\n"
    assert response_status(head + b"ab", closed=False) is None
    assert response_status(head + b"abcd", closed=False) == 201
    assert response_status(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody", closed=False) is None
    assert response_status(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody", closed=True) == 200
    assert response_status(b"HTTP/1.1 200 OK\r\nContent-", closed=False) is None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 — http.server's name
        status = 404 if self.path == "/missing" else 200
        body = b"x" * 100_000 if self.path == "/big" else b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet."""


def test_open_loop_records_each_request_once() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        requests: list[Request] = [("GET", p, None) for p in ["/a", "/big", "/missing"] * 5]
        seen: list[tuple[str, str | None, float]] = []
        start = time.perf_counter() + 0.01
        run_open_loop("127.0.0.1", port, requests, 500.0, (200,),
                      lambda req, due, done, outcome: seen.append((req[1], outcome, done - due)),
                      start)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted((p, o) for p, o, _ in seen) == sorted(
        [("/a", None), ("/big", None), ("/missing", "HTTP 404")] * 5)
    assert all(latency > 0 for _, _, latency in seen)


def test_reusable_only_when_http_11_leaves_it_open() -> None:
    assert reusable(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert not reusable(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert not reusable(b"HTTP/1.1 200 OK\r\nconnection:  Close\r\n\r\n")
    assert not reusable(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"  # answers leave the connection open


def _served(handler: type[BaseHTTPRequestHandler], requests: list[Request], keep_alive: bool
            ) -> tuple[int, list[tuple[str, str | None]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen: list[tuple[str, str | None]] = []
    try:
        opened = run_open_loop("127.0.0.1", server.server_address[1], requests, 200.0, (200,),
                               lambda req, due, done, outcome: seen.append((req[1], outcome)),
                               time.perf_counter() + 0.01, keep_alive=keep_alive)
    finally:
        server.shutdown()
        server.server_close()
    return opened, seen


def test_keep_alive_uses_connections_again_and_records_each_request_once() -> None:
    requests: list[Request] = [("GET", p, None) for p in ["/a", "/big", "/missing"] * 10]
    expected = sorted([("/a", None), ("/big", None), ("/missing", "HTTP 404")] * 10)
    opened, seen = _served(_KeepAliveHandler, requests, keep_alive=True)
    assert sorted(seen) == expected
    assert opened < len(requests)  # at 200/s against a quick server: a few connections serve all
    opened, seen = _served(_KeepAliveHandler, requests, keep_alive=False)
    assert sorted(seen) == expected
    assert opened == len(requests)
    opened, seen = _served(_Handler, requests, keep_alive=True)  # HTTP/1.0: closed each time
    assert sorted(seen) == expected
    assert opened == len(requests)
