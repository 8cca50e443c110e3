"""From API 2026-09 on, HubSpot enforces the rules a portal's admin sets on API writes too
(conditional required properties, required fields of the create form): a write breaking one is
refused with a 400 VALIDATION_ERROR (changelog "Breaking Change: CRM API Write Validation
Enforcement Starting with the 2026-09 API Version"). Whether a batch is then refused whole or
per input in a 207 is not documented: either way only that deal fails, saying why, and nothing
is sent again but the rest of a batch refused whole."""

from __future__ import annotations

import pytest

from connectors.base import NativeUpdate
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from tests.connectors import contract

UPDATE = "POST /crm/objects/2026-09/deals/batch/update"
# The rule of HubSpot's own example kind: a property required once a deal is at a stage.
RULE = ("closed_lost_reason", "dealstage", "closedlost")


@pytest.mark.parametrize("whole", [True, False], ids=["batch-refused-whole", "207-per-deal"])
def test_a_deal_an_admin_rule_refuses_fails_alone_saying_why_and_is_not_sent_again(
    sandbox: Sandbox, connector: HubSpotConnector, whole: bool
) -> None:
    emulator = sandbox.servers["hubspot"].emulator
    emulator.required_when = RULE
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000, batch_refused_whole=whole))
    store = emulator.store
    kept, refused, lost = [
        i
        for i, d in store.live.items()
        if d["properties"]["pipeline"] == "default" and d["properties"]["dealstage"] != "closedlost"
    ][:3]
    stage = store.live[refused]["properties"]["dealstage"]
    contract.clear_stats(sandbox, "hubspot")
    results = connector.update_deals(
        [
            NativeUpdate(kept, {"amount": "5"}),
            NativeUpdate(refused, {"dealstage": "closedlost"}),
            NativeUpdate(lost, {"dealstage": "closedlost", "closed_lost_reason": "Budget"}),
        ]
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].code == "VALIDATION_ERROR"
    assert "closed_lost_reason" in (results[1].error or "")
    assert store.live[refused]["properties"]["dealstage"] == stage
    assert store.live[lost]["properties"]["dealstage"] == "closedlost"
    # refused whole: the batch once, then each deal alone once; per deal: the batch once
    assert contract.stats(sandbox, "hubspot") == {UPDATE: 1 + 3 if whole else 1}
