"""A `crmsync pull` killed outright (kill -9, a crash, a power cut) cannot record the end of its
run. It held the pull lock of each instance it pulled for the whole run, so the next process
to take one of those locks (a pull of that instance, or a reconcile) knows it is dead and
records the run as interrupted. A run whose process is alive is never ended."""

from __future__ import annotations

import pytest

from sync.store import RunKind, RunRecord, RunStatus
from tests.integration.conftest import World
from tests.integration.processes import (
    HUBSPOT_LIST,
    cli,
    full_hubspot_pull_paused,
    killed,
    runs,
)

ABANDONED = "its process ended without recording the end of the run (killed?); rerun to resume"


@pytest.fixture
def world(paged_world: World) -> World:
    return paged_world


def _run(world: World, run_id: str) -> RunRecord:
    return next(r for r in runs(world) if r.id == run_id)


def _killed_hubspot_pull(world: World) -> str:
    """The id of the run a `crmsync pull --system hubspot` killed mid-read left behind."""
    killed(world, "hubspot", HUBSPOT_LIST, "pull", "--system", "hubspot", "--full")
    [left] = [r for r in runs(world) if r.kind is RunKind.PULL]
    assert left.status is RunStatus.RUNNING and left.finished_at is None  # nothing recorded it
    return left.id


def test_a_killed_pulls_run_is_recorded_interrupted_by_the_next_pull_of_its_instance(
    world: World,
) -> None:
    run_id = _killed_hubspot_pull(world)
    other = cli(world, "pull", "--system", "pipedrive")
    assert other.exit_code == 0, other.output
    assert _run(world, run_id).status is RunStatus.RUNNING  # no proof: pipedrive's lock

    again = cli(world, "pull", "--system", "hubspot")
    assert again.exit_code == 0, again.output
    left = _run(world, run_id)
    assert (left.status, left.error) == (RunStatus.INTERRUPTED, ABANDONED)
    assert left.finished_at is not None
    assert [r.status for r in runs(world) if r.kind is RunKind.PULL] == [
        RunStatus.OK, RunStatus.OK, RunStatus.INTERRUPTED,
    ]  # fmt: skip


def test_a_killed_pulls_run_is_recorded_interrupted_by_the_next_reconcile(world: World) -> None:
    run_id = _killed_hubspot_pull(world)
    world.reconcile("r1")  # its pull takes every instance's pull lock
    left = _run(world, run_id)
    assert (left.status, left.error) == (RunStatus.INTERRUPTED, ABANDONED)


def test_a_pull_running_in_a_live_process_is_left_running(world: World) -> None:
    with full_hubspot_pull_paused(world) as first:
        [live] = [r for r in runs(world) if r.kind is RunKind.PULL]
        assert cli(world, "pull", "--system", "pipedrive").exit_code == 0
        refused = cli(world, "pull", "--system", "hubspot")
        assert refused.exit_code == 1, refused.output
        assert _run(world, live.id).status is RunStatus.RUNNING
    assert first.popen.returncode == 0, first.err
    done = _run(world, live.id)
    assert (done.status, done.error) == (RunStatus.OK, None)
