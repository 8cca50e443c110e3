"""A Salesforce copy whose source named several companies, none primary, goes under no Account:
the plan table says why under the create, and the apply's note for the copy repeats it. Pure:
the plan as JSON, no store, no CRM."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from sync.create_accounts import filing_note
from sync.plan_render import render_plan

WHY = "hubspot deal 9100000105: 2 companies are associated (Acme Corp, Globex), none primary"


def _create(entity: str, account: dict[str, Any]) -> dict[str, Any]:
    return {
        "system": "salesforce",
        "entity": entity,
        "source": {"system": "hubspot", "id": entity},
        "values": {"name": f"Deal {entity}", "stage": "lead"},
        "account": account,
    }


UNTOLD = _create("9100000105", {"by": "none", "name": None, "id": None, "reason": WHY})
NAMED = _create("9100000106", {"by": "account", "name": "Acme Corp", "id": None})


def test_the_table_names_each_copys_account_or_why_it_has_none() -> None:
    plan = {
        "run_id": "r1",
        "summary": {"accounts_by_system": {"salesforce": 1}},
        **{k: [] for k in ("changes", "conflicts", "unmatched", "ambiguous", "duplicates")},
        "errors": [],
        "creates": [UNTOLD, NAMED],
    }
    out = io.StringIO()
    render_plan(plan, {}, Console(file=out, width=250, force_terminal=False))
    shown = " ".join(out.getvalue().split())
    assert "Accounts to find by name (never made): salesforce 1" in shown
    assert f"no Account: {WHY}" in shown
    assert "Account Acme Corp (by name, if exactly one: never made)" in shown


def test_the_apply_notes_a_copy_whose_account_could_not_be_told() -> None:
    assert filing_note(UNTOLD, "salesforce") == f"{WHY}: created without an Account"
    assert filing_note(NAMED, "salesforce") is None
