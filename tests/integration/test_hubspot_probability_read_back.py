"""crmsync writes a HubSpot deal's probability to hs_forecast_probability (which a stage change
leaves alone) and must read it back from there: read from the stage's probability instead, a
probability it spread to HubSpot looked changed back on the next run, and a person's own
forecast in HubSpot was never seen."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.integration.conftest import World
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _open_entity_in_all_three, _reconcile


def test_a_probability_spread_to_hubspot_is_read_back_and_settles(small_world: World) -> None:
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged
    ids = _open_entity_in_all_three(small_world)
    pipedrive: Any = small_world.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:  # a person forecasts the deal in Pipedrive
        pipedrive.store.update(int(ids["pipedrive"]), {"probability": 37})
    spread = _changes(_reconcile(small_world, dry_run=False), "probability")
    assert spread[("hubspot", ids["hubspot"])] == Decimal("0.37")
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    held = hubspot.store.live[ids["hubspot"]]["properties"]
    assert held["hs_forecast_probability"] == "0.37" != held["hs_deal_stage_probability"]

    after = _reconcile(small_world, dry_run=True)
    assert not _changes(after, "probability"), "HubSpot's forecast was read from its stage"

    with hubspot.lock:  # a person changes the forecast in HubSpot: it spreads
        hubspot.store.update(ids["hubspot"], {"hs_forecast_probability": "0.55"})
    edited = _changes(_reconcile(small_world, dry_run=True), "probability")
    assert edited.get(("pipedrive", ids["pipedrive"])) == Decimal("0.55"), edited
