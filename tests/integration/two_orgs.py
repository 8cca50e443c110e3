"""Two Salesforce orgs and one HubSpot portal, each served by its own emulator: the world of a
company that bought another and now runs `sf_emea` and `sf_us` side by side.

`sf_emea` and `hubspot` are the generator's Salesforce and HubSpot data. `sf_us` is an org of
its own: a copy of two deals in three of `sf_emea` (owners with other user ids, another stage
picklist, and `EMEA_Opportunity_Id__c` holding the `sf_emea` id) plus deals of its own, and
every one of its record ids is one `sf_emea` uses for a different deal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox.generator import generate_full
from connectors.sandbox.launcher import Sandbox, start_sandbox
from sync.sandbox_config import write_sandbox_config

__all__ = ["US_STAGES", "TwoOrgs", "two_orgs", "us_dataset"]

# sf_emea's picklist -> sf_us's own labels for the same steps.
US_STAGES = {
    "Prospecting": "Discovery",
    "Qualification": "Qualified Lead",
    "Needs Analysis": "Needs Analysis",
    "Value Proposition": "Value Proposition",
    "Proposal/Price Quote": "Quote Sent",
    "Negotiation/Review": "Negotiation",
    "Closed Won": "Won",
    "Closed Lost": "Lost",
}
US_ONLY = 12


def _us_user(user_id: str) -> str:
    return user_id.replace("0055g", "0058V", 1)


def us_dataset(emea: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """sf_us's Salesforce data made from sf_emea's, and what it planted:
    `{"copies": {us id: emea id}, "us_only": [us ids], "edited": {us id: field}}`."""
    opportunities = emea["Opportunity"]
    emea_ids = [o["Id"] for o in opportunities]
    shift = 7  # every sf_us id is an sf_emea id of another deal
    us: dict[str, Any] = {"OpportunityStage": [], "User": [], "Opportunity": []}
    for stage in emea["OpportunityStage"]:
        label = US_STAGES[stage["ApiName"]]
        us["OpportunityStage"].append({**stage, "ApiName": label, "MasterLabel": label})
    for user in emea["User"]:
        us["User"].append({**user, "Id": _us_user(user["Id"])})
    planted: dict[str, Any] = {"copies": {}, "us_only": [], "edited": {}}
    kept = [o for i, o in enumerate(opportunities) if i % 3 != 2 and not o.get("IsDeleted")]
    for i, emea_opp in enumerate(kept):
        opp = copy.deepcopy(emea_opp)
        us_id = emea_ids[(emea_ids.index(emea_opp["Id"]) + shift) % len(emea_ids)]
        opp["Id"] = us_id
        opp["attributes"]["url"] = opp["attributes"]["url"].rsplit("/", 1)[0] + "/" + us_id
        opp["StageName"] = US_STAGES[opp["StageName"]]
        opp["OwnerId"] = _us_user(opp["OwnerId"])
        opp["EMEA_Opportunity_Id__c"] = emea_opp["Id"]
        opp["Pipedrive_Deal_Id__c"] = None
        if i % 25 == 3 and not opp["IsClosed"]:
            # a person in sf_us moved the deal on since the orgs last agreed
            opp["Amount"] = round(float(opp["Amount"] or 0) + 1000.0, 2)
            opp["LastModifiedDate"] = opp["SystemModstamp"] = "2026-11-20T09:00:00.000+0000"
            planted["edited"][us_id] = "amount"
        planted["copies"][us_id] = emea_opp["Id"]
        us["Opportunity"].append(opp)
    used = set(planted["copies"])
    spare = [i for i in emea_ids if i not in used]
    for n in range(US_ONLY):
        opp = copy.deepcopy(kept[n])
        us_id = spare[n]
        opp.update(
            Id=us_id,
            Name=f"Acme US Holdings {n} — Expansion",
            StageName=US_STAGES["Prospecting"],
            IsClosed=False,
            IsWon=False,
            Probability=10.0,
            OwnerId=_us_user(opp["OwnerId"]),
            EMEA_Opportunity_Id__c=None,
            HubSpot_Deal_Id__c=None,
            Pipedrive_Deal_Id__c=None,
            Crmsync_Id__c=None,
        )
        opp["attributes"]["url"] = opp["attributes"]["url"].rsplit("/", 1)[0] + "/" + us_id
        planted["us_only"].append(us_id)
        us["Opportunity"].append(opp)
    return us, planted


@dataclass
class TwoOrgs:
    config: Path
    emea: Sandbox
    us: Sandbox
    planted: dict[str, Any]

    def server(self, org: str) -> Any:
        return (self.emea if org == "sf_emea" else self.us).servers["salesforce"]

    def opportunities(self, org: str) -> dict[str, dict[str, Any]]:
        """The org's Opportunity records now, by id."""
        return {o["Id"]: o for o in self.server(org).emulator.dump()["Opportunity"]}

    def edit(self, org: str, deal_id: str, values: dict[str, Any]) -> None:
        """A person's edit in the org's own screens (stamps the record, costs no API call)."""
        emulator = self.server(org).emulator
        with emulator.lock:
            emulator.store.apply(emulator.store.check_update(deal_id, values))


@contextmanager
def two_orgs(
    folder: Path,
    store: str,
    deals: int = 150,
    seed: int = 7,
    edit_us: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[TwoOrgs]:
    """The three emulators and a config naming them `sf_emea`, `sf_us` and `hubspot`;
    `edit_us` may change sf_us's Salesforce data before it is served."""
    dataset = generate_full(deals, seed).dataset
    us, planted = us_dataset(dataset["salesforce"])
    if edit_us is not None:
        edit_us(us)
    with ExitStack() as stack:
        emea = stack.enter_context(
            start_sandbox(
                {"salesforce": dataset["salesforce"], "hubspot": dataset["hubspot"]},
                systems=("salesforce", "hubspot"),
                workdir=folder / "emea",
            )
        )
        us_box = stack.enter_context(
            start_sandbox({"salesforce": us}, systems=("salesforce",), workdir=folder / "us")
        )
        written = {}
        for name, box in (("emea", emea), ("us", us_box)):
            path = folder / name / "crmsync.yaml"
            write_sandbox_config(box.ready_info(), path)
            written[name] = yaml.safe_load(path.read_text())
        document = written["emea"]
        systems = document["systems"]
        sf_us = written["us"]["systems"]["salesforce"]
        sf_us["external_ids"] = {
            "sf_emea": "EMEA_Opportunity_Id__c",
            "hubspot": "HubSpot_Deal_Id__c",
        }
        sf_emea = systems.pop("salesforce")
        sf_emea["external_ids"] = {"hubspot": "HubSpot_Deal_Id__c"}
        hubspot = systems.pop("hubspot")
        hubspot["external_ids"] = {"sf_emea": "salesforce_opportunity_id"}
        # sf_us's own picklist, mapped as sf_emea's proposal maps the same steps
        emea_map = sf_emea["stage_map"]["default"]
        sf_us["stage_map"] = {"default": {US_STAGES[api]: key for api, key in emea_map.items()}}
        document["systems"] = {"sf_emea": sf_emea, "sf_us": sf_us, "hubspot": hubspot}
        document["push"]["targets"] = list(document["systems"])
        document["store"] = store
        document["allow_absolute_paths"] = True
        config = folder / "crmsync.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        yield TwoOrgs(config, emea, us_box, planted)
