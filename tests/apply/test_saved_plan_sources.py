"""A saved plan applied after the deal its change came from was changed again (and pulled):
the plan's value is older than what the source holds now, so that change is not written."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from connectors.base import NativeUpdate
from sync.cli import main
from sync.plan_json import plan_from_json, plan_to_json
from sync.runtime import open_runtime
from tests.apply.conftest import Env

_AMOUNT = {"salesforce": "Amount", "hubspot": "amount"}


def _saved_plan(env: Env, path: Path) -> dict:  # type: ignore[type-arg]
    plan = plan_to_json(env.plan().plan)
    path.write_text(json.dumps(plan))
    return plan


def _source_of(env: Env, change: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    """The other member of the change's entity: in two CRMs, where its value came from."""
    with open_runtime(str(env.config), connect=False) as rt:
        members = [
            (link.instance, link.deal_id)
            for link in rt.store.link_records([change["entity"]])
            if (link.instance, link.deal_id) != (change["system"], change["id"])
        ]
    assert len(members) == 1, members
    return members[0]


def _apply(env: Env, path: Path) -> dict:  # type: ignore[type-arg]
    out = CliRunner().invoke(
        main, ["apply", str(path), "--config", str(env.config), "--yes", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def _amount_now(env: Env, system: str, deal_id: str) -> Decimal:
    with open_runtime(str(env.config)) as rt:
        (record,) = rt.connectors[system].read_deals([deal_id])
    fields = record.get("properties", record)  # HubSpot nests them
    return Decimal(str(fields[_AMOUNT[system]]))


def _amount_change(plan: dict) -> dict:  # type: ignore[type-arg]
    return next(c for c in plan["changes"] if c["field"] == "amount")


def _edit_source(env: Env, change: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    """A person gives the change's source deal a newer amount; returns (system, id)."""
    system, deal_id = _source_of(env, change)
    newer = Decimal(change["to"]) + 777
    with open_runtime(str(env.config)) as rt:
        native = float(newer) if system == "salesforce" else str(newer)  # as each API takes it
        (pushed,) = rt.connectors[system].update_deals(
            [NativeUpdate(deal_id, {_AMOUNT[system]: native})]
        )
        assert pushed.ok, pushed
    return system, deal_id


def _pull(env: Env, *args: str) -> None:
    pulled = CliRunner().invoke(main, ["pull", "--config", str(env.config), *args])
    assert pulled.exit_code == 0, pulled.output


def test_a_saved_plan_does_not_write_a_value_its_source_changed_again_since(
    env: Env, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    change = _amount_change(_saved_plan(env, path))
    system, deal_id = _edit_source(env, change)
    _pull(env)

    results = _apply(env, path)["results"]

    mine = next(r for r in results if r["change_id"] == change["change_id"])
    assert mine["outcome"] == "drifted", mine
    assert f"{system} {deal_id}" in mine["reason"] and "since the plan" in mine["reason"], mine
    # The older value was not written: the target still holds its own.
    assert _amount_now(env, change["system"], change["id"]) == Decimal(change["from"])
    others = [r for r in results if r["change_id"] != change["change_id"]]
    assert others and all(r["outcome"] == "applied" for r in others), others


def test_a_saved_plan_still_writes_a_change_whose_source_was_only_read_again(
    env: Env, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    change = _amount_change(_saved_plan(env, path))
    _pull(env, "--full")

    results = _apply(env, path)["results"]

    mine = next(r for r in results if r["change_id"] == change["change_id"])
    assert mine["outcome"] == "applied", mine


def test_a_saved_plan_does_not_write_a_value_its_source_changed_while_the_plan_was_made(
    env: Env, tmp_path: Path
) -> None:
    """An edit after the plan's pull read the source and before its analysis ended (minutes,
    at scale) is older than the plan, not than the data it planned from: the run that made
    the plan began before it."""
    path = tmp_path / "plan.json"
    made = CliRunner().invoke(
        main, ["reconcile", "--config", str(env.config), "--dry-run", "--plan-out", str(path)]
    )
    assert made.exit_code in (0, 3), made.output
    change = _amount_change(json.loads(path.read_text()))
    _edit_source(env, change)
    # As if the analysis had ended after the edit: the plan is stamped when it is made.
    later = datetime.now(UTC) + timedelta(seconds=2)
    plan = plan_from_json(path.read_bytes(), str(path))
    path.write_text(json.dumps(plan_to_json(dataclasses.replace(plan, created_at=later))))
    time.sleep(2)
    _pull(env)

    results = _apply(env, path)["results"]

    mine = next(r for r in results if r["change_id"] == change["change_id"])
    assert mine["outcome"] == "drifted", mine
