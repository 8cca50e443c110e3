"""An org with Opportunity record types: new business and renewals, each with its own sales
process (a subset of the StageName picklist), and the renewal funnel crmsync maps it to."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.sandbox.salesforce_store import sf_id
from mapping.funnel import Funnel, FunnelStage, Phase
from tests.salesforce.sf_dataset import dataset

__all__ = [
    "NEW_BUSINESS",
    "RENEWAL",
    "RENEWALS",
    "RENEWAL_FUNNEL",
    "RENEWAL_MAP",
    "RENEWAL_STAGES",
    "record_type_org",
]

NEW_BUSINESS, RENEWAL = sf_id("012", 1), sf_id("012", 2)
RENEWAL_STAGES = ["Renewal Due", "Renewal Committed", "Closed Won", "Closed Lost"]
RENEWALS = 3  # the org's last three Opportunities are renewals, in Renewal Due
RENEWAL_MAP = {
    "Renewal Due": "renewal_due",
    "Renewal Committed": "committed",
    "Closed Won": "renewed",
    "Closed Lost": "churned",
}
RENEWAL_FUNNEL = Funnel(
    "renewal",
    (
        FunnelStage("renewal_due", "Renewal due", 1, Phase.AWARENESS, Decimal("0.2")),
        FunnelStage("committed", "Committed", 2, Phase.DECISION, Decimal("0.9")),
        FunnelStage("renewed", "Renewed", 3, Phase.ACTION, Decimal(1), True, True),
        FunnelStage("churned", "Churned", 4, Phase.ACTION, Decimal(0), True),
    ),
)


def record_type_org(deals: int = 9) -> dict[str, Any]:
    """`deals` Opportunities: the first without a record type, the last RENEWALS of record type
    Renewal, the others New_Business. The renewal stages sort between Negotiation and Closed
    Won in the org's picklist."""
    data = dataset(deals, 0)
    sf = data["salesforce"]
    stages = sf["OpportunityStage"]
    for stage in stages:
        if stage["IsClosed"]:
            stage["SortOrder"] += 2
    for n, (name, probability, order) in enumerate(
        [("Renewal Due", 20, 5), ("Renewal Committed", 90, 6)], start=len(stages) + 1
    ):
        stages.append(
            {
                "Id": sf_id("01J", n),
                "ApiName": name,
                "MasterLabel": name,
                "IsActive": True,
                "IsClosed": False,
                "IsWon": False,
                "DefaultProbability": probability,
                "ForecastCategory": "Pipeline",
                "ForecastCategoryName": "Pipeline",
                "SortOrder": order,
            }
        )
    standard = [s["ApiName"] for s in stages if not s["ApiName"].startswith("Renewal")]
    sf["BusinessProcess"] = [
        {"Id": sf_id("019", 1), "Name": "New Business", "TableEnumOrId": "Opportunity",
         "IsActive": True, "Values": standard},
        {"Id": sf_id("019", 2), "Name": "Renewals", "TableEnumOrId": "Opportunity",
         "IsActive": True, "Values": RENEWAL_STAGES},
    ]  # fmt: skip
    sf["RecordType"] = [
        {"Id": NEW_BUSINESS, "DeveloperName": "New_Business", "Name": "New Business",
         "SobjectType": "Opportunity", "IsActive": True, "BusinessProcessId": sf_id("019", 1)},
        {"Id": RENEWAL, "DeveloperName": "Renewal", "Name": "Renewal",
         "SobjectType": "Opportunity", "IsActive": True, "BusinessProcessId": sf_id("019", 2)},
    ]  # fmt: skip
    rows = sf["Opportunity"]
    for i, row in enumerate(rows):
        if i >= len(rows) - RENEWALS:
            row.update(RecordTypeId=RENEWAL, StageName="Renewal Due", IsClosed=False, IsWon=False)
        elif i > 0:
            row["RecordTypeId"] = NEW_BUSINESS
            if row["StageName"].startswith("Renewal"):
                row["StageName"] = "Prospecting"
        else:
            row["RecordTypeId"] = None
    return data
