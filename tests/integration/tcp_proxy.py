"""A loopback TCP forwarder for fault tests: put it between the worker and HAPI, then switch it
"down" (listening socket closed, live connections cut: new connections are refused) and "up"
again on the same port. HAPI itself is shared by the whole test run and is never stopped.

Only 127.0.0.1: the proxy listens there and forwards to a 127.0.0.1 target.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_CHUNK = 65536


class TcpProxy:
    """``TcpProxy(target_port)``; ``start()`` picks a free port, ``url_for(path)`` builds URLs."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        if target_host not in ("127.0.0.1", "localhost"):
            raise ValueError("the test proxy forwards to loopback only")
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self.accepted = 0  # connections accepted while up (a test can assert traffic went through)

    # -- switching ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen (on a free port the first time, then on the same port) and forward."""
        with self._lock:
            if self._listener is not None:
                return self
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            self._listener = sock
        threading.Thread(
            target=self._accept, args=(sock,), daemon=True, name="proxy-accept"
        ).start()
        return self

    up = start

    def down(self) -> None:
        """Close the listening socket and cut every live connection (then: connection refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            _close(listener)
        for conn in conns:
            _close(conn)

    stop = down

    @property
    def is_up(self) -> bool:
        """True while the proxy accepts connections."""
        return self._listener is not None

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:<proxy port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # -- forwarding --------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:  # the listener was closed by down()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._conns.update((client, upstream))
                self.accepted += 1
            finished = [0]  # directions of this pair that have ended
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(src, dst, finished), daemon=True, name="proxy-pipe"
                ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, finished: list[int]) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:  # cut by down() or by the peer
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        with self._lock:
            finished[0] += 1
            last = finished[0] == 2
            if last:
                self._conns.difference_update((src, dst))
        if last:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


__all__ = ["TcpProxy"]
