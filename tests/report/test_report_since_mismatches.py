"""`crmsync report --since DATE`: the cross-system mismatches (and so `mismatch_rate`) count the
matched deals in the window, each when any of its copies is, as the pairs and the consolidated
figures do. They used to count every matched deal of the store: a report of today's deals
breached `mismatch_rate` with differences planted in deals nobody had touched for a year, and
listed them, next to pairs that matched no deal at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, hubspot_and_pipedrive, run_crmsync

# "Atlas Group — Platform Migration 2026": one deal, matched across the two CRMs.
HUBSPOT_ATLAS, PIPEDRIVE_ATLAS = "9100000014", "2"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("since-mismatches")
    with hubspot_and_pipedrive(folder, generate(4, 7)[0]) as sandbox_env:
        yield sandbox_env


def _report(config: Path, *args: str) -> dict[str, Any]:
    done = run_crmsync("report", "--config", str(config), "--format", "json", *args)
    assert done.returncode in (0, 3), done.stderr
    return dict(json.loads(done.stdout))


def _mismatched(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m["system"], m["id"]) for m in report["cross_system"]["mismatches"]}


def test_report_since_counts_only_the_mismatches_of_matched_deals_in_the_window(
    env: SandboxEnv,
) -> None:
    everything = _report(env.config, "--refresh")
    assert everything["cross_system"]["mismatched_entities"] > 0  # the generator's planted ones
    hubspot = env.sandbox.servers["hubspot"].emulator
    with hubspot.lock:  # someone raises the amount in HubSpot today
        hubspot.store.update(HUBSPOT_ATLAS, {"amount": "28000"})
    today = datetime.now(UTC).date().isoformat()

    report = _report(env.config, "--refresh", "--since", today)

    cross = report["cross_system"]
    # Pipedrive's copy, not updated today, is in the window with the HubSpot copy that was.
    assert _mismatched(report) == {("pipedrive", PIPEDRIVE_ATLAS)}
    assert (cross["entities"], cross["mismatched_entities"]) == (1, 1)
    assert cross["mismatches_by_field"]["amount"] == 1
    [rate] = [t for t in report["thresholds"] if t["name"] == "mismatch_rate"]
    assert rate["value"] == "1.0000"
