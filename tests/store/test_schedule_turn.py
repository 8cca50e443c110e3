"""The turn of scheduled reconciles (sync.locks.schedule_turn): a scheduler waits for another
machine's scheduled reconcile, saying so at info, and not for ever: a turn held past its
timeout (say, by the session of a machine that went down) ends the wait with one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sync.locks import SCHEDULE_TURN, LockBusy, schedule_turn
from sync.store import Store
from tests.lock_holders import held_elsewhere

HOLDING = """
import sys
from sync.locks import schedule_turn
from sync.store import Store
from tests.lock_holders import hold_until_stopped

ready, stop, url = sys.argv[1:]
with Store.open(url) as store, schedule_turn(store):
    hold_until_stopped(ready, stop)
"""


def test_a_turn_held_past_the_timeout_ends_the_wait_with_one_line_after_an_info_line(
    store: Store, store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        held_elsewhere(tmp_path, HOLDING, store_url),
        caplog.at_level(logging.INFO),
        pytest.raises(LockBusy) as busy,
        schedule_turn(store, timeout=0.6),
    ):
        pytest.fail("took the turn another process holds")
    assert busy.value.job == SCHEDULE_TURN
    assert str(busy.value) == (
        "scheduled reconcile is still running after waiting 0.6s (lock held by another "
        "process); let it finish (`crmsync runs` shows it) and run this again"
    )
    waits = [r for r in caplog.records if "waiting for the scheduled reconcile" in r.message]
    assert [(r.levelno, r.message) for r in waits] == [
        (logging.INFO, "waiting for the scheduled reconcile another process is running")
    ]


def test_a_turn_is_taken_at_once_when_no_other_scheduler_holds_it(store: Store) -> None:
    with schedule_turn(store, timeout=0):
        pass
    with schedule_turn(store, timeout=0):  # released: taken again
        pass
