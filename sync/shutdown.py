"""Graceful stop: one process-wide flag that long-running work polls between batches.

`crmsync schedule` sets it on SIGTERM/SIGINT. Work in progress (a pull, an apply batch) is not
cut mid-write: the scheduler waits for the current job, which finishes its current batch and
records itself as interrupted; the apply journal lets the next run resume. The apply engine
polls :func:`stop_requested` (or ``stop_event``) between batches.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

__all__ = [
    "STOPPED",
    "Terminated",
    "stop_event",
    "stop_on_signals",
    "stop_requested",
    "terminate_as_interrupt",
]

stop_event = threading.Event()
# Why work a stop left undone was not attempted (the next run does it).
STOPPED = "stopped on request (SIGTERM)"

_log = logging.getLogger("crmsync.schedule")


def stop_requested() -> bool:
    """True once a stop was asked for: finish the current batch, then return."""
    return stop_event.is_set()


@contextmanager
def stop_on_signals(
    event: threading.Event = stop_event,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[threading.Event]:
    """Set ``event`` on the given signals for the ``with`` body (main thread only)."""

    def _handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if event.is_set():
            _log.warning("%s again: still finishing the current batch", name)
            return
        _log.warning("%s: stopping after the current batch", name)
        event.set()

    previous = {sig: signal.signal(sig, _handle) for sig in signals}
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM in a command with no batch to finish first (pull, report): it stops at once,
    as on Ctrl-C (what it saved stays; its cursors moved only with it), and says SIGTERM."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM for the ``with`` body (main thread only), so that
    the run is recorded as interrupted instead of staying `running` after the process died."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Terminated(STOPPED)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
