"""Salesforce sets a deal's probability from its stage whenever the stage changes, unless the
same write gives one. A stage crmsync moves there to another open stage keeps the probability
the CRMs agree on: else Salesforce's stage default came back the next night as an edit made in
Salesforce, and overwrote a forecast a person had set in another CRM. A deal closed there takes
Salesforce's own (100% won, 0% lost), which then spreads, as a person's close in Salesforce."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _open_entity_in_all_three, _reconcile


def test_a_stage_moved_in_salesforce_keeps_the_forecast_set_elsewhere(small_world: World) -> None:
    _reconcile(small_world, dry_run=False)
    ids = _open_entity_in_all_three(small_world)
    pipedrive: Any = small_world.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:  # a person forecasts the deal in Pipedrive; it spreads
        pipedrive.store.update(int(ids["pipedrive"]), {"probability": 37})
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged at 0.37

    Editors(small_world, seed=1).set_value("pipedrive", ids["pipedrive"], "stage", "negotiation")
    moved = _reconcile(small_world, dry_run=False)
    assert ("salesforce", ids["salesforce"]) in _changes(moved, "stage")
    salesforce: Any = small_world.sandbox.servers["salesforce"].emulator
    assert Decimal(str(salesforce.store.by_id[ids["salesforce"]]["Probability"])) == 37

    after = _reconcile(small_world, dry_run=True)
    assert not _changes(after, "probability"), "Salesforce's stage default came back as an edit"
