"""`crmsync report` against the HubSpot and Pipedrive emulators: the config's amount policy
picks which copy of a matched deal counts in the consolidated figures.

`fixtures.ironclad_amounts_apart`: Ironclad is the one matched deal whose copies disagree on the
amount, HubSpot's worth 250 more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures import ironclad_amounts_apart

from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    dataset = ironclad_amounts_apart()
    with hubspot_and_pipedrive(tmp_path_factory.mktemp("copies"), dataset) as sandbox_env:
        yield sandbox_env


def _with_amount_policy(env: SandboxEnv, policy: Any, store: str | None = None) -> Path:
    """The sandbox config with that amount policy; `store`: on a store of its own by that name,
    with Pipedrive no push target (read-only)."""
    document = yaml.safe_load(env.config.read_text())
    document.setdefault("policies", {}).setdefault("fields", {})["amount"] = policy
    name = policy if isinstance(policy, str) else "-".join(str(v) for v in policy.values())
    if store is not None:
        document["store"] = f"sqlite:///{env.config.parent}/{store}.db"
        document["push"]["targets"] = ["hubspot"]
        name += f"-{store}"
    config = env.config.with_name(f"crmsync-amount-{name}.yaml")
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _report(config: Path, form: str, *args: str) -> str:
    done = run_crmsync("report", "--config", str(config), "--format", form, *args, columns=250)
    assert done.returncode in (0, 3), done.stderr
    return done.stdout


def _consolidated(config: Path, *args: str) -> dict[str, Any]:
    return dict(json.loads(_report(config, "json", *args))["consolidated"])


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


def test_after_a_first_dry_run_the_agreed_value_counts_and_is_not_called_a_change(
    env: SandboxEnv,
) -> None:
    """A first `reconcile --dry-run` applies nothing, yet records as the copies' agreed value
    the one every copy it may write holds (there is nothing to write), marking the read-only
    copy as keeping its own. The report then counts that value, as reconcile would take the
    marked copy back to it, and must not call it a change since the copies agreed: none was
    made. A store with only a pull counts the same amount by policy."""
    truth = {"source_of_truth": "hubspot"}
    pulled, dry_run = (_with_amount_policy(env, truth, store) for store in ("pulled", "dry-run"))
    done = run_crmsync("pull", "--config", str(pulled), "--format", "table")
    assert done.returncode == 0, done.stderr
    done = run_crmsync("reconcile", "--config", str(dry_run), "--dry-run", "--format", "json")
    assert done.returncode in (0, 3), done.stderr
    by_pull, by_dry_run = _consolidated(pulled), _consolidated(dry_run)
    assert by_pull["open_amount"] == by_dry_run["open_amount"]  # the same copy's amount counts
    choice = _amount_choice(by_pull)
    assert (choice["by_policy"], choice["by_change"], choice["by_agreed_value"]) == (1, 0, 0)
    # `disagreed = by_policy + by_change + by_order + with_stage` still holds: by_agreed_value
    # is a part of by_change
    choice = _amount_choice(by_dry_run)
    assert (choice["disagreed"], choice["by_change"]) == (1, 1)
    assert (choice["by_policy"], choice["by_agreed_value"]) == (0, 1)
    for form in ("table", "html"):
        text = _report(dry_run, form)
        assert "amount: 0 by policy (source_of_truth: hubspot), 0 by config order" in text
        assert "1 at the value the other copies agree on" in text
        assert "by a change since the copies agreed" not in text
