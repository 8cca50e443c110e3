"""Salesforce ids as the other CRMs hold them: people copy them from Salesforce's screens and
reports, which show the 15-character case-sensitive id, while its API answers with the
18-character case-safe one."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result
from hubspot import HubSpot
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInputForCreate

from sync.cli import main
from tests.integration.conftest import World


def _salesforce_only(world: World) -> str:
    """The id of a Salesforce deal no HubSpot deal is linked to."""
    for members in world.members().values():
        if "salesforce" in members and "hubspot" not in members:
            return members["salesforce"]
    raise AssertionError("the sample has no Salesforce deal without a HubSpot copy")


def test_a_hubspot_deal_naming_a_salesforce_deal_by_its_15_character_id_is_linked_to_it(
    small_world: World,
) -> None:
    small_world.reconcile("first")
    opportunity = _salesforce_only(small_world)
    assert len(opportunity) == 18
    sandbox = small_world.sandbox
    client = HubSpot(access_token=sandbox.tokens["hubspot"], host=sandbox.urls["hubspot"])
    properties: dict[str, Any] = {
        "dealname": "Quarterly widgets (entered by hand)",  # no key matches it
        "pipeline": "default",
        "dealstage": "appointmentscheduled",
        "salesforce_opportunity_id": opportunity[:15],  # as Salesforce's screens show it
    }
    batch = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[{"properties": properties}])
    created = client.crm.deals.batch_api.create(batch).results[0].id

    small_world.reconcile("second")
    entity = next(m for m in small_world.members().values() if m.get("salesforce") == opportunity)
    assert entity.get("hubspot") == created


def _links(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, ["links", *args, "--config", str(world.config)])


def test_links_join_takes_a_salesforce_deal_by_the_15_character_id_its_screens_show(
    small_world: World,
) -> None:
    small_world.reconcile("first")
    entity, members = next(
        (e, m) for e, m in small_world.members().items() if {"salesforce", "hubspot"} <= set(m)
    )
    assert _links(small_world, "split", entity).exit_code == 0
    opportunity, deal = members["salesforce"], members["hubspot"]

    done = _links(small_world, "join", f"salesforce:{opportunity[:15]}", f"hubspot:{deal}")
    assert done.exit_code == 0, done.output
    assert f"joined salesforce:{opportunity}, hubspot:{deal} as " in done.output
    joined = next(m for m in small_world.members().values() if m.get("hubspot") == deal)
    assert joined["salesforce"] == opportunity
