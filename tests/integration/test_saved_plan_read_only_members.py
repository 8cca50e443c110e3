"""A saved plan applied after a member of no push target was edited in another field: that
member keeps its own value of the planned field by design (the plan records it as kept), so
the plan's value is still the news and is written."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from sync.cli import main
from sync.plan_json import plan_to_json
from tests.integration.conftest import World
from tests.integration.test_partial_targets import _reconcile
from tests.integration.test_read_only_instances import (
    salesforce_edited_with_hubspot_the_only_target,
)


def test_a_saved_plan_writes_a_change_a_read_only_member_keeps_another_value_of(
    small_world: World, tmp_path: Path
) -> None:
    _reconcile(small_world, dry_run=False)
    ids, editors = salesforce_edited_with_hubspot_the_only_target(small_world)
    plan = plan_to_json(small_world.reconcile("saved-plan").plan)
    (change,) = [c for c in plan["changes"] if c["id"] == ids["hubspot"]]
    assert change["field"] == "close_date"
    assert any(k["system"] == "pipedrive" and k["id"] == ids["pipedrive"] for k in plan["kept"])
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    time.sleep(1.1)  # Pipedrive stamps whole seconds: the edit is after the plan's
    # Someone renames the read-only Pipedrive copy; a pull reads it (its close date unchanged).
    editors.set_value("pipedrive", ids["pipedrive"], "name", "Renamed in Pipedrive")
    pulled = CliRunner().invoke(main, ["pull", "--config", str(small_world.config)])
    assert pulled.exit_code == 0, pulled.output

    out = CliRunner().invoke(
        main, ["apply", str(path), "--config", str(small_world.config), "--yes", "--format", "json"]
    )

    assert out.exit_code == 0, out.output
    (result,) = [
        r for r in json.loads(out.output)["results"] if r["change_id"] == change["change_id"]
    ]
    assert result["outcome"] == "applied", result
