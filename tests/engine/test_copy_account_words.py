"""Each CRM's copies name their account in the plan table in that CRM's own word: a Salesforce
Account, a HubSpot company, each counted apart in the summary. Pure: the plan as JSON, no
store, no CRM."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from sync.plan_render import render_plan


def _create(system: str, entity: str, account: dict[str, Any]) -> dict[str, Any]:
    return {
        "system": system,
        "entity": entity,
        "source": {"system": "pipedrive", "id": entity},
        "values": {"name": f"Deal {entity}", "stage": "lead"},
        "account": account,
    }


def test_the_table_names_hubspot_companies_and_salesforce_accounts_each_in_its_word() -> None:
    named = {"by": "account", "name": "Acme Corp", "id": None}
    plan = {
        "run_id": "r1",
        "summary": {"accounts_by_system": {"hubspot": 2, "salesforce": 1}},
        **{k: [] for k in ("changes", "conflicts", "unmatched", "ambiguous", "duplicates")},
        "errors": [],
        "creates": [
            _create("hubspot", "1", named),
            _create("hubspot", "2", {"by": "none", "name": None, "id": None}),
            _create("salesforce", "3", named),
        ],
    }
    out = io.StringIO()
    kinds = {"hubspot": "hubspot", "salesforce": "salesforce"}
    render_plan(plan, {}, Console(file=out, width=250, force_terminal=False), kinds=kinds)
    shown = " ".join(out.getvalue().split())
    assert "companies to find by name (never made): hubspot 2" in shown
    assert "Accounts to find by name (never made): salesforce 1" in shown
    assert "company Acme Corp (by name, if exactly one: never made)" in shown
    assert "no company" in shown
    assert "Account Acme Corp (by name, if exactly one: never made)" in shown
    assert "hubspot 2, salesforce 1" not in shown  # not one list under either word
