"""An open-loop HTTP load generator on one thread (``selectors``, non-blocking sockets), for
``bench_api.py`` and ``bench_facade.py``.

Request ``i`` is due at ``start + i / rate`` and is sent then, on a fresh connection, however many
requests are still outstanding; its latency counts from that due time to the last byte of the
answer, so a stalled server is charged for every request it delayed (no coordinated omission).
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


def request_bytes(host: str, port: int, req: Request) -> bytes:
    """The request as ``http.client`` writes it (same headers in the same order, same body)."""
    method, path, body = req
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
    return (head + "\r\n").encode("ascii") + (body or b"")


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


def run_open_loop(host: str, port: int, requests: list[Request], rate: float,
                  expect: tuple[int, ...], record: Record, start: float) -> None:
    """Send ``requests`` at ``rate`` per second from this thread, request i at ``start + i /
    rate`` (``time.perf_counter`` time); ``record`` each outcome."""
    sel = selectors.DefaultSelector()
    live: dict[socket.socket, _Exchange] = {}
    sent = 0

    def finish(ex: _Exchange, outcome: str | None) -> None:
        sel.unregister(ex.sock)
        ex.sock.close()
        del live[ex.sock]
        record(ex.req, ex.due, time.perf_counter(), outcome)

    def launch(req: Request, due: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        ex = _Exchange(req, due, request_bytes(host, port, req), sock)
        live[sock] = ex
        sel.register(sock, selectors.EVENT_WRITE, ex)
        code = sock.connect_ex((host, port))
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


__all__ = ["Request", "request_bytes", "response_status", "run_open_loop"]
