"""Deal <-> JSON-able dict for the state store and plan files, and a change fingerprint.

The dict is lossless: Decimal amounts and probabilities travel as strings with every digit
(trailing zeros included), datetimes as ISO 8601 with their offset, dates as YYYY-MM-DD.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from mapping.model import Deal, DealStatus, Money, Ref, StageChange, format_decimal

__all__ = ["CODEC_VERSION", "deal_fingerprint", "deal_from_json", "deal_to_json"]

CODEC_VERSION = 1


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def deal_to_json(deal: Deal) -> dict[str, Any]:
    """A plain dict (str, None, list, dict) that `deal_from_json` turns back into `deal`."""
    extra = dict(deal.extra)
    json.dumps(extra)  # fail here, naming the deal's problem, not later in the store
    return {
        "system": deal.ref.system,
        "id": deal.ref.id,
        "name": deal.name,
        "pipeline": deal.pipeline,
        "stage": deal.stage,
        "native_stage": deal.native_stage,
        "status": deal.status.value,
        "amount": str(deal.value.amount) if deal.value else None,
        "currency": deal.value.currency if deal.value else None,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "owner_email": deal.owner_email,
        "probability": str(deal.probability) if deal.probability is not None else None,
        "created_at": _stamp(deal.created_at),
        "updated_at": _stamp(deal.updated_at),
        "stage_entered_at": _stamp(deal.stage_entered_at),
        "funnel": deal.funnel,
        "external_ids": dict(deal.external_ids),
        "link_id": deal.link_id,
        "stage_history": [
            [c.stage, c.native_stage, c.entered_at.isoformat()] for c in deal.stage_history
        ],
        "extra": extra,
    }


def deal_from_json(data: Mapping[str, Any]) -> Deal:
    amount, currency = data.get("amount"), data.get("currency")
    created, updated = _parse_stamp(data["created_at"]), _parse_stamp(data["updated_at"])
    assert created is not None and updated is not None
    return Deal(
        ref=Ref(data["system"], data["id"]),
        name=data["name"],
        pipeline=data["pipeline"],
        stage=data.get("stage"),
        native_stage=data["native_stage"],
        status=DealStatus(data["status"]),
        value=Money(Decimal(amount), str(currency)) if amount is not None else None,
        close_date=date.fromisoformat(data["close_date"]) if data.get("close_date") else None,
        owner_email=data.get("owner_email"),
        probability=Decimal(data["probability"]) if data.get("probability") is not None else None,
        created_at=created,
        updated_at=updated,
        stage_entered_at=_parse_stamp(data.get("stage_entered_at")),
        funnel=data.get("funnel", "default"),
        external_ids=dict(data.get("external_ids") or {}),
        link_id=data.get("link_id"),
        stage_history=tuple(
            StageChange(stage, native, datetime.fromisoformat(entered))
            for stage, native, entered in data.get("stage_history") or ()
        ),
        extra=dict(data.get("extra") or {}),
    )


def deal_fingerprint(deal: Deal) -> str:
    """A stable hash of what a sync compares: the canonical fields, stage, links.

    Amounts and probabilities are normalised (1500 == 1500.00), so a CRM re-serialising a
    number does not count as a change; timestamps, history and extra are left out.
    """
    parts = (
        deal.name,
        deal.pipeline,
        deal.stage or "",
        deal.native_stage,
        deal.status.value,
        format_decimal(deal.value.amount) if deal.value else "",
        deal.value.currency if deal.value else "",
        deal.close_date.isoformat() if deal.close_date else "",
        deal.owner_email or "",
        format_decimal(deal.probability) if deal.probability is not None else "",
        deal.link_id or "",
        *(f"{k}={v}" for k, v in sorted(deal.external_ids.items())),
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
