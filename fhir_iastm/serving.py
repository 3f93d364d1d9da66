"""The serving model of ``scripts/run`` — its worker class and its logger.

Why threads with socket timeouts (docs/serving in README "Serving"): the service is CPU-light per
request but clients may be slow. gunicorn's ``gthread`` worker parks idle connections in a poller,
so a client that connects and sends nothing costs no thread; but once a request has started, a
thread reads it with a blocking socket, and a client that sends headers announcing 1000 bytes and
then one byte would hold that thread for ever (with the ``sync`` worker: the whole process, until
the arbiter kills it). ``ThreadWorker`` makes every blocking read and write on a client socket
time out after ``IASTM_CLIENT_TIMEOUT_S`` seconds, and the body reader (``api.body``) bounds the
whole body by ``IASTM_BODY_TIMEOUT_S``; so a stalled client holds one of the
``workers x threads`` threads for at most those seconds, and the others keep answering.

What every request pays is kept small (benchmarks/README.md, "http: ..."): a kept-alive
connection the client closed is closed by the main loop without a trip through the thread pool;
a new connection's first bytes are awaited with one poll(2); the arbiter is told the worker lives
at most every ``NOTIFY_EVERY_S``; and a connection being closed is drained (RFC 9112 §9.6, so
the last answer is not cut by a reset) from the poller, not by a blocking read in the main loop,
so a client that asks for ``Connection: close`` and keeps its socket open stalls nothing; and an
answer's head and body go out in one send (``OneSendResponse``), not two.

A worker the arbiter aborts (its main loop silent for ``timeout`` seconds, or a SIGABRT) first
answers every request it holds whose response has not started with a 503 OperationOutcome, so a
client sees why instead of a cut connection. A worker killed outright (SIGKILL after the
graceful timeout) cannot answer.

gunicorn's own output goes through the project's JSON formatter (``fhir_iastm.logging``): its
access log is off (the app logs every request without PHI), a message keeps its arguments only
when they are numbers or the message is one of gunicorn's start-up lines, and errors that
gunicorn answers itself (400, 414, 431 …) are OperationOutcomes naming no request content.
"""

from __future__ import annotations

import json
import logging
import select
import selectors
import socket
import sys
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import glogging, util
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.workers import gthread as gthread_module
from gunicorn.workers.gthread import ThreadWorker as _GThreadWorker

from fhir_iastm.config import Settings
from fhir_iastm.errors import Issue, operation_outcome
from fhir_iastm.logging import JsonFormatter

#: how long a thread waits for the first byte of a new connection before parking it
IDLE_WAIT_S = 0.2
#: the worker tells the arbiter it is alive at most this often (its main loop wakes several times
#: per request; the arbiter's ``timeout`` is 30 s and it checks once a second)
NOTIFY_EVERY_S = 0.05
#: a closed connection's read side is drained this long at most, and this many bytes (the values
#: of gunicorn's ``util.close_graceful``), so the client's last answer is not cut by a reset
LINGER_S = 2.0
LINGER_BYTES = 65536

#: gunicorn's start-up and shutdown lines whose arguments carry no request data.
SAFE_TEMPLATES = frozenset({
    "Starting gunicorn %s", "Listening at: %s (%s)", "Using worker: %s",
    "Booting worker with pid: %s", "Worker exiting (pid: %s)", "Handling signal: %s",
    "Shutting down: %s", "Control socket listening at %s",
})

#: gunicorn parse error -> (status, reason, what we tell the client); anything else is a 400.
_ERRORS: list[tuple[type[BaseException], int, str, str]] = [
    (http_errors.LimitRequestLine, 414, "URI Too Long", "the request line is too long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large",
     "the request headers are too large or too many"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented",
     "the transfer coding is not supported"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "the expectation is not supported"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "the request is forbidden"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", "internal server error"),
]
_ISSUE_CODES = {400: ("invalid", "E_BAD_REQUEST"), 403: ("forbidden", "E_FORBIDDEN"),
                414: ("too-long", "E_BAD_REQUEST"), 431: ("too-long", "E_BAD_REQUEST"),
                417: ("not-supported", "E_BAD_REQUEST"), 501: ("not-supported", "E_BAD_REQUEST"),
                503: ("transient", "E_INTERNAL")}
#: what a request held by an aborted worker is told
ABORTED = (503, "Service Unavailable",
           "the server stopped this request (worker restarted); retry it")


class OneSendResponse(gunicorn_wsgi.Response):  # type: ignore[misc]
    """gunicorn's response whose head goes out with the first body bytes in one ``sendall``
    instead of two: one system call and one loopback/TCP delivery less per answer. Only for a
    body of known length (``Content-Length``, what Flask answers) whose first write fits it;
    anything else (chunked, no body, HEAD, 204/304, a longer first write) is gunicorn's own
    path. The bytes on the wire are the same."""

    def write(self, arg: bytes) -> None:
        sent: bool = self.headers_sent  # type: ignore[has-type]  # gunicorn is untyped
        if (sent or self.chunked or self._omits_body or not isinstance(arg, bytes)
                or self.response_length is None or len(arg) > self.response_length):
            super().write(arg)
            return
        lines = self.default_headers()
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers)  # str, checked by gunicorn
        head = ("".join(lines) + "\r\n").encode("latin-1")  # as gunicorn's send_headers
        self.headers_sent = True
        self.sent += len(arg)
        self.sock.sendall(head + arg)


class _TimedSocket(socket.socket):
    """A client socket whose blocking mode is a timeout, so no read or write waits for ever."""

    __slots__ = ()
    io_timeout: float = 10.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.io_timeout)
        else:
            super().setblocking(False)


def readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has data (or an end or error to report) within ``timeout`` seconds: one
    poll(2), instead of gthread's new epoll selector (four system calls) per connection."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    except (OSError, ValueError):  # closed or invalid socket, as gthread's wait_for_data
        return False


def peer_closed(sock: socket.socket) -> bool:
    """Whether a non-blocking, kept-alive client socket that the poller reports readable holds
    the end of the connection (or an error) rather than a next request."""
    try:
        return not sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return False  # nothing after all: a thread reads it, as before
    except OSError:
        return True  # reset: the thread's read would fail the same way and close it


def error_status(exc: BaseException, client_error: bool = True) -> tuple[int, str, str]:
    """(status, reason, message) for an error gunicorn met before the app saw the request."""
    for kind, status, reason, message in _ERRORS:
        if isinstance(exc, kind):
            return status, reason, message
    if client_error:
        return 400, "Bad Request", "malformed HTTP request"
    return 500, "Internal Server Error", "internal server error"


def outcome_bytes(status: int, reason: str, message: str, base: str | None = None) -> bytes:
    """A complete HTTP/1.1 response carrying an OperationOutcome, its project URLs under the
    canonical ``base`` (the connection closes)."""
    issue_type, code = _ISSUE_CODES.get(status, ("exception", "E_INTERNAL"))
    severity = "fatal" if status >= 500 else "error"
    issue = Issue(severity, issue_type, None, message, code)
    body = json.dumps(operation_outcome([issue], base=base))
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n")
    return (head + body).encode("ascii")


class ThreadWorker(_GThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with client socket timeouts, no queueing behind busy threads,
    and OperationOutcome errors."""

    def init_process(self) -> None:
        settings = Settings.from_env()
        _TimedSocket.io_timeout = settings.client_timeout_s
        self.canonical_base = settings.canonical_base
        self.busy = 0
        self.notified = 0.0
        #: closed connections draining their read side: (deadline, socket, bytes drained)
        self.lingering: deque[tuple[float, socket.socket, list[int]]] = deque()
        #: client socket of each request in the app now -> whether its response has started
        self.in_app: dict[Any, bool] = {}
        super().init_process()  # runs the worker until it stops

    def set_accept_enabled(self, enabled: bool) -> None:
        # A worker whose threads are all busy leaves new connections to the other workers (or
        # the listen backlog) instead of queueing them behind a slow client.
        super().set_accept_enabled(enabled and self.busy < self.cfg.threads)

    def enqueue_req(self, conn: Any) -> None:
        if type(conn.sock) is socket.socket:
            conn.sock.__class__ = _TimedSocket
        self.busy += 1
        if self.busy >= self.cfg.threads:
            self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def notify(self) -> None:
        now = time.monotonic()
        if now - self.notified >= NOTIFY_EVERY_S:
            self.notified = now
            super().notify()

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        # A kept-alive connection the client closed: close it here, as the thread it would be
        # handed to would (its read finds no request, the connection closes gracefully), without
        # a round trip through the thread pool. Anything else goes to a thread, as before.
        if peer_closed(client):
            self.poller.unregister(client)
            self.keepalived_conns.remove(conn)
            self.nr_conns -= 1
            conn.close(graceful=True)
            return
        super().on_client_socket_readable(conn, client)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.busy -= 1
        self.in_app.pop(conn.sock, None)
        if fs.cancelled() or (fs.exception() is None and not fs.result()):
            # A connection to close: gthread would drain it here, blocking the main loop until
            # the client closes (up to 2 s: one client that asks for "Connection: close" and
            # keeps its socket open stalls the worker). The poller drains it instead.
            self.nr_conns -= 1
            self.linger(conn.sock)
            return
        super().finish_request(conn, fs)

    def linger(self, sock: socket.socket) -> None:
        """Close ``sock`` as ``util.close_graceful`` does (FIN, drain the read side until the
        client closes, ``LINGER_S`` or ``LINGER_BYTES``, then close), waiting in the poller."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            drained = [0]
            self.poller.register(sock, selectors.EVENT_READ, partial(self.drain, drained))
        except (OSError, ValueError):
            util.close(sock)
            return
        self.lingering.append((time.monotonic() + LINGER_S, sock, drained))

    def drain(self, drained: list[int], sock: socket.socket) -> None:
        """Read what a lingering client sent; close at its end, an error, or the byte cap."""
        try:
            while drained[0] < LINGER_BYTES:
                data = sock.recv(4096)
                if not data:
                    break
                drained[0] += len(data)
        except (BlockingIOError, InterruptedError):
            return  # all read for now: linger on
        except OSError:
            pass
        self.poller.unregister(sock)
        util.close(sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        self.end_lingering()

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        if force:  # the worker stops: close every lingering connection now
            self.end_lingering(force=True)

    def end_lingering(self, force: bool = False) -> None:
        """Close the lingering connections whose time is up."""
        now = time.monotonic()
        while self.lingering and (force or self.lingering[0][0] <= now):
            _, sock, _ = self.lingering.popleft()
            if sock.fileno() >= 0:  # not closed by ``drain`` already
                self.poller.unregister(sock)
                util.close(sock)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Any = self.wsgi  # type: ignore[has-type]  # set by gunicorn (untyped)
        in_app = self.in_app

        def tracked(environ: dict[str, Any], start_response: Any) -> Any:
            sock = environ.get("gunicorn.socket")
            in_app[sock] = False
            response = getattr(start_response, "__self__", None)
            if type(response) is gunicorn_wsgi.Response:
                response.__class__ = OneSendResponse

            def start(*args: Any) -> Any:
                in_app[sock] = True
                return start_response(*args)
            return app(environ, start)

        self.wsgi = tracked

    def handle_abort(self, sig: Any, frame: Any) -> None:
        # Tell every client whose answer has not started why its connection ends.
        answer = outcome_bytes(*ABORTED, getattr(self, "canonical_base", None))
        waiting = [s for s, started in list(getattr(self, "in_app", {}).items()) if not started]
        for sock in waiting:
            try:
                sock.settimeout(0.5)
                sock.sendall(answer)
                sock.shutdown(socket.SHUT_RDWR)  # the request's thread writes nothing more
            except OSError:
                continue
        self.log.warning("worker aborted", extra={"fields": {"answered_503": len(waiting)}})
        super().handle_abort(sig, frame)

    def handle(self, conn: Any) -> Any:
        # gthread lets a silent new connection hold a thread for 5 s before parking it in the
        # poller; park it after IDLE_WAIT_S instead.
        if not conn.initialized and not conn.data_ready:
            if not readable(conn.sock, IDLE_WAIT_S):
                return gthread_module._DEFER
            conn.data_ready = True
        return super().handle(conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        # InvalidResponseHeader* are ParseExceptions too, but the app's fault: a 500
        client_error = (isinstance(exc, http_errors.ParseException)
                        and "Response" not in type(exc).__name__)
        status, reason, message = error_status(exc, client_error)
        self.log.warning("request refused by the server",
                         extra={"fields": {"status": status, "error": type(exc).__name__}})
        if not client_error:
            self.log.error("unhandled error in the server", exc_info=exc)
        try:
            base = getattr(self, "canonical_base", None)
            util.write_nonblock(client, outcome_bytes(status, reason, message, base))
        except OSError:
            self.log.debug("could not send the error response")


class _Redact(logging.Filter):
    """Keep a message's arguments only when they cannot carry request data."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        safe = record.msg in SAFE_TEMPLATES or all(
            isinstance(a, (int, float)) for a in args)
        if not safe:
            record.args = ()
            fields = dict(getattr(record, "fields", {}))
            fields["redacted"] = True
            record.fields = fields
        return True


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger writing JSON lines through ``JsonFormatter``; no access log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(_Redact())
        self.error_log.addHandler(handler)
        self.error_log.propagate = False
        self.access_log.propagate = False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Not logged here: the app logs every request (route rule, status, no PHI)."""


__all__ = ["JsonLogger", "OneSendResponse", "ThreadWorker", "error_status", "outcome_bytes"]
