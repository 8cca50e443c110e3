"""What the consolidated section says of a matched deal's counted copy after a first
`reconcile --dry-run`, against the HubSpot and Pipedrive emulators: that run applies nothing,
yet records as the copies' agreed value the one every copy it may write holds (there is nothing
to write), marking the read-only copy as keeping its own. The report then counts that value,
as reconcile would take the marked copy back to it, and must not call it a change since the
copies agreed: none was made.

The generator's five deals per CRM (seed 7); HubSpot's copy of "Ironclad LLC — Platform
Migration 2026" is worth 250 more than Pipedrive's, the planted differences of the Gekko and
Adventure Works deals taken back. Pipedrive is no push target; `amount: {source_of_truth:
hubspot}`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.sandbox_env import (
    SandboxEnv,
    crmsync_env,
    hubspot_and_pipedrive,
    run_crmsync,
    warm_crmsync,
)

IRONCLAD = "Ironclad LLC — Platform Migration 2026"


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    hubspot = {d["properties"]["dealname"]: d["properties"] for d in dataset["hubspot"]["deals"]}
    hubspot[IRONCLAD]["amount"] = "33630.02"
    pipedrive = {d["title"].split(" — ")[0]: d for d in dataset["pipedrive"]["deals"]}
    pipedrive["Gekko LLC"]["currency"] = "EUR"
    pipedrive["Adventure Works Holdings"]["value"] = 14375.0
    return {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    with hubspot_and_pipedrive(tmp_path_factory.mktemp("dry-run"), _dataset()) as sandbox_env:
        yield sandbox_env


def _config(env: SandboxEnv, store: str) -> Path:
    """The sandbox config on a store of its own, Pipedrive read-only."""
    document = yaml.safe_load(env.config.read_text())
    document["store"] = f"sqlite:///{env.config.parent}/{store}.db"
    document["push"]["targets"] = ["hubspot"]
    document["policies"]["fields"]["amount"] = {"source_of_truth": "hubspot"}
    config = env.config.with_name(f"crmsync-{store}.yaml")
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def _crmsync(*args: str) -> str:
    done = subprocess.run(
        [*warm_crmsync(), *args],
        env={**crmsync_env(), "COLUMNS": "250"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stderr
    return done.stdout


def _amount(config: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The consolidated open amounts, and how the amount's copy was chosen."""
    report = json.loads(_crmsync("report", "--config", str(config), "--format", "json"))
    consolidated = report["consolidated"]
    [amount] = [f for f in consolidated["copies_counted"]["fields"] if f["field"] == "amount"]
    return consolidated["open_amount"], amount


@pytest.fixture(scope="module")
def stores(env: SandboxEnv) -> tuple[Path, Path]:
    """A store holding only a pull, and one holding a first dry run."""
    pulled, dry_run = _config(env, "pulled"), _config(env, "dry-run")
    done = run_crmsync("pull", "--config", str(pulled), "--format", "table")
    assert done.returncode == 0, done.stderr
    _crmsync("reconcile", "--config", str(dry_run), "--dry-run", "--format", "json")
    return pulled, dry_run


def test_after_a_first_dry_run_the_agreed_value_counts_and_is_not_called_a_change(
    stores: tuple[Path, Path],
) -> None:
    pulled, dry_run = stores
    (pulled_open, by_pull), (dry_open, by_dry_run) = _amount(pulled), _amount(dry_run)
    assert pulled_open == dry_open  # the same copy's amount counts
    assert (by_pull["by_policy"], by_pull["by_change"], by_pull["by_agreed_value"]) == (1, 0, 0)
    # `disagreed = by_policy + by_change + by_order + with_stage` still holds: by_agreed_value
    # is a part of by_change
    assert (by_dry_run["disagreed"], by_dry_run["by_change"]) == (1, 1)
    assert (by_dry_run["by_policy"], by_dry_run["by_agreed_value"]) == (0, 1)
    for form in ("table", "html"):
        text = _crmsync("report", "--config", str(dry_run), "--format", form)
        assert "amount: 0 by policy (source_of_truth: hubspot), 0 by config order" in text
        assert "1 at the value the other copies agree on" in text
        assert "by a change since the copies agreed" not in text
