"""A linked deal someone deletes in one CRM after crmsync linked it is reported as deleted in
one system and live in the others, by the next incremental reconcile and by a full one; it is
neither mistaken for a live deal nor re-created."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from tests.integration.conftest import World


def _plan(world: World, *extra: str) -> Any:
    args = ["reconcile", "--dry-run", "--config", str(world.config), "--format", "json", *extra]
    out = CliRunner().invoke(main, args)
    assert out.exit_code in (0, 3), out.output
    return json.loads(out.stdout)


@pytest.mark.parametrize("system", ["salesforce", "hubspot", "pipedrive"])
def test_a_linked_deal_deleted_in_one_crm_is_reported_by_the_next_runs(
    small_world: World, system: str
) -> None:
    out = CliRunner().invoke(main, ["reconcile", "--config", str(small_world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    entity, ids = next((e, i) for e, i in small_world.members().items() if len(i) == 3)
    with open_runtime(str(small_world.config)) as rt:  # a person deletes it, through the API
        assert rt.connectors[system].delete_deals([ids[system]])[0].ok  # type: ignore[attr-defined]

    for extra in ((), ("--full",)):
        plan = _plan(small_world, *extra)
        reported = [d for d in plan["deleted"] if d["entity"] == entity]
        assert reported, f"{extra}: the deletion of {system} {ids[system]} is not reported"
        assert reported[0]["deleted"] == [{"system": system, "id": ids[system]}]
        assert {(r["system"], r["id"]) for r in reported[0]["live"]} == {
            (s, i) for s, i in ids.items() if s != system
        }
        assert not [c for c in plan["creates"] if c["entity"] == entity]
        assert not [c for c in plan["changes"] if c["entity"] == entity]
