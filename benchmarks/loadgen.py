"""An open-loop HTTP load generator on one thread (``selectors``, non-blocking sockets), for
``bench_api.py`` and ``bench_facade.py``.

Request ``i`` is due at ``start + i / rate`` and is sent then, on a fresh connection (or, with
``keep_alive``, on an idle connection an earlier answer left open, as a client with a connection
pool such as ``requests.Session`` or aiohttp does), however many requests are still outstanding;
its latency counts from that due time to the last byte of the answer, so a stalled server is
charged for every request it delayed (no coordinated omission).
The same method as ``bench_api.drive`` (a pool of 64 threads with ``http.client``), with the same
request bytes; it only costs the machine less CPU per request, and the generator shares the 2
cores with the server it measures.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A request: (method, path, body or None).
Request = tuple[str, str, bytes | None]
#: called once per request: (request, due time, finish time, None or what went wrong)
Record = Callable[[Request, float, float, "str | None"], None]
TIMEOUT_S = 30.0
#: keep-alive: a connection idle longer than this is closed here, well before the server's own
#: keep-alive timeout (5 s in fhir_iastm/gunicorn_conf.py) could close it under a request
IDLE_S = 2.0


def request_bytes(host: str, port: int, req: Request) -> bytes:
    """The request as ``http.client`` writes it (same headers in the same order, same body)."""
    method, path, body = req
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
    return (head + "\r\n").encode("ascii") + (body or b"")


def reusable(data: bytes) -> bool:
    """Whether a whole response leaves its connection open (HTTP/1.1, no ``Connection: close``)."""
    head = data[:data.find(b"\r\n\r\n")].decode("latin-1").lower().split("\r\n")
    return head[0].startswith("http/1.1") and not any(
        line.partition(":")[0].strip() == "connection" and "close" in line.partition(":")[2]
        for line in head[1:])


def response_status(data: bytes, closed: bool) -> int | None:
    """The status once ``data`` holds a whole response (by Content-Length, else up to the end of
    the connection); None while more is to come."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return status if len(data) - end - 4 >= int(value) else None
    return status if closed else None


@dataclass
class _Exchange:
    req: Request
    due: float
    out: bytes
    sock: socket.socket
    received: list[bytes] = field(default_factory=list)
    closed: bool = False  # the server closed the connection after (or instead of) answering


def run_open_loop(host: str, port: int, requests: list[Request], rate: float,
                  expect: tuple[int, ...], record: Record, start: float,
                  keep_alive: bool = False) -> int:
    """Send ``requests`` at ``rate`` per second from this thread, request i at ``start + i /
    rate`` (``time.perf_counter`` time); ``record`` each outcome. ``keep_alive``: a connection
    whose answer left it open serves a later request. Returns the connections opened."""
    sel = selectors.DefaultSelector()
    live: dict[socket.socket, _Exchange] = {}
    idle: list[tuple[float, socket.socket]] = []  # (idle since, connection), newest last
    sent = opened = 0

    def finish(ex: _Exchange, outcome: str | None) -> None:
        sel.unregister(ex.sock)
        del live[ex.sock]
        done = time.perf_counter()
        if keep_alive and outcome is None and not ex.closed and reusable(b"".join(ex.received)):
            idle.append((done, ex.sock))
        else:
            ex.sock.close()
        record(ex.req, ex.due, done, outcome)

    def connection(now: float) -> socket.socket | None:
        """An idle kept-alive connection (the newest; stale ones closed), or None."""
        while idle and now - idle[0][0] > IDLE_S:
            idle.pop(0)[1].close()
        return idle.pop()[1] if idle else None

    def launch(req: Request, due: float) -> None:
        nonlocal opened
        sock = connection(time.perf_counter()) if keep_alive else None
        fresh = sock is None
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            opened += 1
        ex = _Exchange(req, due, request_bytes(host, port, req), sock)
        live[sock] = ex
        sel.register(sock, selectors.EVENT_WRITE, ex)
        code = sock.connect_ex((host, port)) if fresh else 0
        if code not in (0, errno.EINPROGRESS):
            finish(ex, errno.errorcode.get(code, "OSError"))

    def writable(ex: _Exchange) -> None:
        code = ex.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            finish(ex, errno.errorcode.get(code, "OSError"))
            return
        ex.out = ex.out[ex.sock.send(ex.out):]
        if not ex.out:
            sel.modify(ex.sock, selectors.EVENT_READ, ex)

    def readable(ex: _Exchange) -> None:
        chunk = ex.sock.recv(65_536)
        if chunk:
            ex.received.append(chunk)
        else:
            ex.closed = True
        status = response_status(b"".join(ex.received), closed=not chunk)
        if status is not None:
            finish(ex, None if status in expect else f"HTTP {status}")
        elif not chunk:
            finish(ex, "IncompleteRead")

    checked = start
    while sent < len(requests) or live:
        now = time.perf_counter()
        while sent < len(requests) and start + sent / rate <= now:
            launch(requests[sent], start + sent / rate)
            sent += 1
        wait = (start + sent / rate - now) if sent < len(requests) else 0.5
        # epoll's timeout is whole milliseconds, rounded up: wait for events at most to the last
        # whole millisecond before the next send, and sleep the rest, so sends are not late
        ready = sel.select(max(0.0, wait - 0.001)) if wait >= 0.001 else sel.select(0)
        if not ready and 0 < wait < 0.001:
            time.sleep(wait)
        for key, _ in ready:
            ex = key.data
            try:
                (writable if ex.out else readable)(ex)
            except OSError as exc:
                finish(ex, type(exc).__name__)
        if now - checked > 1.0:  # answers overdue by TIMEOUT_S count as timeouts
            checked = now
            for ex in [e for e in live.values() if now - e.due > TIMEOUT_S]:
                finish(ex, "TimeoutError")
    sel.close()
    for _, sock in idle:
        sock.close()
    return opened


__all__ = ["Request", "request_bytes", "response_status", "reusable", "run_open_loop"]
