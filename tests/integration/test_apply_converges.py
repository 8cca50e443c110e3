"""reconcile (with apply) on all three sandboxes converges: the CRMs then agree for real."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.plan_json import plan_to_json
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.store_records import RunStatus
from tests.integration.conftest import World

Applied = tuple[dict[str, Any], dict[str, Any]]  # the first apply's plan, the requests by then


def _reconcile(config: Path, *, dry_run: bool) -> dict:  # type: ignore[type-arg]
    with open_runtime(str(config)) as rt:
        outcome = run_reconcile(rt, dry_run=dry_run, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return plan_to_json(outcome.result.plan)


@pytest.fixture(scope="module")
def first_apply(world: World) -> Applied:
    """The world's first reconcile with apply: its plan, and every request the sandboxes had
    then. Each test asks for it, so none depends on another having run before it (pytest-xdist
    may run them in different workers, each with its own world)."""
    applied = _reconcile(world.config, dry_run=False)
    return applied, {system: stats["requests"] for system, stats in world.stats().items()}


def test_apply_then_reconcile_plans_nothing_and_a_fresh_store_agrees(
    world: World,
    first_apply: Applied,
    tmp_path: Path,
) -> None:
    applied, _ = first_apply
    assert applied["changes"], "the generated data should need corrections"

    again = _reconcile(world.config, dry_run=True)
    assert again["changes"] == [] and again["conflicts"] == []

    # A store that never saw the writes (no bases, no echo suppression) must agree as well:
    # this reads what the CRMs really hold now.
    document = yaml.safe_load(world.config.read_text())
    document["store"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    document["allow_absolute_paths"] = True
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(yaml.safe_dump(document))
    first_look = _reconcile(fresh, dry_run=True)
    assert first_look["changes"] == [] and first_look["conflicts"] == []


def test_a_second_apply_writes_nothing_and_reads_nothing_back(
    world: World,
    first_apply: Applied,
) -> None:
    before = world.stats()
    applied = _reconcile(world.config, dry_run=False)  # after the first apply: nothing to do
    after = world.stats()
    assert applied["changes"] == []
    for system in after:
        new = {
            k: n - before[system]["requests"].get(k, 0)
            for k, n in after[system]["requests"].items()
            if n != before[system]["requests"].get(k, 0)
        }
        # An incremental pull may read companies by POST (batch reads): no deal is read back.
        writes = {k: n for k, n in new.items() if k.split()[0] in ("PATCH", "PUT", "DELETE")
                  or "batch/update" in k or "deals/batch/read" in k}  # fmt: skip
        assert writes == {}, (system, writes)


def test_the_first_apply_used_one_call_per_batch(first_apply: Applied) -> None:
    _, requests = first_apply
    assert requests["salesforce"]["PATCH /services/data/{version}/composite/sobjects"] == 1
    assert requests["hubspot"]["POST /crm/objects/2026-09/deals/batch/update"] == 1
    assert requests["hubspot"]["POST /crm/objects/2026-09/deals/batch/read"] == 1
    # Pipedrive has no batch update: one PATCH per changed deal, and each batch of up to 10
    # re-read first in one `ids=` list call, not a GET per deal. The pull before read the
    # list in one page (under 500 deals) and once more `updated_since` it began.
    patches = requests["pipedrive"]["PATCH /api/v2/deals/{id}"]
    assert requests["pipedrive"]["GET /api/v2/deals"] == 2 + math.ceil(patches / 10)
    assert "GET /api/v2/deals/{id}" not in requests["pipedrive"]
