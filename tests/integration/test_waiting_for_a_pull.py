"""A reconcile, a report or a scheduled job that finds one of its instances being pulled by
another process waits for that pull, but not for ever: `--wait S` bounds the wait (with the
reconcile lock's, in all), a default of DEFAULT_WAIT bounds it otherwise, and SIGTERM (a
scheduler's timeout, systemd, Kubernetes) ends it at once with the run recorded as
interrupted. A nightly job killed by its scheduler must never hang on another process."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest

from sync.locks import pull_locks
from sync.runtime import open_runtime
from sync.shutdown import STOPPED as TERMINATED
from tests.fixtures_store import store_url_for
from tests.integration.conftest import World, build_world
from tests.integration.processes import Process, runs
from tests.lock_holders import Holder, held_elsewhere

WAITING = "waiting for the pull of 'hubspot' another process is running"
STOPPED = (
    "stopped on request (SIGTERM) while waiting for the pull of 'hubspot' another process is "
    "running; nothing was done: run it again"
)

# Holds HubSpot's pull lock of a config's store until stopped.
PULLING_HUBSPOT = """
import sys
from sync.locks import pull_locks
from sync.runtime import open_runtime
from tests.lock_holders import hold_until_stopped

ready, stop, config = sys.argv[1:]
with open_runtime(config, connect=False) as rt, pull_locks(rt.store, ["hubspot"]):
    hold_until_stopped(ready, stop)
"""


# PostgreSQL's run of these end-to-end tests is in `pytest -m slow` (default suite time); its
# locks and store are tested in the default suite by tests/store.
@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=(pytest.mark.postgres, pytest.mark.slow))]
)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with store_url_for(request.param, tmp_path) as url:
        yield from build_world(tmp_path, url, deals=30, seed=5)


def hubspot_pulled_elsewhere(world: World, tmp: Path) -> AbstractContextManager[Holder]:
    """Another process holds HubSpot's pull lock (as a long `crmsync pull` does)."""
    return held_elsewhere(tmp, PULLING_HUBSPOT, str(world.config))


@contextmanager
def started(world: World, *args: str) -> Iterator[Process]:
    """`crmsync *args` running; killed at the end if it is still running (a failed test)."""
    process = Process(world, *args)
    try:
        yield process
    finally:
        process.kill()


def ended(world: World, *args: str) -> Process:
    """`crmsync *args` run to its end, which must come within 20 s."""
    with started(world, *args) as process:
        process.finish(timeout=20)
    return process


def _gave_up_waiting(process: Process, seconds: str) -> bool:
    """The last line of `process` says it gave up waiting for HubSpot's pull after `seconds`
    (a pattern)."""
    line = (
        rf"crmsync: error: pull of 'hubspot' is still running after waiting {seconds}s "
        r"\(lock held by another process\); let it finish \(`crmsync runs` shows it\) or give a "
        r"longer --wait"
    )
    return re.fullmatch(line, process.err_lines[-1]) is not None


def _hubspot_lock_is_free(world: World) -> None:
    with open_runtime(str(world.config), connect=False) as rt, pull_locks(rt.store, ["hubspot"]):
        pass


def test_a_reconcile_waits_for_another_pull_no_longer_than_its_wait_then_fails_naming_it(
    world: World, tmp_path: Path
) -> None:
    with hubspot_pulled_elsewhere(world, tmp_path):
        began = time.monotonic()
        waited = ended(world, "reconcile", "--dry-run", "--wait", "1")
        took = time.monotonic() - began
        refused = ended(world, "reconcile", "--dry-run", "--wait", "0")
    assert waited.popen.returncode == 1, waited.err
    assert took < 15, f"waited {took:.1f}s for a 1s --wait"
    assert any(WAITING in line for line in waited.err_lines), waited.err
    assert _gave_up_waiting(waited, r"(0\.[5-9]|1)"), waited.err
    assert refused.popen.returncode == 1, refused.err
    assert refused.err_lines == [
        "crmsync: error: pull of 'hubspot' is already running (lock held by another process); "
        "wait for it to end or give a --wait longer than 0 (locks end with their process: none "
        "is left by a killed one)"
    ]
    recorded = [r for r in runs(world) if r.kind.value == "reconcile-dry-run"]
    assert [r.status.value for r in recorded] == ["failed", "failed"]
    assert all("pull of 'hubspot'" in (r.error or "") for r in recorded)


def _ended_by_sigterm_while_waiting(world: World, tmp_path: Path, *args: str) -> Process:
    """`crmsync *args` (no --wait: the default bound) waiting for another process's pull of
    HubSpot, sent SIGTERM: it must end with exit 1 within 5 s."""
    with hubspot_pulled_elsewhere(world, tmp_path), started(world, *args) as process:
        assert process.wait_for_err(WAITING, timeout=30), process.err
        os.kill(process.pid, signal.SIGTERM)
        began = time.monotonic()
        code = process.finish(timeout=20)
        took = time.monotonic() - began
    assert took < 5, f"SIGTERM took {took:.1f}s to end the wait"
    assert code == 1, process.err
    return process


def test_sigterm_ends_a_reconciles_wait_for_another_pull_and_records_it_interrupted(
    world: World, tmp_path: Path
) -> None:
    reconcile = _ended_by_sigterm_while_waiting(world, tmp_path, "reconcile", "--yes")
    assert reconcile.err_lines[-1] == f"crmsync: error: {STOPPED}", reconcile.err
    [recorded] = [r for r in runs(world) if r.kind.value == "reconcile"]
    assert (recorded.status.value, recorded.error) == ("interrupted", STOPPED)
    _hubspot_lock_is_free(world)


def test_sigterm_during_a_reconciles_wait_for_another_pull_says_only_that_the_wait_ended(
    world: World, tmp_path: Path
) -> None:
    """No batch runs while it waits: "stopping after the current batch" was untrue there."""
    reconcile = _ended_by_sigterm_while_waiting(world, tmp_path, "reconcile", "--yes")
    said = [line for line in reconcile.err_lines if line.startswith("crmsync: ")]
    assert said == [f"crmsync: warning: {WAITING}", f"crmsync: error: {STOPPED}"], reconcile.err


def test_a_report_refresh_waits_for_another_pull_no_longer_than_its_wait(
    world: World, tmp_path: Path
) -> None:
    with hubspot_pulled_elsewhere(world, tmp_path):
        report = ended(world, "report", "--refresh", "--wait", "0.5", "--format", "json")
    assert report.popen.returncode == 1, report.err
    assert _gave_up_waiting(report, r"0\.[2-5]"), report.err
    [recorded] = [r for r in runs(world) if r.kind.value == "report"]
    assert recorded.status.value == "failed"


def test_sigterm_ends_a_report_refreshs_wait_for_another_pull_and_records_it_interrupted(
    world: World, tmp_path: Path
) -> None:
    report = _ended_by_sigterm_while_waiting(
        world, tmp_path, "report", "--refresh", "--format", "json"
    )
    # a report has nothing to finish first: it stops at once, as on Ctrl-C
    assert report.err_lines[-1] == f"crmsync: error: {TERMINATED}", report.err
    [recorded] = [r for r in runs(world) if r.kind.value == "report"]
    assert (recorded.status.value, recorded.error) == ("interrupted", TERMINATED)
    _hubspot_lock_is_free(world)


def test_sigterm_ends_a_scheduled_jobs_wait_for_another_pull(world: World, tmp_path: Path) -> None:
    config = world.config.read_text()
    schedule = '\nschedule:\n  - {name: nightly, cron: "0 2 * * *", job: reconcile}\n'
    world.config.write_text(config + schedule)
    job = _ended_by_sigterm_while_waiting(world, tmp_path, "schedule", "--run-now", "nightly")
    assert re.fullmatch(
        rf"crmsync: error: nightly: interrupted in [\d.]+s: {re.escape(STOPPED)}",
        job.err_lines[-1],
    ), job.err
    [recorded] = [r for r in runs(world) if r.job == "nightly"]
    assert (recorded.status.value, recorded.error) == ("interrupted", STOPPED)


# Holds the lock of a config's store named by its third argument, `reconcile` or `report`, as
# a running reconcile or `crmsync report` holds it, until stopped.
RUNNING_ELSEWHERE = """
import sys
from sync.locks import REPORT_JOB, reconcile_lock, report_job_lock
from sync.runtime import open_runtime
from tests.lock_holders import hold_until_stopped

ready, stop, config, which = sys.argv[1:]
with open_runtime(config, connect=False) as rt:
    own = report_job_lock(rt.store, REPORT_JOB) if which == "report" else reconcile_lock(rt.store)
    with own:
        hold_until_stopped(ready, stop)
"""

# Each command whose --wait bounds its wait for its own lock and then for the pull locks.
OWN_LOCK_THEN_PULL = [
    pytest.param("reconcile", ("reconcile", "--dry-run"), id="reconcile"),
    pytest.param("report", ("report", "--refresh", "--format", "json"), id="report-refresh"),
]


def _own_lock_waited_for(
    world: World, tmp: Path, own: str, args: tuple[str, ...], wait: str, stopped: float
) -> Process:
    """`crmsync *args --wait <wait>` run while another process pulls HubSpot and another holds
    the command's own lock (`own`): once it waits for its own lock it is held still (SIGSTOP)
    for `stopped` seconds, during which its own lock is freed; then it goes on (SIGCONT)."""
    (tmp / "own").mkdir()
    with hubspot_pulled_elsewhere(world, tmp / "pull"), ExitStack() as own_lock:
        own_lock.enter_context(
            held_elsewhere(tmp / "own", RUNNING_ELSEWHERE, str(world.config), own)
        )
        with started(world, *args, "--wait", wait) as process:
            waiting = f"waiting for the job {own!r} another process is running"
            assert process.wait_for_err(waiting, timeout=30), process.err
            os.kill(process.pid, signal.SIGSTOP)
            own_lock.close()
            time.sleep(stopped)
            os.kill(process.pid, signal.SIGCONT)
            process.finish(timeout=20)
    return process


@pytest.mark.parametrize(("own", "args"), OWN_LOCK_THEN_PULL)
def test_a_wait_used_up_on_the_commands_own_lock_is_not_asked_for_again_by_a_busy_pull(
    world: World, tmp_path: Path, own: str, args: tuple[str, ...]
) -> None:
    """All of --wait went on the command's own lock: "pass --wait SECONDS" was untrue."""
    (tmp_path / "pull").mkdir()
    process = _own_lock_waited_for(world, tmp_path, own, args, wait="1", stopped=1.5)
    assert process.popen.returncode == 1, process.err
    assert process.err_lines[-1] == (
        "crmsync: error: pull of 'hubspot' is already running (lock held by another process), "
        f"and --wait 1 ran out waiting for the job {own!r} first; let it finish (`crmsync runs` "
        "shows it) or give a longer --wait"
    ), process.err


@pytest.mark.parametrize(("own", "args"), OWN_LOCK_THEN_PULL)
def test_a_busy_pull_waited_for_with_the_rest_of_the_wait_says_it_was_the_rest(
    world: World, tmp_path: Path, own: str, args: tuple[str, ...]
) -> None:
    (tmp_path / "pull").mkdir()
    process = _own_lock_waited_for(world, tmp_path, own, args, wait="3", stopped=0.5)
    assert process.popen.returncode == 1, process.err
    assert any(WAITING in line for line in process.err_lines), process.err
    line = (
        r"crmsync: error: pull of 'hubspot' is still running after waiting [0-2](\.\d)?s, "
        rf"what was left of --wait 3 after waiting for the job '{own}' \(lock held by another "
        r"process\); let it finish \(`crmsync runs` shows it\) or give a longer --wait"
    )
    assert re.fullmatch(line, process.err_lines[-1]), process.err


# Holds the pull lock of the instance named by its third argument until stopped.
PULLING = """
import sys
from sync.locks import pull_locks
from sync.runtime import open_runtime
from tests.lock_holders import hold_until_stopped

ready, stop, config, instance = sys.argv[1:]
with open_runtime(config, connect=False) as rt, pull_locks(rt.store, [instance]):
    hold_until_stopped(ready, stop)
"""


def test_a_pull_waited_for_after_another_instances_pull_names_the_whole_wait_as_its_own(
    world: World, tmp_path: Path
) -> None:
    """The pulls of a reconcile's instances share what is left of --wait: HubSpot's waited
    for, then Pipedrive's until the end, the refusal is of a 2s wait, not of "what was left"
    after HubSpot's."""
    for holder in ("hubspot", "pipedrive"):
        (tmp_path / holder).mkdir()
    config = str(world.config)
    with (
        held_elsewhere(tmp_path / "pipedrive", PULLING, config, "pipedrive"),
        ExitStack() as hubspot,
    ):
        hubspot.enter_context(held_elsewhere(tmp_path / "hubspot", PULLING, config, "hubspot"))
        with started(world, "reconcile", "--dry-run", "--wait", "2") as process:
            assert process.wait_for_err(WAITING, timeout=30), process.err
            hubspot.close()
            process.finish(timeout=20)
    assert process.popen.returncode == 1, process.err
    assert any("waiting for the pull of 'pipedrive'" in line for line in process.err_lines)
    assert re.fullmatch(
        r"crmsync: error: pull of 'pipedrive' is still running after waiting 2s \(lock held by "
        r"another process\); let it finish \(`crmsync runs` shows it\) or give a longer --wait",
        process.err_lines[-1],
    ), process.err
