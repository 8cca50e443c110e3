"""A migration copies hundreds of deals into Salesforce: its creates, and the deletes of their
rollback, go out 200 per sObject Collections call (the API's maximum, as for updates), and the
plan's estimate of write calls (with the queries looking up the copies' Accounts) is what the
apply then spends."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.salesforce_accounts import account_calls
from tests.integration.conftest import World, build_world
from tests.sandbox_env import run_crmsync

COLLECTIONS = "{} /services/data/{{version}}/composite/sobjects"


@pytest.fixture
def migrating(tmp_path: Path) -> Iterator[World]:
    """Enough deals that a few hundred are missing in Salesforce, the one push target."""
    for world in build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=900, seed=5):
        document = yaml.safe_load(world.config.read_text())
        document["push"].update(create_missing=True, targets=["salesforce"])
        world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        yield world


def _crmsync(world: World, *args: str) -> Any:
    done = run_crmsync(*args, "--config", str(world.config), "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _salesforce_calls(world: World, method: str) -> int:
    requests = world.sandbox.servers["salesforce"].stats.snapshot()["requests"]
    return int(requests.get(COLLECTIONS.format(method), 0))


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_salesforce_copies_and_their_rollback_go_out_200_per_call(
    migrating: World, tmp_path: Path
) -> None:
    world, saved = migrating, tmp_path / "plan.json"
    plan = _crmsync(world, "reconcile", "--dry-run", "--plan-out", str(saved))
    creates = plan["summary"]["creates_by_system"]["salesforce"]
    assert creates > 200, "the generated world lacks the creates this test needs"
    expected = math.ceil(creates / 200)

    applied = _crmsync(world, "apply", str(saved), "--yes")
    assert _salesforce_calls(world, "POST") == expected
    updates = math.ceil(plan["summary"]["records_to_update"].get("salesforce", 0) / 200)
    names = [c["account"]["name"] for c in plan["creates"] if c["account"]["by"] == "account"]
    lookups = account_calls(names)
    assert plan["summary"]["api_calls"]["salesforce"] == expected + updates + lookups

    _crmsync(world, "rollback", applied["run_id"], "--apply", "--yes")
    assert _salesforce_calls(world, "DELETE") == expected


def test_a_first_apply_sends_each_pipedrive_copy_in_one_call_without_a_marker_search(
    small_world: World, tmp_path: Path
) -> None:
    """Pipedrive has no batch create and searches one marker per call: looking up every copy
    before its first send doubled a migration's calls there. Only a copy an earlier, stopped
    attempt may have sent can exist already (each send is journaled first); the tests of
    stopped applies keep those looked up."""
    world, saved = small_world, tmp_path / "plan.json"
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["pipedrive"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = _crmsync(world, "reconcile", "--dry-run", "--plan-out", str(saved))
    creates = plan["summary"]["creates_by_system"]["pipedrive"]
    assert creates, "the generated world lacks the creates this test needs"
    pipedrive = world.sandbox.servers["pipedrive"].stats
    before = pipedrive.snapshot()["requests"]

    _crmsync(world, "apply", str(saved), "--yes")
    after = pipedrive.snapshot()["requests"]
    sent = {
        k: after.get(k, 0) - before.get(k, 0)
        for k in ("POST /api/v2/deals", "GET /api/v2/deals/search")
    }
    assert sent == {"POST /api/v2/deals": creates, "GET /api/v2/deals/search": 0}
