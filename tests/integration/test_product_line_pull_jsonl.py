"""`crmsync pull --format jsonl` tells a script each deal's product line: its funnel, after the
documented keys (which keep their order), so a renewal in HubSpot's or Pipedrive's Renewals
pipeline reads `"funnel": "renewal"` and a new-business deal `"funnel": "default"`."""

from __future__ import annotations

import json

from tests.integration.conftest import World
from tests.integration.product_lines import renewals_on_their_own_funnel
from tests.sandbox_env import run_crmsync

RENEWAL_PIPELINES = {("hubspot", "renewals"), ("pipedrive", "2")}


def test_pull_jsonl_gives_each_deal_the_funnel_of_its_pipeline(small_world: World) -> None:
    renewals_on_their_own_funnel(small_world)

    done = run_crmsync("pull", "--config", str(small_world.config), "--format", "jsonl")

    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records and all(list(r)[-1] == "funnel" for r in records)
    funnels = {
        (r["system"], r["pipeline"]): r["funnel"] for r in records if r["system"] != "salesforce"
    }
    assert {where for where, funnel in funnels.items() if funnel == "renewal"} == RENEWAL_PIPELINES
    assert {r["funnel"] for r in records if r["system"] == "salesforce"} == {"default"}
