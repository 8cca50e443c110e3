"""`crmsync links join` adds deals to the entity one of them is in. The plan's Ambiguous section
sends people to `links join` to pair a deal with the candidate they choose, but the deal is
often linked already (a HubSpot deal linked to its Salesforce Opportunity by id, with two
Pipedrive look-alikes): join refused it ("in entity E already: split it first"), and a split
would undo the match the CRMs vouch for."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from click.testing import CliRunner, Result

from sync.cli import main
from tests.integration.conftest import World


def _cli(world: World, *args: str, code: int = 0) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == code, (args, out.output)
    return out


def _members(world: World) -> dict[str, dict[str, dict[str, Any]]]:
    """entity -> instance -> its link row (`links show --format json`)."""
    rows = json.loads(_cli(world, "links", "show", "--format", "json").stdout)
    found: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        found[row["entity"]][row["system"]] = row
    return found


def test_a_free_deal_joins_the_entity_a_linked_deal_is_in_and_its_links_stay(
    small_world: World,
) -> None:
    world = small_world
    plan = json.loads(_cli(world, "reconcile", "--dry-run", "--format", "json").stdout)
    lone = next(u for u in plan["unmatched"] if u["system"] == "pipedrive")
    before = _members(world)
    entity, members = next((e, m) for e, m in before.items() if set(m) == {"salesforce", "hubspot"})
    hubspot = members["hubspot"]["id"]

    joined = _cli(world, "links", "join", f"hubspot:{hubspot}", f"pipedrive:{lone['id']}")

    assert f"as {entity}" in joined.stdout, joined.stdout
    after = _members(world)
    assert set(after[entity]) == {"salesforce", "hubspot", "pipedrive"}
    assert after[entity]["pipedrive"]["id"] == lone["id"]
    assert (after[entity]["pipedrive"]["method"], after[entity]["pipedrive"]["confirmed"]) == (
        "manual",
        True,
    )
    for system in ("salesforce", "hubspot"):  # the CRMs' own evidence is kept as it was
        assert after[entity][system] == members[system]
    replanned = json.loads(_cli(world, "reconcile", "--dry-run", "--format", "json").stdout)
    assert lone["id"] not in {u["id"] for u in replanned["unmatched"] if u["system"] == "pipedrive"}


def test_a_join_that_would_give_an_entity_two_deals_of_an_instance_changes_nothing(
    small_world: World,
) -> None:
    world = small_world
    plan = json.loads(_cli(world, "reconcile", "--dry-run", "--format", "json").stdout)
    lone = next(u for u in plan["unmatched"] if u["system"] == "pipedrive")
    before = _members(world)
    whole = [e for e, m in before.items() if set(m) == {"salesforce", "hubspot", "pipedrive"}]
    first, second = before[whole[0]], before[whole[1]]
    hubspot, salesforce = first["hubspot"]["id"], second["salesforce"]["id"]

    taken = _cli(world, "links", "join", f"hubspot:{hubspot}", f"pipedrive:{lone['id']}", code=2)
    apart = _cli(world, "links", "join", f"hubspot:{hubspot}", f"salesforce:{salesforce}", code=2)

    pipedrive = first["pipedrive"]["id"]
    assert f"it has pipedrive:{pipedrive} in entity {whole[0]} already" in taken.stderr
    assert f"entity {whole[0]}" in apart.stderr and f"entity {whole[1]}" in apart.stderr
    assert _members(world) == before
