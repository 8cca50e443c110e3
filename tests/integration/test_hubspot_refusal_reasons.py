"""HubSpot refuses a write either for the whole batch (a 400, the batch then sent one deal at a
time) or per deal inside a 207 multi-status answer; which one it does is not documented. The
reason a user reads (apply output, dead letters: both from the one write result) is
the same either way: HubSpot's error category and its message, without the HTTP status."""

from __future__ import annotations

import pytest

from connectors.sandbox.faults import Faults
from tests.integration.conftest import World
from tests.integration.test_dead_letters_released import (
    _hubspot_amount,
    _letters,
    _reconcile,
    _set_pipedrive_value,
)


@pytest.mark.parametrize("whole", [True, False], ids=["batch-refused-whole", "207-per-deal"])
def test_a_hubspot_refusal_reads_the_same_whether_the_batch_or_the_deal_was_refused(
    small_world: World, whole: bool
) -> None:
    world = small_world
    text = world.config.read_text()
    world.config.write_text(text.replace("push:\n", "push:\n  max_attempts: 1\n"))
    _reconcile(world)
    ids = next(m for m in world.members().values() if len(m) == 3)
    hubspot = ids["hubspot"]
    amount = int(_hubspot_amount(world, hubspot)) + 777
    faults = Faults(fail_ids=(hubspot,), batch_refused_whole=whole)
    world.sandbox.servers["hubspot"].faults.set(faults)
    _set_pipedrive_value(world, ids["pipedrive"], amount)
    _reconcile(world, code=1)

    [letter] = _letters(world)
    assert (letter["system"], letter["id"], letter["field"]) == ("hubspot", hubspot, "amount")
    assert letter["reason"] == "VALIDATION_ERROR: Injected failure: record rejected."
