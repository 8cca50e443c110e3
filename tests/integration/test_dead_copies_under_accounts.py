"""A Salesforce org whose validation rule requires an Account refuses a copy under none: its
dead letter is of that copy, under no Account. Once a person files the source deal under an
account an Account bears, the copy planned goes under it: another copy, so the letter goes
and the copy is made, with no `dead-letters retry`. Through the CLI, against the sandboxes
over HTTP, on both store dialects."""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.cli import main
from tests.integration.conftest import World
from tests.integration.copies import (
    add_salesforce_accounts,
    file_under_new_organization,
    salesforce_copy,
)
from tests.integration.test_dead_letters_released import _letters


def _reconcile(world: World) -> dict[str, Any]:
    """A reconcile that applies; some copies fail (owners Salesforce lacks): exit 0 or 1."""
    out = CliRunner().invoke(
        main, ["reconcile", "--yes", "--format", "json", "--config", str(world.config)]
    )
    assert out.exit_code in (0, 1), out.output
    return dict(json.loads(out.stdout))


def _last_counts(world: World) -> dict[str, Any]:
    out = CliRunner().invoke(main, ["runs", "--format", "json", "--config", str(world.config)])
    return dict(json.loads(out.stdout)[0]["counts"])


def test_a_dead_salesforce_copy_is_tried_afresh_once_its_account_names_an_account(
    one_try_world: World,
) -> None:
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["salesforce"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    dry = CliRunner().invoke(
        main, ["reconcile", "--dry-run", "--format", "json", "--config", str(world.config)]
    )
    create = next(
        c
        for c in json.loads(dry.stdout)["creates"]
        if c["system"] == "salesforce" and c["source"]["system"] == "pipedrive"
    )
    entity = create["entity"]
    file_under_new_organization(world, create, "Unfiled Traders")  # no Account bears it
    # the org's rule: an Opportunity needs an Account (this copy's refusal stands for it)
    world.sandbox.servers["salesforce"].faults.set(Faults(fail_ids=(entity,)))
    _reconcile(world)
    assert [r["state"] for r in _letters(world) if r["id"] == entity] == ["dead"]
    world.sandbox.servers["salesforce"].faults.set(Faults())
    _reconcile(world)  # the same copy, under no Account: dead, not sent
    assert "salesforce" not in world.members().get(entity, {})
    assert _last_counts(world).get("dead_letters_settled", 0) == 0

    [account] = add_salesforce_accounts(world, "Filed Traders")
    file_under_new_organization(world, create, "Filed Traders")  # a person files the deal under it
    _reconcile(world)
    assert "salesforce" in world.members().get(entity, {}), "the letter kept the copy dead"
    assert salesforce_copy(world, entity)["AccountId"] == account
    assert entity not in {r["id"] for r in _letters(world, "--retrying")}
    assert _last_counts(world)["dead_letters_settled"] >= 1
