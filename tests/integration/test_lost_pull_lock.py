"""A pull whose PostgreSQL pull lock is lost mid-read (its session ended: a server restart, a
dropped connection, pg_terminate_backend) while another pull of that instance takes the lock
and saves newer data: the first pull saves nothing more (its older read would overwrite the
newer snapshots and move the cursor back), exits 1 with one line, and a rerun goes on from the
stored cursor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.fixtures_store import end_lock_session, store_url_for
from tests.integration.conftest import World, build_world
from tests.integration.processes import (
    HUBSPOT_LIST,
    crm_amount,
    first_page_deal,
    paused,
    pull_here,
    run,
    runs,
    stored,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """On PostgreSQL (skipped when it is absent): a full read of its HubSpot deals takes two
    pages, and a test stops a pull between them."""
    with store_url_for("postgresql", tmp_path) as url:
        yield from build_world(tmp_path, url, deals=110, seed=3)


def _end_hubspot_pull_lock_session(world: World) -> None:
    with open_runtime(str(world.config), connect=False) as rt:
        end_lock_session(rt.store, "hubspot", "pull")


def test_a_pull_that_lost_its_lock_saves_nothing_more_over_the_pull_that_took_it(
    world: World,
) -> None:
    pull_here(world)
    deal = first_page_deal(world)
    args = ("pull", "--system", "hubspot", "--full")
    with paused(world, "hubspot", HUBSPOT_LIST, *args) as first:  # read page 1, then stopped
        _end_hubspot_pull_lock_session(world)
        bump_amounts(world, "hubspot", [deal])  # a person edits it after the first pull read it
        second = run(world, "pull", "--system", "hubspot")  # takes the lock the first lost
        amount_between, cursor_between = stored(world, deal)
    amount_after, cursor_after = stored(world, deal)

    assert second.popen.returncode == 0, second.err
    assert amount_between == crm_amount(world, deal)
    assert first.popen.returncode == 1, first.err
    assert re.fullmatch(
        r"crmsync: error: pull of 'hubspot': lock lost \(the PostgreSQL session holding it "
        r"ended: .+\); stopped before writing more: run it again, it resumes",
        first.err_lines[-1],
    ), first.err
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
