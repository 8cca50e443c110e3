"""One real deal whose copies sit in different funnels: Salesforce's single pipeline follows the
default funnel, while the renewals pipelines of HubSpot and Pipedrive follow a funnel of their
own (`pipeline_funnels`). A stage key means something only in its own funnel, so the status
that follows a decided stage must be read in that stage's funnel: 'lost' of the default funnel
is closed-lost, though the renewal funnel (whose lost stage is 'churned') has no such key.
Reading it in the first copy's funnel used to plan every copy of a deal all CRMs hold as lost
back to open."""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World

RENEWAL = [
    {"key": "due", "phase": "awareness", "probability": 0.1},
    {"key": "contacted", "phase": "interest", "probability": 0.3},
    {"key": "quoted", "phase": "decision", "probability": 0.5},
    {"key": "commit", "phase": "decision", "probability": 0.8},
    {"key": "renewed", "phase": "action", "probability": 1, "closed": True, "won": True},
    {"key": "churned", "phase": "action", "probability": 0, "closed": True},
]
# The deal: Salesforce 0065g0000000001AAA, HubSpot 9100000007 (renewals), Pipedrive 1
# (pipeline 2), lost in all three in the generated data (seed 3).
COPIES = {"salesforce": "0065g0000000001AAA", "hubspot": "9100000007", "pipedrive": "1"}


def _renewal_funnel_for_renewals_pipelines(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["funnels"] = {"renewal": {"stages": RENEWAL}}
    systems = document["systems"]
    systems["hubspot"]["pipeline_funnels"] = {"default": "default", "renewals": "renewal"}
    systems["hubspot"]["stage_map"]["renewals"] = {
        "75210931": "due", "75210932": "contacted", "75210933": "quoted",
        "75210934": "commit", "75210935": "renewed", "75210936": "churned",
    }  # fmt: skip
    systems["pipedrive"]["pipeline_funnels"] = {"1": "default", "2": "renewal"}
    systems["pipedrive"]["stage_map"]["2"] = {
        "6": "due",
        "7": "contacted",
        "8": "quoted",
        "9": "commit",
    }
    document["policies"]["fields"]["stage"] = {"source_of_truth": "salesforce"}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _dry_run(world: World) -> dict[str, Any]:
    args = ["reconcile", "--dry-run", "--config", str(world.config), "--format", "json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_a_deal_lost_in_every_crm_is_not_reopened_when_its_copies_are_in_different_funnels(
    small_world: World,
) -> None:
    _renewal_funnel_for_renewals_pipelines(small_world)

    plan = _dry_run(small_world)

    mine = [c for c in plan["changes"] if COPIES.get(c["system"]) == c["id"]]
    assert not [c for c in mine if c["field"] == "status"], mine
    stages = {c["system"]: c["to"] for c in mine if c["field"] == "stage"}
    assert stages == {}, stages  # 'lost' fits no renewal copy: reported, never written there
    assert {(e["system"], e["id"]) for e in plan["errors"] if e["field"] == "stage"} >= {
        ("hubspot", COPIES["hubspot"]),
        ("pipedrive", COPIES["pipedrive"]),
    }
