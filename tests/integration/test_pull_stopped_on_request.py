"""SIGTERM during a reconcile's own pull (on the command line, or in a scheduled job) stops it
between two chunks, as it stops an apply between two batches: what was saved stays, nothing
is planned or written, the run is recorded as interrupted with one line, and the next run
reads again what this one did not finish."""

from __future__ import annotations

import pytest

from connectors.sandbox.faults import Faults
from sync.pull import PullStopped
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.shutdown import STOPPED
from sync.store_records import RunStatus
from tests.integration.conftest import World
from tests.integration.processes import HUBSPOT_LIST
from tests.integration.test_apply_stopped_on_request import stop_requested_after


@pytest.fixture
def world(paged_world: World) -> World:
    return paged_world


def test_a_stop_during_a_reconciles_pull_ends_it_before_the_next_chunk_and_plans_nothing(
    world: World,
) -> None:
    hubspot = world.sandbox.servers["hubspot"]
    # HubSpot's full read takes two pages; its deals are handed over after the second, which
    # the latency keeps well after the stop asked for once the first was served.
    hubspot.faults.set(Faults(latency_ms=300))
    try:
        with (
            open_runtime(str(world.config)) as rt,
            stop_requested_after(world, "hubspot", HUBSPOT_LIST),
        ):
            with pytest.raises(PullStopped) as stopped:
                run_reconcile(rt, dry_run=False, yes=True)
            (run,) = rt.store.runs.recent(1)
            saved = rt.store.deal_count("hubspot")
            cursor = rt.store.cursor("hubspot")
    finally:
        hubspot.faults.set(Faults())
    message = str(stopped.value)
    assert message.startswith(f"{STOPPED} during the pull") and "\n" not in message
    assert (run.status, run.error) == (RunStatus.INTERRUPTED, message)
    assert "applied" not in run.counts and "changes" not in run.counts  # nothing planned
    assert (saved, cursor) == (0, None)  # HubSpot's only chunk came after the stop
    for server in world.sandbox.servers.values():
        assert not [r for r in server.stats.snapshot()["requests"] if _writes(r)]

    with open_runtime(str(world.config)) as rt:
        outcome = run_reconcile(rt, dry_run=True)
        live = [d for d in world.generated.dataset["hubspot"]["deals"] if not d["archived"]]
        assert rt.store.deal_count("hubspot") == len(live)
    assert outcome.status is RunStatus.OK


def _writes(request: str) -> bool:
    method, path = request.split(" ", 1)
    return (
        method in ("PATCH", "PUT", "DELETE")
        or any(part in path for part in ("/batch/update", "/batch/create", "/composite"))
        or (method == "POST" and path.startswith("/api/v2/deals"))
    )
