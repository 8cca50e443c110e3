"""Ctrl-C (SIGINT) stops a scheduled job as SIGTERM does, and its lines name SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from connectors.sandbox.launcher import Sandbox
from sync.store import RunStatus, Store

CRMSYNC = Path(sys.executable).with_name("crmsync")


def test_ctrl_c_during_a_scheduled_job_says_sigint_not_sigterm(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path], slow_sandbox: Sandbox
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, {"name": "nightly-plan", "cron": "0 2 * * *",
                                "job": "reconcile-dry-run"})  # fmt: skip
    command = [str(CRMSYNC), "schedule", "--config", str(config), "--run-now", "nightly-plan"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Store.open(url) as store:
            deadline = time.monotonic() + 30
            while not store.runs.recent(1, job="nightly-plan"):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the job did not start"
                time.sleep(0.05)
            time.sleep(0.5)  # into the pull
            os.kill(process.pid, signal.SIGINT)
            _out, err = process.communicate(timeout=30)
            run = store.runs.recent(1, job="nightly-plan")[0]
        assert process.returncode == 1, err
        assert run.status is RunStatus.INTERRUPTED, (run, err)
        assert "stopped on request (SIGINT)" in (run.error or ""), run.error
        assert "SIGINT: stopping after the current batch" in err
        assert "SIGTERM" not in err, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
