"""A HubSpot portal with many pipelines: a deal read asks for the stage-entered date of every
stage, which can make a request line longer than HubSpot's front end takes."""

from __future__ import annotations

import copy
from typing import Any

from tests.integration.conftest import World


def _add_pipelines(hubspot: Any, count: int, stages: int) -> None:
    """`count` more pipelines of `stages` stages each, with numeric stage ids as HubSpot
    makes them for pipelines an admin adds."""
    with hubspot.lock:
        template = hubspot.store.pipelines[0]
        for n in range(count):
            pipeline = copy.deepcopy(template)
            pipeline.update(id=str(700_000_000 + n), label=f"Product line {n}", displayOrder=n + 9)
            pipeline["stages"] = [
                {**copy.deepcopy(template["stages"][0]), "id": str(800_000_000 + 100 * n + s)}
                for s in range(stages)
            ]
            hubspot.store.pipelines.append(pipeline)


def test_a_full_read_of_a_portal_of_40_pipelines_of_12_stages_reads_every_deal_and_history(
    small_world: World,
) -> None:
    server = small_world.sandbox.servers["hubspot"]
    hubspot: Any = server.emulator
    _add_pipelines(hubspot, count=40, stages=12)  # 480 stage-entered dates asked for

    result = small_world.reconcile("many-pipelines")

    pull = result.pulls["hubspot"]
    assert pull.failure is None, pull.failure
    deals = result.by_instance["hubspot"]
    assert len(deals) == len(hubspot.store.live) + len(hubspot.store.archived)
    assert sum(len(d.stage_history) for d in deals) > len(deals)  # hs_date_entered_* read
    assert any(d.extra.get("account") for d in deals)  # the companies the list gave, kept
    served = server.stats.snapshot()
    assert served["statuses"].get("414", 0) == 0
    # the properties read by id, one batch call per page listed
    pages = served["requests"]["GET /crm/objects/2026-09/deals"]
    assert served["requests"]["POST /crm/objects/2026-09/deals/batch/read"] == pages
