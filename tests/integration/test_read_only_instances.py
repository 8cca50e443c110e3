"""An instance that is no push target (`push.targets` leaves it out, as during a migration) keeps
its own values: once crmsync copied another CRM's change to the targets, the read-only copy's
older value is no change of its own, so the next runs do not carry it back (a plan that never
settles), while a real edit made there later still spreads."""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from sync.plan import Plan
from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.test_partial_targets import _open_entity_in_all_three, _reconcile


def salesforce_edited_with_hubspot_the_only_target(
    world: World,
) -> tuple[dict[str, str], Editors]:
    """HubSpot made the only push target (Pipedrive and Salesforce read-only), then a person
    sets a new close date on an entity's Salesforce deal: that entity's ids and the editors."""
    document = yaml.safe_load(world.config.read_text())
    document["push"]["targets"] = ["hubspot"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    ids = _open_entity_in_all_three(world)
    editors = Editors(world, seed=1)
    editors.set_value("salesforce", ids["salesforce"], "close_date", date(2031, 5, 17))
    return ids, editors


def _changes(plan: Plan) -> set[tuple[str, str, str, Any]]:
    return {(c.system, c.id, c.field, c.to_value) for c in plan.changes}


def test_a_read_only_instance_older_value_is_not_carried_back_night_after_night(
    small_world: World,
) -> None:
    _reconcile(small_world, dry_run=False)
    assert not _reconcile(small_world, dry_run=True).changes  # converged, all three targets

    ids, editors = salesforce_edited_with_hubspot_the_only_target(small_world)
    editors.set_value("salesforce", ids["salesforce"], "name", "Renamed in Salesforce")

    applied = _changes(_reconcile(small_world, dry_run=False))
    assert ("hubspot", ids["hubspot"], "close_date", date(2031, 5, 17)) in applied
    assert ("hubspot", ids["hubspot"], "name", "Renamed in Salesforce") in applied

    for night in range(2):
        again = _reconcile(small_world, dry_run=False)
        assert not again.changes, (
            f"night {night + 1}: the read-only Pipedrive copy's old values were carried back: "
            f"{sorted(map(str, _changes(again)))}"
        )

    # A real edit in the read-only CRM is a change like any other, and reaches the target.
    editors.set_value("pipedrive", ids["pipedrive"], "close_date", date(2032, 1, 9))
    plan = _reconcile(small_world, dry_run=True)
    assert _changes(plan) == {("hubspot", ids["hubspot"], "close_date", date(2032, 1, 9))}
