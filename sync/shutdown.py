"""Graceful stop: one process-wide flag that long-running work polls between batches.

`crmsync schedule` sets it on SIGTERM/SIGINT. Work in progress (a pull, an apply batch) is not
cut mid-write: the scheduler waits for the current job, which finishes its current batch and
records itself as interrupted; the apply journal lets the next run resume. The apply engine
polls :func:`stop_requested` (or ``stop_event``) between batches.

The signal's one line says what the stop does, and only what is true: the work under way
(:func:`stoppable_work`: a command's body, a scheduled job) finishes its current batch. Work
that is only waiting for a lock another process holds (:func:`waiting_for_another_process`)
has no batch: the stop ends the wait at once, and the wait's own error line says so.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType

__all__ = [
    "STOPPED",
    "Stopped",
    "Terminated",
    "stop_event",
    "stop_on_signals",
    "stop_requested",
    "stop_signal",
    "stoppable_work",
    "stopped_on_request",
    "terminate_as_interrupt",
    "waiting_for_another_process",
]

stop_event = threading.Event()
# Why work a stop left undone was not attempted (the next run does it).
STOPPED = "stopped on request (SIGTERM)"
# The signal that asked for the stop under way: `crmsync schedule` stops gracefully on SIGINT too.
_asked_by = ["SIGTERM"]

_log = logging.getLogger("crmsync.schedule")


class _Count:
    """How many of something are under way. Changed under a mutex by any thread; the signal
    handler only reads it (it runs in the main thread, which may hold the mutex then)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self.value = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            self.value += 1
        try:
            yield
        finally:
            with self._mutex:
                self.value -= 1


_work = _Count()  # units of work under way: a command's body, a scheduled job's run
_waiting = _Count()  # of those, the ones now waiting for a lock another process holds


def stoppable_work() -> AbstractContextManager[None]:
    """The ``with`` body is work a stop lets finish its current batch: a scheduled job's run,
    or the body of :func:`stop_on_signals` (unless told otherwise)."""
    return _work.held()


def waiting_for_another_process() -> AbstractContextManager[None]:
    """The ``with`` body waits for a lock another process holds: a stop ends it at once (the
    waiter raises, with its own line), so the signal's line promises no batch for it."""
    return _waiting.held()


def _stopping_line(name: str, *, again: bool = False) -> str | None:
    """What the signal's line says (`again`: a signal after the first), or None."""
    work, waiting = _work.value, _waiting.value
    if not work:
        return f"{name}: stopping (no job is running)"
    if waiting >= work:  # every unit of work only waits: each says itself how its wait ended
        return None
    if again:
        return f"{name} again: still finishing the current batch"
    return f"{name}: stopping after the current batch"


def stop_signal() -> str:
    """The name of the signal that asked for the stop: SIGTERM, or SIGINT (Ctrl-C in
    `crmsync schedule`, which finishes the batch on both)."""
    return _asked_by[0]


def stopped_on_request() -> str:
    """:data:`STOPPED`, naming the signal that asked for the stop."""
    return f"stopped on request ({stop_signal()})"


def stop_requested() -> bool:
    """True once a stop was asked for: finish the current batch, then return."""
    return stop_event.is_set()


@contextmanager
def stop_on_signals(
    event: threading.Event = stop_event,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    *,
    work: bool = True,
) -> Iterator[threading.Event]:
    """Set ``event`` on the given signals for the ``with`` body (main thread only). The body
    is one unit of :func:`stoppable_work` unless ``work`` is false (the scheduler's: its jobs
    are, each while it runs)."""

    def _handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        line = _stopping_line(name, again=event.is_set())
        if line is not None:
            _log.warning("%s", line)
        if not event.is_set():
            _asked_by[0] = name
        event.set()

    previous = {sig: signal.signal(sig, _handle) for sig in signals}
    try:
        with stoppable_work() if work else nullcontext():
            yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _asked_by[0] = "SIGTERM"


class Stopped(Exception):
    """A stop (SIGTERM) ended work early, between two batches or before the first: what was
    done is kept, the run is recorded as interrupted, and the message (one line) says what the
    next run does."""

    exit_code = 1


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
