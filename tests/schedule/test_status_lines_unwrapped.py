"""A status line the scheduler prints on stderr stays one line when stderr is no terminal
(systemd's journal, cron's mail, a redirect to a file): alerting greps those lines, and rich
wrapped them at 80 columns mid-message (`apply ... nothing to` / `write`)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.sandbox_env import CRMSYNC, crmsync_env
from tests.schedule.conftest import WriteConfig

NIGHTLY_APPLY = {"name": "nightly-apply", "cron": "30 2 * * *", "job": "reconcile"}


def _run_now(config: Path) -> str:
    """`schedule --run-now`, its stderr a pipe, as under systemd or cron."""
    done = subprocess.run(
        [*CRMSYNC, "schedule", "--config", str(config), "--run-now", "nightly-apply"],
        env={**crmsync_env(), "COLUMNS": "80"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stderr


def test_a_long_status_line_on_stderr_off_a_terminal_stays_one_line(
    new_store_url: Callable[[str], str], write_own_config: WriteConfig
) -> None:
    config = write_own_config(new_store_url("sqlite"), NIGHTLY_APPLY)
    _run_now(config)  # writes what the sandbox's CRMs disagree on

    err = _run_now(config)  # nothing is left to write

    said = [line for line in err.splitlines() if line.startswith("apply ")]
    assert len(said) == 1, err
    assert said[0].endswith("): nothing to write"), err
    assert len(said[0]) > 80, said  # rich wrapped it there
