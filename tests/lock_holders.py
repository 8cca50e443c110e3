"""Another process holding a lock (or running under one) until the test lets it go.

A holder is a ``python -c`` script run from the repository root with ``ready`` and ``stop``
file paths as its first two arguments and the test's own after them. Once it holds what it
should, it calls :func:`hold_until_stopped`, which says so in ``ready`` (with a note: a run
id, say) and waits for ``stop``::

    from tests.lock_holders import hold_until_stopped
    ready, stop, url, job = sys.argv[1:]
    with Store.open(url) as store, job_lock(store, job):
        hold_until_stopped(ready, stop)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unique_lock_name(prefix: str) -> str:
    """``prefix`` made unique: advisory locks are database-wide, and test runs side by side
    (or one's leftovers) must not hold each other's locks."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def hold_until_stopped(ready: str, stop: str, note: str = "held") -> None:
    """In the holder: write ``note`` (not empty) to ``ready``, then wait for ``stop``."""
    Path(ready).write_text(note)
    while not Path(stop).exists():
        time.sleep(0.05)


@dataclass(frozen=True)
class Holder:
    process: subprocess.Popen[str]
    note: str  # what the holder wrote to its ready file

    def kill(self) -> None:
        """Kill -9 the holder (it can record nothing more) and wait for its end."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextmanager
def held_elsewhere(tmp: Path, script: str, *args: str) -> Iterator[Holder]:
    """``script`` running in a process of its own and holding (it has called
    :func:`hold_until_stopped`) for the block; then told to stop, and waited for."""
    ready, stop = tmp / "holder-ready", tmp / "holder-stop"
    for left in (ready, stop):  # by an earlier holder of this test
        left.unlink(missing_ok=True)
    command = [sys.executable, "-c", script, str(ready), str(stop), *args]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"lock holder did not start: {process.communicate()}")
            time.sleep(0.05)
        yield Holder(process, ready.read_text())
    finally:
        stop.touch()
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
