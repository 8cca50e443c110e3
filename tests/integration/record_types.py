"""A sandbox world whose Salesforce org has the Opportunity record type Renewal (its sales
process: the renewal stages and the two closed ones), on the renewal funnel as HubSpot's and
Pipedrive's Renewals pipelines are (`renewals_on_their_own_funnel`): each CRM has a pipeline of
each product line."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox.generator import generate_full
from connectors.sandbox.launcher import start_sandbox
from connectors.sandbox.salesforce_store import sf_id
from sync.sandbox_config import write_sandbox_config
from tests.integration.conftest import World
from tests.integration.product_lines import renewals_on_their_own_funnel

__all__ = ["RECORD_TYPE", "RENEWAL_MAP", "SAME_STAGE", "renewal_record_type", "renewal_world"]

RECORD_TYPE = sf_id("012", 7)
# HubSpot's renewals stage -> the Renewal process's stage holding the same funnel stage.
SAME_STAGE = {
    "75210931": "Renewal Due",
    "75210932": "Renewal Quoted",
    "75210933": "Renewal Quoted",
    "75210934": "Renewal Committed",
    "75210935": "Closed Won",
    "75210936": "Closed Lost",
}
RENEWAL_MAP = {
    "Renewal Due": "renewal_due",
    "Renewal Quoted": "quoted",
    "Renewal Committed": "committed",
    "Closed Won": "renewed",
    "Closed Lost": "churned",
}


def renewal_record_type(data: dict[str, Any], active: bool = True) -> dict[str, Any]:
    """The generated org with record type Renewal (deactivated unless `active`), given to the
    Opportunities HubSpot's renewals name, each in the renewal stage of its HubSpot copy's."""
    data = copy.deepcopy(data)
    sf = data["salesforce"]
    stages = sf["OpportunityStage"]
    top = max(s["SortOrder"] for s in stages)
    for n, (name, probability) in enumerate(
        [("Renewal Due", 20), ("Renewal Quoted", 50), ("Renewal Committed", 90)], start=1
    ):
        stages.append(
            {**{k: v for k, v in stages[0].items() if k != "attributes"},
             "Id": sf_id("01J", 900 + n), "ApiName": name, "MasterLabel": name,
             "DefaultProbability": probability, "SortOrder": top + n}
        )  # fmt: skip
    process = sf_id("019", 7)
    sf["BusinessProcess"] = [
        {"Id": process, "Name": "Renewals", "TableEnumOrId": "Opportunity", "IsActive": True,
         "Values": list(RENEWAL_MAP)},
    ]  # fmt: skip
    sf["RecordType"] = [
        {"Id": RECORD_TYPE, "DeveloperName": "Renewal", "Name": "Renewal",
         "SobjectType": "Opportunity", "IsActive": active, "BusinessProcessId": process},
    ]  # fmt: skip
    by_id = {o["Id"]: o for o in sf["Opportunity"]}
    flags = {s["ApiName"]: s for s in stages}
    for deal in data["hubspot"]["deals"]:
        props = deal["properties"]
        opportunity = by_id.get(props.get("salesforce_opportunity_id") or "")
        if props.get("pipeline") != "renewals" or opportunity is None:
            continue
        stage = flags[SAME_STAGE[props["dealstage"]]]
        opportunity.update(
            RecordTypeId=RECORD_TYPE,
            StageName=stage["ApiName"],
            IsClosed=stage["IsClosed"],
            IsWon=stage["IsWon"],
        )
    return data


def renewal_world(tmp_path: Path, active: bool = True) -> Iterator[World]:
    """Seed 3, 60 deals, the org with record type Renewal (`renewal_record_type`), renewals on
    their own funnel in all three CRMs, a SQLite store in `tmp_path`."""
    generated = generate_full(60, 3)
    data = renewal_record_type(generated.dataset, active)
    with start_sandbox(data, workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        store = f"sqlite:///{tmp_path / 'crmsync.db'}"
        config.write_text(f"allow_absolute_paths: true\nstore: {store}\n" + config.read_text())
        world = World(generated, sandbox, config)
        renewals_on_their_own_funnel(world)
        document = yaml.safe_load(config.read_text())
        salesforce = document["systems"]["salesforce"]
        salesforce["pipeline_funnels"] = {"default": "default", "Renewal": "renewal"}
        salesforce["stage_map"]["Renewal"] = RENEWAL_MAP
        salesforce.get("stage_write", {}).pop("Renewal", None)  # init's, for the default funnel
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        yield world
