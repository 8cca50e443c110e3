"""`crmsync schedule` stops cleanly on SIGTERM: the run is recorded as interrupted, lock freed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.sandbox.launcher import Sandbox
from sync.locks import job_lock
from sync.store import RunStatus, Store

pytestmark = pytest.mark.postgres

CRMSYNC = Path(sys.executable).with_name("crmsync")


def test_sigterm_mid_run_records_an_interrupted_run_and_frees_the_lock(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path], slow_sandbox: Sandbox
) -> None:
    url = new_store_url("postgresql")
    config = write_config(url, {"name": "nightly-apply", "cron": "0 * * * *", "job": "reconcile"})
    earlier = datetime.now(UTC) - timedelta(hours=5)
    with Store.open(url, clock=lambda: earlier) as past:  # so the start catches a firing up
        past.runs.finish(past.runs.start("nightly-apply", "reconcile"), "ok")

    command = [str(CRMSYNC), "schedule", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Store.open(url) as store:
            deadline = time.monotonic() + 30
            recent = store.runs.recent
            while not [r for r in recent(5, job="nightly-apply") if r.started_at > earlier]:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the missed firing was not run"
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
            assert process.returncode == 0, err
            run = store.runs.recent(1, job="nightly-apply")[0]
            assert run.status == RunStatus.INTERRUPTED, (run, err)
            assert run.finished_at is not None and "SIGTERM" in (run.error or "")
            assert run.calls  # the calls made before stopping are on record
            with job_lock(store, "nightly-apply"):  # free: taken at once, not LockBusy
                pass
        assert "SIGTERM: stopping after the current batch" in err
        assert "nightly-apply: interrupted" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
