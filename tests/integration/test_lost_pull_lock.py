"""A pull whose PostgreSQL pull lock is lost mid-read (its session ended: a server restart, a
dropped connection, pg_terminate_backend) while another pull of that instance takes the lock
and saves newer data: the first pull saves nothing more (its older read would overwrite the
newer snapshots and move the cursor back), exits 1 with one line, and a rerun goes on from the
stored cursor."""

from __future__ import annotations

import pytest

from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.processes import (
    assert_stopped_on_a_lost_lock,
    crm_amount,
    end_lock_session_of,
    first_page_deal,
    full_hubspot_pull_paused,
    pull_here,
    run,
    runs,
    stored,
)

# The conftest's paged world (a full read of HubSpot takes two pages, and a test stops a pull
# between them), on PostgreSQL only: skipped when it is absent.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("paged_world", ["postgresql"], indirect=True),
]


def test_a_pull_that_lost_its_lock_saves_nothing_more_over_the_pull_that_took_it(
    paged_world: World,
) -> None:
    world = paged_world
    pull_here(world)
    deal = first_page_deal(world)
    with full_hubspot_pull_paused(world) as first:  # read page 1, then stopped
        end_lock_session_of(world, "hubspot", "pull")
        bump_amounts(world, "hubspot", [deal])  # a person edits it after the first pull read it
        second = run(world, "pull", "--system", "hubspot")  # takes the lock the first lost
        amount_between, cursor_between = stored(world, deal)
    amount_after, cursor_after = stored(world, deal)

    assert second.popen.returncode == 0, second.err
    assert amount_between == crm_amount(world, deal)
    assert_stopped_on_a_lost_lock(first, "pull of 'hubspot'")
    assert len(first.err_lines) == 1, first.err
    assert (amount_after, cursor_after) == (amount_between, cursor_between), (
        "the pull that lost its lock saved its older read over the newer one"
    )
    pulls = [r for r in runs(world) if r.kind.value == "pull"]
    assert sorted(r.status.value for r in pulls) == ["failed", "ok"]
    assert any("lock lost" in (r.error or "") for r in pulls)

    rerun = run(world, "pull", "--system", "hubspot", "--full")  # resumes: the lock is free
    assert rerun.popen.returncode == 0, rerun.err
    assert stored(world, deal)[0] == crm_amount(world, deal)
