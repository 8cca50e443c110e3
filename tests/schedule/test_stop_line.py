"""The line a SIGTERM prints says what the stop does, and nothing untrue: "stopping after the
current batch" only while some work is under way that is not just waiting for a lock another
process holds (a stop ends such a wait at once, and the wait says so itself)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack

import pytest

from sync.shutdown import stop_on_signals, stoppable_work, waiting_for_another_process

BATCH = "SIGTERM: stopping after the current batch"
Block = Callable[[], AbstractContextManager[object]]


def _said_on_sigterm(
    caplog: pytest.LogCaptureFixture, work: bool, *blocks: Block, times: int = 1
) -> list[str]:
    event = threading.Event()
    with caplog.at_level(logging.WARNING, logger="crmsync.schedule"), ExitStack() as stack:
        stack.enter_context(stop_on_signals(event, signals=(signal.SIGTERM,), work=work))
        for block in blocks:
            stack.enter_context(block())
        for _ in range(times):
            signal.raise_signal(signal.SIGTERM)
        assert event.is_set()
    return [r.getMessage() for r in caplog.records if r.name == "crmsync.schedule"]


def test_sigterm_while_a_command_only_waits_for_another_process_promises_no_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _said_on_sigterm(caplog, True, waiting_for_another_process) == []


def test_sigterm_while_a_command_works_says_it_stops_after_the_current_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _said_on_sigterm(caplog, True) == [BATCH]


def test_sigterm_while_one_scheduled_job_waits_and_another_works_says_the_batch_finishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocks = (stoppable_work, stoppable_work, waiting_for_another_process)
    assert _said_on_sigterm(caplog, False, *blocks) == [BATCH]


def test_sigterm_while_the_only_scheduled_job_waits_promises_no_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _said_on_sigterm(caplog, False, stoppable_work, waiting_for_another_process) == []


def test_sigterm_to_an_idle_scheduler_says_no_job_is_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _said_on_sigterm(caplog, False) == ["SIGTERM: stopping (no job is running)"]


def test_a_second_sigterm_promises_a_batch_only_while_one_is_under_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    again = "SIGTERM again: still finishing the current batch"
    assert _said_on_sigterm(caplog, True, times=2) == [BATCH, again]
    caplog.clear()
    idle = "SIGTERM: stopping (no job is running)"
    assert _said_on_sigterm(caplog, False, times=2) == [idle, idle]
    caplog.clear()
    assert _said_on_sigterm(caplog, True, waiting_for_another_process, times=2) == []
