"""The fast decoder keeps the model's guards: a bad stored value fails loudly, never silently."""

from __future__ import annotations

from typing import Any

import pytest

from mapping import deal_from_json


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "system": "hubspot",
        "id": "1",
        "name": "Acme",
        "pipeline": "default",
        "stage": "lead",
        "native_stage": "appointmentscheduled",
        "status": "open",
        "amount": "1500.00",
        "currency": "EUR",
        "close_date": None,
        "owner_email": None,
        "probability": None,
        "created_at": "2024-06-01T12:00:00+00:00",
        "updated_at": "2024-06-01T12:00:00+00:00",
    }
    payload.update(changes)
    return payload


def test_unknown_currency_in_a_stored_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        deal_from_json(_payload(currency="XXQ"))


def test_non_finite_stored_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        deal_from_json(_payload(amount="NaN"))


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="'maybe'"):
        deal_from_json(_payload(status="maybe"))


def test_a_minimal_old_payload_gets_the_model_defaults() -> None:
    deal = deal_from_json(_payload())
    assert (deal.funnel, deal.external_ids, deal.stage_history, deal.extra) == (
        "default",
        {},
        (),
        {},
    )
    assert deal.stage_entered_at is None and deal.link_id is None


@pytest.mark.parametrize("field", ["pipeline", "native_stage", "stage", "owner_email"])
def test_a_stored_text_field_holding_a_number_is_refused(field: str) -> None:
    with pytest.raises(TypeError):
        deal_from_json(_payload(**{field: 5}))
