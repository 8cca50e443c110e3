"""Two product lines, each with a pipeline of its own in HubSpot and Pipedrive: new business on
the default funnel, renewals on a funnel of their own (`renewal_due -> quoted -> committed ->
renewed / churned`). Salesforce has one pipeline (the default funnel), so it can hold no
renewal stage and is reported, never written, for one.

A copy whose funnel lacks the stage the others last agreed on is, on a base saved before
left-out marks, taken as keeping its value (it cannot hold theirs). That reading must not swallow
a person's move: a deal moved to the other product line's pipeline, or copies whose pipelines
were given a funnel of their own after they last agreed, hold stages of another funnel because
someone changed them, and their moves are edits like any other."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, set_stage, stages
from tests.integration.product_lines import renewals_on_their_own_funnel

# Seed 3, 60 deals (small_world): an open renewal in all three CRMs (renewal_due: HubSpot's
# and Pipedrive's Renewals pipelines, Salesforce's Prospecting), and an open new-business deal
# in negotiation (HubSpot's and Pipedrive's sales pipelines).
RENEWAL_DEAL = {"salesforce": "0065g000000000VAAQ", "hubspot": "9100000231", "pipedrive": "38"}
NEW_BUSINESS = {"salesforce": "0065g000000000KAAQ", "hubspot": "9100000140", "pipedrive": "22"}
HUBSPOT_COMMITTED, HUBSPOT_QUOTED, PIPEDRIVE_COMMITTED = "75210934", "75210933", "9"


def _about(items: list[dict[str, Any]], ids: dict[str, str], field: str) -> dict[str, Any]:
    return {i["system"]: i for i in items if i["field"] == field and i["id"] == ids[i["system"]]}


def test_a_renewal_moved_in_hubspot_reaches_pipedrive_after_renewals_got_their_own_funnel(
    small_world: World,
) -> None:
    cli_json(small_world, "reconcile", "--yes")  # agreed while every pipeline was default
    renewals_on_their_own_funnel(small_world)
    cli_json(small_world, "reconcile", "--yes")  # the renewals' copies now read renewal stages

    set_stage(small_world, "hubspot", RENEWAL_DEAL["hubspot"], HUBSPOT_COMMITTED, "renewals")
    plan = cli_json(small_world, "reconcile", "--dry-run")

    moves = {
        system: (c["to"], c["target"]["pipeline"], c["target"]["native_stage"])
        for system, c in _about(plan["changes"], RENEWAL_DEAL, "stage").items()
    }
    assert moves == {"pipedrive": ("committed", "2", PIPEDRIVE_COMMITTED)}, plan["errors"]
    refused = _about(plan["errors"], RENEWAL_DEAL, "stage")
    assert set(refused) == {"salesforce"}, refused
    assert "pipeline_funnels" in refused["salesforce"]["reason"], refused


def test_a_deal_moved_to_the_renewals_pipeline_is_an_edit_reported_where_it_cannot_go(
    small_world: World,
) -> None:
    renewals_on_their_own_funnel(small_world)
    cli_json(small_world, "reconcile", "--yes")

    set_stage(small_world, "hubspot", NEW_BUSINESS["hubspot"], HUBSPOT_QUOTED, "renewals")
    plan = cli_json(small_world, "reconcile", "--dry-run")

    assert not _about(plan["changes"], NEW_BUSINESS, "stage"), plan["changes"]
    refused = _about(plan["errors"], NEW_BUSINESS, "stage")
    assert set(refused) == {"salesforce", "pipedrive"}, refused  # never HubSpot, which moved it
    assert "'quoted' is not a stage of funnel 'default'" in refused["pipedrive"]["reason"]
    assert "systems.pipedrive.pipeline_funnels.1" in refused["pipedrive"]["reason"]
    cli_json(small_world, "reconcile", "--yes")
    assert stages(small_world, NEW_BUSINESS) == {
        "salesforce": ("default", "Negotiation/Review"),
        "hubspot": ("renewals", HUBSPOT_QUOTED),
        "pipedrive": ("1", "5"),
    }

    # The Pipedrive copy moved by hand to its Renewals pipeline agrees again.
    set_stage(small_world, "pipedrive", NEW_BUSINESS["pipedrive"], "8", "2")
    plan = cli_json(small_world, "reconcile", "--dry-run")
    touching = [i for i in plan["changes"] + plan["errors"] if i["id"] in NEW_BUSINESS.values()]
    assert {i["system"] for i in touching} == {"salesforce"}, touching
