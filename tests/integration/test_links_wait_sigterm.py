"""`crmsync links confirm|split|join --wait S` waiting for the reconcile lock: SIGTERM ends the
wait at once with one error line, exit 1, as it ends a reconcile's (the process died without a
word, exit 143). A reconcile's own `--wait` for that lock ends so too, with no line promising a
batch to finish."""

from __future__ import annotations

import os
import signal
import time

from sync.locks import reconcile_lock
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.processes import Process

STOPPED = (
    "crmsync: error: stopped on request (SIGTERM) while waiting for the job 'reconcile' another "
    "process is running; nothing was done: run it again"
)


def _sigterm_while_waiting_for_the_reconcile_lock(world: World, *args: str) -> Process:
    """`crmsync *args` waiting for the reconcile lock another holder keeps, sent SIGTERM;
    ended within 5 s."""
    with open_runtime(str(world.config), connect=False) as rt, reconcile_lock(rt.store):
        waiter = Process(world, *args)
        try:
            assert waiter.wait_for_err("waiting for the job 'reconcile'", timeout=30), waiter.err
            os.kill(waiter.pid, signal.SIGTERM)
            began = time.monotonic()
            waiter.finish(timeout=20)
            took = time.monotonic() - began
        finally:
            waiter.kill()
    assert took < 5, f"SIGTERM took {took:.1f}s to end the wait"
    return waiter


def test_sigterm_ends_a_links_corrections_wait_for_the_reconcile_lock_with_one_line(
    small_world: World,
) -> None:
    confirm = _sigterm_while_waiting_for_the_reconcile_lock(
        small_world, "links", "confirm", "E0123456789abcdef01234567", "--wait", "60"
    )
    assert confirm.popen.returncode == 1, (confirm.popen.returncode, confirm.err)
    assert confirm.err_lines[-1] == STOPPED, confirm.err
    assert [line for line in confirm.err_lines if "error" in line] == [STOPPED], confirm.err


def test_sigterm_ends_a_reconciles_wait_for_the_reconcile_lock_with_that_line_alone(
    small_world: World,
) -> None:
    reconcile = _sigterm_while_waiting_for_the_reconcile_lock(
        small_world, "reconcile", "--yes", "--wait", "60"
    )
    assert reconcile.popen.returncode == 1, (reconcile.popen.returncode, reconcile.err)
    said = [line for line in reconcile.err_lines if line.startswith("crmsync: ")]
    assert said == [
        "crmsync: warning: waiting for the job 'reconcile' another process is running",
        STOPPED,
    ], reconcile.err
