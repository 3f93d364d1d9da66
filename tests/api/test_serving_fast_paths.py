"""The per-request fast paths of the serving stack answer exactly as the paths they replace.

``fhir_iastm.serving``: a kept-alive connection the client closed is closed by the worker's main
loop instead of a thread (``peer_closed``), a new connection's first bytes are awaited with one
poll (``readable``); ``api.console_auth.CookieSessions``: Flask's cookie sessions without a new
signing serializer and a cookie lookup per request. Checked on sockets, on the Flask app, and on
the real gunicorn with the project's config (``tests/api/test_serving.py``'s ``gunicorn``).
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.sessions import SecureCookieSessionInterface

from fhir_iastm.api.console_auth import CookieSessions
from fhir_iastm.serving import peer_closed, readable
from tests.api.test_serving import gunicorn


def _pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback: (server side, client side)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        served, _ = listener.accept()
    return served, client


def test_peer_closed_tells_an_end_from_a_next_request_and_consumes_nothing() -> None:
    served, client = _pair()
    served.setblocking(False)
    try:
        assert not peer_closed(served)  # nothing yet: a thread would read it, as before
        client.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(0.05)
        assert not peer_closed(served)  # a next request
        assert served.recv(100) == b"GET / HTTP/1.1\r\n"  # the peek took no byte
        client.close()
        time.sleep(0.05)
        assert peer_closed(served)
    finally:
        served.close()


def test_peer_closed_after_a_last_request_is_not_an_end() -> None:
    # a request sent just before the client half-closes is still served
    served, client = _pair()
    served.setblocking(False)
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    client.shutdown(socket.SHUT_WR)
    time.sleep(0.05)
    try:
        assert not peer_closed(served)
    finally:
        served.close()
        client.close()


def test_peer_closed_on_a_reset_connection() -> None:
    served, client = _pair()
    served.setblocking(False)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # linger 0: RST
    time.sleep(0.05)
    try:
        assert peer_closed(served)
    finally:
        served.close()


def test_readable_waits_for_data_or_an_end_and_gives_up_after_the_timeout() -> None:
    served, client = _pair()
    try:
        started = time.monotonic()
        assert not readable(served, 0.1)
        assert time.monotonic() - started >= 0.09  # it waited
        threading.Timer(0.05, client.sendall, (b"G",)).start()
        assert readable(served, 5)
        assert served.recv(1) == b"G"
        client.close()
        assert readable(served, 5)  # the end is readable too (the thread reads it and closes)
    finally:
        served.close()
    assert not readable(served, 0.01)  # a closed socket: as gthread's wait_for_data


# --- Flask's cookie sessions --------------------------------------------------------------------

@pytest.fixture
def console_app(app_for: Callable[..., Any]) -> Any:
    app = app_for(IASTM_API_TOKENS="dev:read+write", IASTM_CONSOLE_SECRET="s" * 32)
    assert isinstance(app.session_interface, CookieSessions)
    return app


def _login_cookie(client: Any) -> str:
    page = client.get("/console/login")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/console/login", data={"token": "dev", "csrf_token": token})
    assert answer.status_code == 302
    cookie = client.get_cookie("session", path="/console/")
    assert cookie is not None
    return str(cookie.value)


def test_cookie_sessions_read_and_write_the_cookies_of_flasks_own(console_app: Any) -> None:
    stock, ours = SecureCookieSessionInterface(), console_app.session_interface
    with console_app.test_request_context("/console/"):
        signed = stock.get_signing_serializer(console_app).dumps({"actor": "console:x"})
    for interface in (stock, ours):
        assert interface.get_signing_serializer(console_app).loads(signed) == {
            "actor": "console:x"}
    cookie = _login_cookie(console_app.test_client())
    assert stock.get_signing_serializer(console_app).loads(cookie)["actor"].startswith(
        "console:")
    # the logged-in cookie opens the console; no cookie is sent to the login page
    client = console_app.test_client()
    client.set_cookie("session", cookie, path="/console/")
    assert client.get("/console/outbox").status_code == 200
    assert console_app.test_client().get("/console/outbox").status_code == 302


def test_cookie_sessions_follow_a_new_key(console_app: Any) -> None:
    cookie = _login_cookie(console_app.test_client())
    console_app.secret_key = "t" * 32  # the old cookie is no longer valid
    client = console_app.test_client()
    client.set_cookie("session", cookie, path="/console/")
    assert client.get("/console/outbox").status_code == 302
    console_app.config["SECRET_KEY_FALLBACKS"] = ["s" * 32]  # ... unless the old key is a fallback
    client.set_cookie("session", cookie, path="/console/")
    assert client.get("/console/outbox").status_code == 200


def test_api_answers_with_and_without_cookies_are_the_same(console_app: Any) -> None:
    client = console_app.test_client()
    plain = client.get("/healthz")
    client.set_cookie("other", "1")
    with_cookie = client.get("/healthz")
    for answer in (plain, with_cookie):
        assert answer.status_code == 200
        assert "Set-Cookie" not in answer.headers
        assert "Vary" not in answer.headers
    assert plain.get_json() == with_cookie.get_json()
    assert sorted(k for k, _ in plain.headers) == sorted(k for k, _ in with_cookie.headers)


# --- the real gunicorn --------------------------------------------------------------------------

def test_kept_alive_connections_closed_by_clients_free_their_slots(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """One worker allowing 50 connections: 150 clients each send a request on a kept-alive
    connection and close it; had the worker not counted the closed ones out, it would stop
    accepting after 50. A kept-alive connection still serves its next request."""
    with gunicorn(tmp_path_factory.mktemp("keepalive"), WEB_CONCURRENCY="1",
                  GUNICORN_CMD_ARGS="--worker-connections 50") as server:
        for _ in range(150):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") != "close"  # kept alive
            response.read()
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            answers = []
            for _ in range(3):  # three requests on one connection
                conn.request("GET", "/healthz", headers={"X-Request-Id": "a" * 32})
                response = conn.getresponse()
                answers.append((response.status, response.getheader("X-Request-Id"),
                                response.read()))
            assert len(set(answers)) == 1
            assert answers[0][:2] == (200, "a" * 32)
        finally:
            conn.close()


def _close_request(port: int) -> socket.socket:
    """A client that asks for ``Connection: close``, reads the whole answer (the server's FIN)
    and keeps its own end open."""
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := held.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    return held


def test_a_client_keeping_a_closed_connection_open_does_not_stall_the_worker(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The worker drains a closed connection (so its answer is not cut by a reset) in its poller,
    not in its main loop: with one worker, the next client is answered while the first one's
    connection is still draining. Had the main loop drained it (gthread), the next request would
    be accepted only after the drain ended (the client's bytes then meet a closed socket: a
    reset)."""
    with gunicorn(tmp_path_factory.mktemp("linger"), WEB_CONCURRENCY="1") as server:
        for _ in range(3):
            held = _close_request(server.port)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("GET", "/healthz")
                assert conn.getresponse().status == 200
                conn.close()
                held.sendall(b"x" * 100)  # still drained by the server: no reset comes back
                time.sleep(0.3)
                assert held.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                assert held.recv(10) == b""  # the end the server sent
            finally:
                held.close()
        # a drain ends when the client closes; the worker serves on
        held = _close_request(server.port)
        held.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()


# --- the records API's links ---------------------------------------------------------------------

@pytest.mark.parametrize("session_id", [
    "S-2025-0001", "a b", "ü/ß", "x?y=1&z#f", "%41", "..", "a:b;c@d", "'\"<>", "\u2028"])
@pytest.mark.parametrize("root", ["", "/iastm"])
def test_session_links_are_the_urls_flask_builds_for_each_rule(
        app_for: Callable[..., Any], session_id: str, root: str) -> None:
    from flask import url_for

    from fhir_iastm.api.sessions import _links

    app = app_for()
    with app.test_request_context("/api/sessions", base_url=f"http://localhost{root}/"):
        assert _links(session_id) == {
            "self": url_for("sessions.get_session", session_id=session_id),
            "fhir": url_for("sessions.get_session_fhir", session_id=session_id),
            "sync": url_for("sessions.get_sync", session_id=session_id),
        }
        assert _links(session_id)["self"].startswith(f"{root}/api/sessions/")


class _Wire:
    """A socket stand-in that records each ``sendall``."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def _answer(response_class: type, request: bytes, status: str,
            headers: list[tuple[str, str]], chunks: list[bytes]) -> list[bytes]:
    """What gunicorn's ``response_class`` sends for one request answered with ``chunks``."""
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    cfg = Config()
    req = next(iter(RequestParser(cfg, [request], ("127.0.0.1", 1))))
    wire = _Wire()
    resp = response_class(req, wire, cfg)
    resp.start_response(status, headers)
    for chunk in chunks:
        resp.write(chunk)
    resp.close()
    return wire.sends


@pytest.mark.parametrize(("request_bytes", "status", "headers", "chunks", "sends"), [
    (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK",
     [("Content-Type", "application/json"), ("Content-Length", "11")], [b'{"a":"ok"}\n'], 1),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "404 NOT FOUND",
     [("Content-Length", "2"), ("X-Request-Id", "ab")], [b"{}"], 1),
    (b"GET /x HTTP/1.0\r\n\r\n", "200 OK", [("Content-Length", "3")], [b"abc"], 1),
    # gunicorn's own path: a body in two writes, chunked, none (304, HEAD), too long a write
    (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK", [("Content-Length", "4")],
     [b"ab", b"cd"], 2),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK", [], [b"abc", b"de"], 4),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "304 NOT MODIFIED", [("ETag", 'W/"1"')], [], 1),
    (b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK", [("Content-Length", "3")], [b"abc"], 1),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK", [("Content-Length", "2")], [b"abcd"], 2),
])
def test_one_send_response_writes_the_bytes_of_gunicorns_own(
        request_bytes: bytes, status: str, headers: list[tuple[str, str]], chunks: list[bytes],
        sends: int) -> None:
    from gunicorn.http.wsgi import Response

    from fhir_iastm.serving import OneSendResponse

    theirs = _answer(Response, request_bytes, status, headers, chunks)
    ours = _answer(OneSendResponse, request_bytes, status, headers, chunks)
    dated = re.compile(rb"\r\nDate: [^\r]*\r\n")  # the clock may tick between the two
    assert dated.search(b"".join(ours))
    assert dated.sub(b"", b"".join(ours)) == dated.sub(b"", b"".join(theirs))
    assert len(ours) == sends


def test_the_served_worker_answers_whole_on_a_kept_alive_connection(tmp_path: Path) -> None:
    # the served worker (its responses are OneSendResponses): a whole answer, Content-Length
    # and all, and the connection stays usable for the next request
    with gunicorn(tmp_path) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/healthz")
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 200
        assert int(answer.headers["Content-Length"]) == len(body)
        assert answer.headers["Connection"] == "keep-alive"
        assert answer.headers["Content-Type"] == "application/json"
        conn.request("GET", "/healthz")  # the kept-alive connection answers again
        assert conn.getresponse().read() == body
        conn.close()


@pytest.mark.parametrize("debug", [False, True])
def test_healthz_answers_what_jsonify_answers(app_for: Callable[..., Any], debug: bool) -> None:
    # the constant answer is kept, by debug mode (jsonify indents there), not rebuilt each time
    from flask import jsonify

    from fhir_iastm import __version__

    app = app_for()
    app.debug = debug
    client = app.test_client()
    answers = [client.get("/healthz") for _ in range(2)]
    with app.test_request_context("/healthz"):
        expected = jsonify({"status": "ok", "version": __version__})
    for answer in answers:
        assert answer.status_code == 200
        assert answer.get_data() == expected.get_data()
        assert [(k, v) for k, v in answer.headers.items() if k != "X-Request-Id"] == list(
            expected.headers.items())
    assert (b"\n  " in answers[0].get_data()) is debug
