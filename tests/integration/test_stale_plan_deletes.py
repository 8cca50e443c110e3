"""A saved plan that propagates a deletion (push.propagate_deletes), applied after the deleted
deal came back (restored from HubSpot's recycle bin): the other CRMs' copies of a deal that
exists again are not deleted."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.integration.processes import run
from tests.integration.test_writes_not_yet_searchable import _open_in_all_three


def _restore(world: World, deal_id: str) -> None:
    """As HubSpot's recycle bin does: the deal is live again, modified now."""
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        hubspot.store.restore(deal_id)


def _live(world: World, system: str, deal_id: str) -> bool:
    store: Any = world.sandbox.servers[system].emulator.store
    if system == "salesforce":
        return not store.by_id[deal_id].get("IsDeleted")
    return bool(store.deals[int(deal_id)]["status"] != "deleted")


@pytest.mark.parametrize("pulled_since", [True, False], ids=["pulled-since", "not-pulled"])
def test_a_saved_plan_does_not_delete_the_copies_of_a_deal_restored_since(
    pg_world: World, pulled_since: bool
) -> None:
    """Not pulled since: only the CRM knows the deal is back. A pull is no condition of the
    nightly's apply either (its pull may have missed a deal a full read was past when it came
    back), so the deal deleted elsewhere is read in its CRM before its copies are deleted."""
    world = pg_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["propagate_deletes"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    assert run(world, "reconcile", "--yes").popen.returncode in (0, 1)
    ids = _open_in_all_three(world)
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        hubspot.store.archive(ids["hubspot"])  # deleted by mistake
    plan = world.config.with_name("plan.json")
    made = run(world, "reconcile", "--dry-run", "--plan-out", str(plan))
    assert made.popen.returncode == 0, made.err
    assert f'"id": "{ids["pipedrive"]}"' in plan.read_text()  # to delete there
    _restore(world, ids["hubspot"])
    if pulled_since:
        pulled = run(world, "pull")
        assert pulled.popen.returncode == 0, pulled.err

    applied = run(world, "apply", str(plan), "--yes")
    assert _live(world, "pipedrive", ids["pipedrive"]), applied.out + applied.err
    assert _live(world, "salesforce", ids["salesforce"]), applied.out + applied.err
