"""`crmsync links confirm|split|join --wait S` waiting for the reconcile lock: SIGTERM ends the
wait at once with one error line, exit 1, as it ends a reconcile's (the process died without a
word, exit 143)."""

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


def test_sigterm_ends_a_links_corrections_wait_for_the_reconcile_lock_with_one_line(
    small_world: World,
) -> None:
    world = small_world
    with open_runtime(str(world.config), connect=False) as rt, reconcile_lock(rt.store):
        confirm = Process(world, "links", "confirm", "E0123456789abcdef01234567", "--wait", "60")
        try:
            assert confirm.wait_for_err("waiting for the job 'reconcile'", timeout=30), confirm.err
            os.kill(confirm.pid, signal.SIGTERM)
            began = time.monotonic()
            code = confirm.finish(timeout=20)
            took = time.monotonic() - began
        finally:
            confirm.kill()
    assert took < 5, f"SIGTERM took {took:.1f}s to end the wait"
    assert code == 1, (code, confirm.err)
    assert confirm.err_lines[-1] == STOPPED, confirm.err
    assert [line for line in confirm.err_lines if "error" in line] == [STOPPED], confirm.err
