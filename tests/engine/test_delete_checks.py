"""What a delete checks first (sync/apply_deletes.py): the deal must still hold every value
recorded for it, and with nothing recorded it is never deleted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from mapping.model import DealStatus
from sync.apply_deletes import agreed_values, changed_since, propagated
from sync.diff import base_values
from sync.plan import Plan
from sync.reconcile import base_to_json
from sync.store import Store
from tests.engine.engine_deals import deal


def test_a_deal_still_holding_the_agreed_values_may_be_deleted() -> None:
    copy = deal("hubspot", "7")
    agreed = agreed_values(base_to_json(base_values(deal("salesforce", "1"))))
    assert changed_since(copy, agreed) is None


def test_a_deal_edited_since_is_kept_and_the_reason_names_the_field() -> None:
    agreed = agreed_values(base_to_json(base_values(deal("salesforce", "1"))))
    why = changed_since(deal("hubspot", "7", amount="1200"), agreed)
    assert why is not None and why.startswith("amount is now '1200'")


def test_with_nothing_recorded_nothing_is_deleted() -> None:
    assert agreed_values(None) == {}
    assert changed_since(deal("hubspot", "7"), {}) is not None


def test_a_closed_deal_compares_by_status_not_by_its_native_stage() -> None:
    won = deal("salesforce", "1", stage="won", status=DealStatus.WON)
    agreed = agreed_values(base_to_json(base_values(won)))
    assert "stage" not in agreed
    # Pipedrive keeps a won deal in its pipeline stage: the same deal, not an edit.
    assert (
        changed_since(deal("pipedrive", "7", stage="negotiation", status=DealStatus.WON), agreed)
        is None
    )


def test_a_propagated_delete_kept_as_drifted_names_the_agreed_values_not_creation() -> None:
    base = base_to_json(base_values(deal("salesforce", "1")))
    store = cast(Store, SimpleNamespace(bases=lambda ids: {"E1": base}))
    deleted = {"entity": "E1", "propagate": True, "deleted": [{"system": "salesforce", "id": "1"}],
               "live": [{"system": "hubspot", "id": "7"}]}  # fmt: skip
    plan = cast(Plan, SimpleNamespace(run_id="r1", deleted=[deleted]))
    [delete] = propagated(store, plan, {})
    why = changed_since(deal("hubspot", "7", amount="1200"), delete.expected, delete.recorded)
    assert why is not None and "the CRMs last agreed on" in why and "created" not in why, why
