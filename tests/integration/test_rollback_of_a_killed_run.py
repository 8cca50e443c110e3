"""`crmsync rollback RUN --apply` of a run whose process was killed (kill -9) mid-apply: the
writes that landed after it journaled them as intended, but before it could record them, are
undone too."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.processes import cli, killed, runs
from tests.integration.test_rollback_deletes_creates import _create_missing
from tests.integration.test_writes_not_yet_searchable import _open_in_all_three

HUBSPOT_UPDATE = "POST /crm/objects/2026-09/deals/batch/update"


def _hubspot_close_date(world: World, deal_id: str) -> str:
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with world.sandbox.servers["hubspot"].emulator.lock:
        return str(hubspot.store.live[deal_id]["properties"]["closedate"])[:10]


def test_a_rollback_of_a_run_killed_after_a_write_landed_undoes_that_write(
    pg_world: World,
) -> None:
    world = pg_world
    assert cli(world, "reconcile", "--yes").exit_code in (0, 1)
    ids = _open_in_all_three(world)
    before = _hubspot_close_date(world, ids["hubspot"])
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"CloseDate": "2027-07-30"}))
    killed(world, "hubspot", HUBSPOT_UPDATE, "reconcile", "--yes")
    assert _hubspot_close_date(world, ids["hubspot"]) == "2027-07-30"  # it landed
    run_id = next(r.id for r in runs(world) if r.kind.value == "reconcile")

    shown = cli(world, "rollback", run_id)
    assert shown.exit_code == 0, shown.output
    # Killed before it recorded the write (in doubt), or after (recorded with its audit, in
    # one transaction): never recorded done without the audit a rollback is made from.
    assert "nothing to undo" not in shown.output, shown.output

    undone = cli(world, "rollback", run_id, "--apply", "--yes")
    assert undone.exit_code == 0, undone.output
    assert _hubspot_close_date(world, ids["hubspot"]) == before, undone.output


HUBSPOT_CREATE = "POST /crm/objects/2026-09/deals/batch/create"


def test_a_rollback_too_soon_after_a_killed_run_to_look_up_its_copies_says_to_run_it_again(
    small_world: World,
) -> None:
    """The copies a killed run created in HubSpot are not in its search yet (its lookup lag):
    `rollback RUN --apply` cannot tell whether they landed, and leaves them in doubt. It said
    nothing about them, and the copies stayed in HubSpot, the rollback taken for complete."""
    world = small_world
    _create_missing(world)
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        before = set(hubspot.store.live)
    killed(world, "hubspot", HUBSPOT_CREATE, "reconcile", "--yes")
    with hubspot.lock:
        assert set(hubspot.store.live) - before  # the copies landed
    run_id = next(r.id for r in runs(world) if r.kind.value == "reconcile")

    undone = cli(world, "rollback", run_id, "--apply", "--yes")
    assert undone.exit_code == 0, undone.output
    assert "in doubt" in undone.output, undone.output
    assert f"crmsync rollback {run_id} --apply" in undone.output, undone.output
