"""With `push.create_missing`, a copy its target CRM could not hold (the generator gives some
deals of one CRM an owner the others lack) is listed under the plan's errors, as a change to a
value the target cannot hold is, and not planned: planned, each create failed at apply, was
retried every night and ended as a dead letter."""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _reconcile(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), *args])
    assert out.exit_code == 0, out.output
    return out


def test_a_copy_whose_owner_the_target_lacks_is_an_error_in_the_plan_not_a_failed_create(
    small_world: World,
) -> None:
    world = small_world
    _give_a_salesforce_only_deal_the_salesforce_only_owner(world)
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    plan = json.loads(_reconcile(world, "--dry-run", "--format", "json").stdout)

    refused = [e for e in plan["errors"] if e["reason"].startswith("no copy can be made in ")]
    assert refused, plan["errors"]
    assert all(e["field"] == "owner_email" and "user" in e["reason"] for e in refused), refused
    refused_sources = {(e["system"], e["id"]) for e in refused}
    planned_sources = {(c["source"]["system"], c["source"]["id"]) for c in plan["creates"]}
    assert plan["creates"] and not refused_sources & planned_sources

    applied = json.loads(_reconcile(world, "--yes", "--format", "json").stdout)
    assert applied["summary"]["creates"] == len(plan["creates"])
    runs = json.loads(
        CliRunner().invoke(main, ["runs", "--format", "json", "--config", str(world.config)]).stdout
    )
    assert runs[0]["status"] == "ok" and runs[0]["error"] is None, runs[0]


def _give_a_salesforce_only_deal_the_salesforce_only_owner(world: World) -> None:
    """The generator gives one in ten single-CRM deals such an owner, so a small world may
    have none: make sure of one."""
    dataset = world.generated.dataset
    elsewhere = {o["email"].lower() for o in dataset["hubspot"]["owners"] if o.get("email")}
    elsewhere |= {u["email"].lower() for u in dataset["pipedrive"]["users"]}
    [owner] = [
        u["Id"] for u in dataset["salesforce"]["User"] if u["Email"].lower() not in elsewhere
    ]
    [deal, *_] = [
        r["salesforce"] for r in world.generated.entity_refs.values() if set(r) == {"salesforce"}
    ]
    salesforce = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        salesforce.store.apply(salesforce.store.check_update(deal, {"OwnerId": owner}))
