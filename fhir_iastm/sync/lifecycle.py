"""What keeps an outbox worker's claim alive and ends its run: the lease heartbeat (a thread
extending the lease of the entry being pushed) and SIGTERM/SIGINT handling (``sync.worker``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fhir_iastm.sync.ports import OutboxEntry, OutboxPort


@contextmanager
def lease_heartbeat(
    store: OutboxPort[Any], item: OutboxEntry, lease_seconds: float, *, enabled: bool = True
) -> Iterator[None]:
    """Extend the lease every ``lease_seconds / 3`` while a push runs: a slow push (client
    retries, long timeouts) keeps its claim, yet a crashed worker's claim still expires soon."""
    done = threading.Event()

    def beat() -> None:
        current = item
        while not done.wait(lease_seconds / 3):
            try:
                current = store.extend_lease(current, lease_seconds)
            except Exception:  # lease lost or store unreachable: complete() will find out
                return

    thread = threading.Thread(target=beat, name=f"lease-{item.id}", daemon=True)
    if enabled:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if enabled:
            thread.join()


@contextmanager
def stop_on_signals(stop: threading.Event,
                    on_signal: Callable[[str], None] | None = None) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop``, after ``on_signal(name)`` (main thread only; elsewhere this
    does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        if on_signal is not None:
            on_signal(signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["lease_heartbeat", "stop_on_signals"]
