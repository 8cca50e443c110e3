"""A `crmsync report` killed outright cannot record the end of its run. Each one holds the
store's `report` lock for its whole run (a second one waits for it), so the next one to take
it records a run of job `report` still `running` as interrupted; a live report's run is never
ended. Scheduled report entries have their own locks (tests/schedule/test_killed_report_job.py)."""

from __future__ import annotations

import pytest

from sync.store import RunKind, RunRecord, RunStatus
from tests.integration.conftest import World
from tests.integration.processes import HUBSPOT_LIST, Process, cli, killed, paused, runs

ABANDONED = "its process ended without recording the end of the run (killed?); rerun to resume"
WAITING = "waiting for the job 'report' another process is running"


@pytest.fixture
def world(paged_world: World) -> World:
    return paged_world


def _reports(world: World) -> list[RunRecord]:
    return [r for r in runs(world) if r.kind is RunKind.REPORT]


def test_a_killed_reports_run_is_recorded_interrupted_by_the_next_report(world: World) -> None:
    killed(world, "hubspot", HUBSPOT_LIST, "report", "--refresh", "--format", "json")
    [left] = _reports(world)
    assert left.status is RunStatus.RUNNING and left.finished_at is None  # nothing recorded it

    again = cli(world, "report", "--format", "json")
    assert again.exit_code in (0, 3), again.output  # 3: the sandbox config's thresholds
    done = next(r for r in _reports(world) if r.id == left.id)
    assert (done.status, done.error) == (RunStatus.INTERRUPTED, ABANDONED)
    assert done.finished_at is not None
    assert [r.status for r in _reports(world)] == [RunStatus.OK, RunStatus.INTERRUPTED]


def test_a_report_started_while_another_runs_waits_for_it_and_leaves_its_run_alone(
    world: World,
) -> None:
    with paused(world, "hubspot", HUBSPOT_LIST, "report", "--refresh", "--format", "json") as first:
        [live] = _reports(world)
        second = Process(world, "report", "--format", "json")
        waited = second.wait_for_err(WAITING)
        assert next(r for r in _reports(world) if r.id == live.id).status is RunStatus.RUNNING
    assert first.popen.returncode in (0, 3), first.err
    assert second.finish() in (0, 3), second.err
    assert waited
    assert [(r.status, r.error) for r in _reports(world)] == [(RunStatus.OK, None)] * 2
