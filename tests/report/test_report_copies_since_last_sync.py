"""`crmsync report` against the HubSpot and Pipedrive emulators after a reconcile has made the
copies of every matched deal agree (their base), with the sandbox config's `newest` policies.

Then two people edit "Ironclad LLC — Platform Migration 2026" (proposal, HubSpot's newer
stage, USD 33380.02 after the reconcile): one moves it to negotiation in Pipedrive, a moment
later another raises its amount in HubSpot. HubSpot's copy is the newest, but only
Pipedrive's changed the stage: reconcile spreads Pipedrive's stage and HubSpot's amount, and
the report counts them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync

HUBSPOT_IRONCLAD, PIPEDRIVE_IRONCLAD = "9100000014", 2
NEGOTIATION = 5  # Pipedrive's "Negotiations Started"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("since-last-sync")
    with hubspot_and_pipedrive(folder, generate(4, 7)[0]) as sandbox_env:
        yield sandbox_env


def _report(config: Path) -> dict[str, Any]:
    done = run_crmsync("report", "--config", str(config), "--format", "json", "--refresh")
    assert done.returncode in (0, 3), done.stderr
    return dict(json.loads(done.stdout))


def _stages(report: dict[str, Any]) -> dict[str, int]:
    [figures] = report["funnels"].values()
    return {stage["key"]: stage["count"] for stage in figures["stages"]}


def _choice(report: dict[str, Any], field: str) -> dict[str, Any]:
    [found] = [f for f in report["consolidated"]["copies_counted"]["fields"] if f["field"] == field]
    return dict(found)


def test_a_stage_changed_in_one_crm_counts_though_another_crm_edited_the_deal_later(
    env: SandboxEnv,
) -> None:
    done = run_crmsync("reconcile", "--config", str(env.config), "--yes")
    assert done.returncode == 0, done.stderr
    before = _report(env.config)
    assert _choice(before, "stage")["disagreed"] == 0

    pipedrive = env.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:
        pipedrive.store.update(PIPEDRIVE_IRONCLAD, {"stage_id": NEGOTIATION})
    time.sleep(1.1)  # Pipedrive stamps whole seconds: HubSpot's edit is the later one
    hubspot = env.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        hubspot.store.update(HUBSPOT_IRONCLAD, {"amount": "34000"})
    after = _report(env.config)

    moved = {
        k: n - _stages(before)[k] for k, n in _stages(after).items() if n != _stages(before)[k]
    }
    assert moved == {"proposal": -1, "negotiation": 1}
    open_usd = [Decimal(r["consolidated"]["open_amount"]["USD"]) for r in (before, after)]
    assert open_usd[1] - open_usd[0] == Decimal("34000") - Decimal("33380.02")
    for field in ("stage", "amount"):
        assert _choice(after, field) | {"policy": "newest"} == {
            "field": field,
            "policy": "newest",
            "disagreed": 1,
            "by_policy": 0,
            "by_order": 0,
            "with_stage": 0,
            "by_change": 1,
            "by_agreed_value": 0,  # a change made in one CRM: not the agreed value
        }
    # what the report counts is what reconcile spreads
    planned = {
        (m["system"], m["id"], m["field"]): m["value_to"]
        for m in after["cross_system"]["mismatches"]
    }
    assert planned[("hubspot", HUBSPOT_IRONCLAD, "stage")] == "negotiation"
    assert planned[("pipedrive", str(PIPEDRIVE_IRONCLAD), "amount")] == "34000"
