"""`crmsync report` against the HubSpot and Pipedrive emulators: the config's amount policy
picks which copy of a matched deal counts in the consolidated figures.

The generator's five deals per CRM (seed 7), with these changes: HubSpot's copy of "Ironclad
LLC — Platform Migration 2026" (open, USD 33380.02 in both CRMs) is worth 250 more there, and
the planted currency and amount differences of the Gekko and Adventure Works deals are taken
back, so Ironclad is the one matched deal whose copies disagree on the amount.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync

IRONCLAD = "Ironclad LLC — Platform Migration 2026"


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    hubspot = {d["properties"]["dealname"]: d["properties"] for d in dataset["hubspot"]["deals"]}
    assert hubspot[IRONCLAD]["amount"] == "33380.02"
    hubspot[IRONCLAD]["amount"] = "33630.02"
    pipedrive = {d["title"].split(" — ")[0]: d for d in dataset["pipedrive"]["deals"]}
    pipedrive["Gekko LLC"]["currency"] = "EUR"  # as HubSpot has them: one amount differs
    pipedrive["Adventure Works Holdings"]["value"] = 14375.0
    return {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    with hubspot_and_pipedrive(tmp_path_factory.mktemp("copies"), _dataset()) as sandbox_env:
        yield sandbox_env


def _with_amount_policy(env: SandboxEnv, policy: Any) -> Path:
    document = yaml.safe_load(env.config.read_text())
    document.setdefault("policies", {}).setdefault("fields", {})["amount"] = policy
    name = policy if isinstance(policy, str) else "-".join(str(v) for v in policy.values())
    config = env.config.with_name(f"crmsync-amount-{name}.yaml")
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _consolidated(config: Path, *args: str) -> dict[str, Any]:
    done = run_crmsync("report", "--config", str(config), "--format", "json", *args)
    assert done.returncode in (0, 3), done.stderr
    return dict(json.loads(done.stdout)["consolidated"])


def _amount_choice(consolidated: dict[str, Any]) -> dict[str, Any]:
    [amount] = [f for f in consolidated["copies_counted"]["fields"] if f["field"] == "amount"]
    return dict(amount)


def test_the_configured_source_of_truth_decides_which_amount_of_a_matched_deal_counts(
    env: SandboxEnv,
) -> None:
    hubspot = _consolidated(_with_amount_policy(env, {"source_of_truth": "hubspot"}), "--refresh")
    pipedrive = _consolidated(_with_amount_policy(env, {"source_of_truth": "pipedrive"}))
    difference = Decimal(hubspot["open_amount"]["USD"]) - Decimal(pipedrive["open_amount"]["USD"])
    assert difference == Decimal("250")
    counts = ("deals", "copies_merged", "open", "won", "lost")
    assert [hubspot[k] for k in counts] == [pipedrive[k] for k in counts]  # the same deals
    assert _amount_choice(hubspot) == {
        "field": "amount",
        "policy": "source_of_truth: hubspot",
        "disagreed": 1,
        "by_policy": 1,
        "by_order": 0,
        "with_stage": 0,
        "by_change": 0,
        "by_agreed_value": 0,
    }


def test_without_an_amount_policy_the_first_instance_copy_counts_and_the_report_says_so(
    env: SandboxEnv,
) -> None:
    first = _consolidated(_with_amount_policy(env, {"source_of_truth": "hubspot"}), "--refresh")
    default = _consolidated(_with_amount_policy(env, "conflict"))
    assert default["copies_counted"]["order"] == ["hubspot", "pipedrive"]
    assert default["open_amount"] == first["open_amount"]  # hubspot is first in config order
    assert _amount_choice(default)["by_order"] == 1
