"""A `crmsync pull` (or a `report --refresh`) takes no reconcile lock: it may save deals while a
reconcile analyses the store. The reconcile still sees each deal as crmsync last knew it, the
snapshot it loaded with the writes crmsync made since, never a write lost between the two."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from connectors.sandbox.faults import Faults
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.processes import Process, run
from tests.integration.test_report_during_an_apply import (
    _close_date_edited_in_salesforce,
    _waits_for,
)


def _close_date(world: World, opportunity: str) -> str:
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        return str(salesforce.store.by_id[opportunity]["CloseDate"])


def test_a_pull_saving_while_a_reconcile_analyses_does_not_make_it_undo_the_last_apply(
    pg_world: World,
) -> None:
    world = pg_world
    ids = _close_date_edited_in_salesforce(world)
    spread = run(world, "reconcile", "--yes")  # to HubSpot and Pipedrive
    assert spread.popen.returncode in (0, 1), spread.err
    # The next reconcile's pull does not see HubSpot's copy of the write yet (search lags)
    faults = world.sandbox.servers["hubspot"].faults
    faults.set(Faults(search_lag=600))
    with open_runtime(str(world.config), connect=False) as rt, rt.store.engine.connect() as held:
        # The reconcile stops after loading the deals, before it reads crmsync's writes since
        # their snapshots.
        held.execute(text("lock table audit in access exclusive mode"))
        reconcile = Process(world, "reconcile", "--yes")
        try:
            _waits_for(world, "audit")
            faults.set(Faults())  # now it does: a pull saves the deal as written
            pulled = run(world, "pull", "--system", "hubspot")
            assert pulled.popen.returncode == 0, pulled.err
        finally:
            held.rollback()
            faults.set(Faults())
        reconcile.finish()
    assert reconcile.popen.returncode in (0, 1), reconcile.err
    assert _close_date(world, ids["salesforce"]) == "2027-07-30", reconcile.out
