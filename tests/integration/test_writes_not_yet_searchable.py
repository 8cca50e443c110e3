"""A run right after an apply, while HubSpot's search does not show the deals that apply wrote
yet (its index lags its writes): the pull's search does not return them, so their stored
snapshots are still those read before crmsync wrote. Those are crmsync's own writes, not
HubSpot deals put back by a person: the run plans nothing for them, and above all does not
carry the values they held before to the other CRMs over the edit crmsync spread, nor create
again the copies that apply made."""

from __future__ import annotations

from typing import Any

from connectors.sandbox.faults import Faults
from sync.plan import Plan
from sync.reconcile_run import run_reconcile
from sync.report_run import build_report
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.crm_users import SYSTEMS
from tests.integration.test_fields_round_trip import _stored
from tests.integration.test_partial_targets import _reconcile
from tests.integration.test_rollback_deletes_creates import _create_missing


def _open_in_all_three(world: World) -> dict[str, str]:
    for ids in world.members().values():
        if len(ids) == len(SYSTEMS) and all(
            _stored(world, s, i).status.value == "open" for s, i in ids.items()
        ):
            return ids
    raise AssertionError("no open three-CRM entity")


def _planned(plan: Plan, ids: dict[str, str]) -> list[str]:
    refs = set(ids.items())
    return [
        f"{c.system} {c.field} -> {c.to_value!r} ({c.reason})"
        for c in plan.changes
        if (c.system, c.id) in refs
    ]


def test_a_run_while_hubspot_search_lags_does_not_undo_the_edit_the_last_apply_spread(
    small_world: World,
) -> None:
    world = small_world
    _reconcile(world, dry_run=False)
    ids = _open_in_all_three(world)
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"CloseDate": "2027-07-30"}))
    applied = _reconcile(world, dry_run=False)
    assert [c.system for c in applied.changes if (c.system, c.id) in set(ids.items())] == [
        "hubspot",
        "pipedrive",
    ]

    world.sandbox.servers["hubspot"].faults.set(Faults(search_lag=600))
    try:
        again = _reconcile(world, dry_run=False)
    finally:
        world.sandbox.servers["hubspot"].faults.set(Faults())
    assert _planned(again, ids) == []
    assert str(_stored(world, "pipedrive", ids["pipedrive"]).close_date) == "2027-07-30"


def test_a_run_while_hubspot_search_lags_does_not_create_again_the_copies_the_last_apply_made(
    small_world: World,
) -> None:
    """The copies the last apply created are not in HubSpot's search yet: neither the pull nor
    the apply's lookup by link marker finds them. They are their entities' copies, not
    copies missing."""
    world = small_world
    _create_missing(world)
    made = _reconcile(world, dry_run=False)
    copies = {c["entity"] for c in made.creates if c["system"] == "hubspot"}
    assert copies
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    before = len(hubspot.store.live)

    faults = world.sandbox.servers["hubspot"].faults
    faults.set(Faults(search_lag=600))
    try:
        again = _reconcile(world, dry_run=False)
    finally:
        faults.set(Faults())
    assert [c["entity"] for c in again.creates if c["entity"] in copies] == []
    assert len(hubspot.store.live) == before


def _copy_deleted_before_any_pull(world: World) -> str:
    """An apply creates copies (push.create_missing); a person deletes the HubSpot one of an
    entity before any pull read it. Its entity."""
    _create_missing(world)
    made = _reconcile(world, dry_run=False)
    create = next(c for c in made.creates if c["system"] == "hubspot")
    ids = next(m for e, m in world.members().items() if e == create["entity"])
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        hubspot.store.archive(ids["hubspot"])
    return str(create["entity"])


def test_a_copy_deleted_before_any_pull_read_it_is_missing_again_once_search_would_show_it(
    small_world: World,
) -> None:
    """A person deletes a copy crmsync just created before any pull read it. Once HubSpot's
    search would show the copy (past its lookup lag) and the pull did not find it, the entity
    lacks it again, as before copies not yet read counted (created anew, push.create_missing);
    it is no copy the entity keeps for good while its CRM no longer holds it."""
    world = small_world
    entity = _copy_deleted_before_any_pull(world)

    with open_runtime(str(world.config), connector_options={"lookup_lag_s": 0}) as rt:
        later = run_reconcile(rt, dry_run=True, yes=True).result.plan
    assert [c["system"] for c in later.creates if c["entity"] == entity] == ["hubspot"]


def test_the_report_no_longer_counts_a_copy_deleted_before_any_pull_read_it(
    small_world: World,
) -> None:
    """The report lays the copies crmsync created and no pull read yet over the store, as the
    reconcile does. One that a pull past its CRM's lookup lag did not find was deleted: the
    report counted it, in that CRM's figures, for good."""
    world = small_world
    _copy_deleted_before_any_pull(world)
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        held = len(hubspot.store.live)

    options = {"lookup_lag_s": 0}
    with open_runtime(str(world.config), connector_options=options) as rt:
        run_reconcile(rt, dry_run=True, yes=True)
    with open_runtime(str(world.config), connect=False, connector_options=options) as rt:
        report = build_report(rt)
    assert report.systems["hubspot"].deals == held
