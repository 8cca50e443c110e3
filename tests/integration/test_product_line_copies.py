"""Copies `push.create_missing` makes of a renewal go to the target CRM's pipeline of the renewal
funnel. The sandbox's Salesforce org has no record types, so one pipeline, on the default
funnel: it gets no copy of a renewal, even where the renewal funnel shares a stage key with the
default one (here its lost stage is `lost` too), and the plan says which `pipeline_funnels`
would take one."""

from __future__ import annotations

import yaml

from tests.integration.conftest import World
from tests.integration.native_stages import cli_json, stages
from tests.integration.product_lines import renewals_on_their_own_funnel

# Seed 3, 60 deals: renewals Pipedrive alone holds, in its Renewals pipeline (2).
CHURNED, QUOTED = "16", "44"  # lost in stage 8 (Quote Sent); open in Quote Sent


def _renewals_lost_as_lost_and_copied(world: World) -> None:
    renewals_on_their_own_funnel(world)
    document = yaml.safe_load(world.config.read_text())
    for stage in document["funnels"]["renewal"]["stages"]:
        if stage["key"] == "churned":
            stage["key"] = "lost"
    document["systems"]["hubspot"]["stage_map"]["renewals"]["75210936"] = "lost"
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def test_copies_of_renewals_land_in_the_renewals_pipelines_and_never_in_salesforces_one(
    small_world: World,
) -> None:
    _renewals_lost_as_lost_and_copied(small_world)

    plan = cli_json(small_world, "reconcile", "--dry-run")

    creates = {
        (c["system"], c["source"]["id"]): c["target"]
        for c in plan["creates"]
        if c["source"] == {"system": "pipedrive", "id": c["source"]["id"]}
        and c["source"]["id"] in (CHURNED, QUOTED)
    }
    assert {k: (t["pipeline"], t["native_stage"]) for k, t in creates.items()} == {
        ("hubspot", CHURNED): ("renewals", "75210936"),
        ("hubspot", QUOTED): ("renewals", "75210933"),
    }
    refused = {
        e["id"]: e["reason"]
        for e in plan["errors"]
        if e["system"] == "pipedrive" and e["id"] in (CHURNED, QUOTED)
    }
    assert set(refused) == {CHURNED, QUOTED}, refused
    for reason in refused.values():
        assert reason.startswith("no copy can be made in salesforce: "), reason
        assert "funnel 'renewal'" in reason and "systems.salesforce.pipeline_funnels" in reason

    cli_json(small_world, "reconcile", "--yes")
    after = cli_json(small_world, "reconcile", "--dry-run")  # reads the copies back: linked
    assert not [c for c in after["creates"] if c["source"]["id"] in (CHURNED, QUOTED)]
    copies = {
        source: members["hubspot"]
        for members in small_world.members().values()
        for source in (CHURNED, QUOTED)
        if members.get("pipedrive") == source
    }
    assert "salesforce" not in {
        s for m in small_world.members().values() if m.get("pipedrive") in copies for s in m
    }
    assert stages(small_world, {"hubspot": copies[QUOTED]}) == {"hubspot": ("renewals", "75210933")}
    assert stages(small_world, {"hubspot": copies[CHURNED]}) == {
        "hubspot": ("renewals", "75210936")
    }
