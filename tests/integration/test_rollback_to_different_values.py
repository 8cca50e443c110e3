"""A rollback puts each target back to what it held before the run, and those values may differ:
a member left out of the value the others agreed on (Salesforce requires an owner) kept its own,
a copy crmsync created holds its CRM's pick (`picked`). No one of them is the entity's base: the
next reconcile plans the rolled-back run's changes again, and carries none of the restored values
over the edit the run had copied."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _reconcile
from tests.integration.test_picks_of_created_copies import _configure
from tests.integration.test_rollback_deletes_creates import _cli, _run_id


def test_a_rollback_to_different_values_plans_the_run_again_not_one_of_those_values(
    small_world: World,
) -> None:
    world = small_world
    _reconcile(world, dry_run=False)
    sf: Any = world.sandbox.servers["salesforce"].emulator
    emails = {u["Id"]: u["Email"] for u in sf.store.tables["User"]}
    api_user = emails[sf.store.api_user]
    entity, ids = next(  # a Salesforce owner that is not Pipedrive's pick
        (e, ids)
        for e, ids in world.members().items()
        if set(ids) == {"hubspot", "salesforce"}
        and emails[sf.store.by_id[ids["salesforce"]]["OwnerId"]] != api_user
    )
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:  # someone clears the owner in HubSpot; Salesforce keeps its own
        hubspot.store.update(ids["hubspot"], {"hubspot_owner_id": ""})
    _reconcile(world, dry_run=False)
    _configure(world, create_missing=True)
    _reconcile(world, dry_run=False)  # a Pipedrive copy with Pipedrive's pick of an owner
    copy = world.members()[entity]["pipedrive"]

    editors = Editors(world, seed=1)  # a person gives the HubSpot deal an owner again
    pipedrive: Any = world.sandbox.servers["pipedrive"].emulator
    picked = str(pipedrive.store.deals[int(copy)]["user_id"]["id"])
    owner = next(o for o in sorted(editors.owners) if editors.owners[o]["pipedrive"] != picked)
    editors.set_value("hubspot", ids["hubspot"], "owner_email", owner)
    planned = _changes(_reconcile(world, dry_run=True), "owner_email")
    assert planned == {("salesforce", ids["salesforce"]): owner, ("pipedrive", copy): owner}

    _reconcile(world, dry_run=False)
    rolled = _cli(world, "rollback", _run_id(world), "--apply", "--yes")
    assert rolled["totals"]["applied"] == 2, rolled["totals"]
    assert sf.store.by_id[ids["salesforce"]]["OwnerId"] != editors.owners[owner]["salesforce"]

    again = _reconcile(world, dry_run=True)
    assert _changes(again, "owner_email") == planned, "a restored owner was taken for an edit"
    assert not again.conflicts
