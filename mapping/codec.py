"""Deal <-> JSON-able dict for the state store and plan files, and a change fingerprint.

The dict is lossless: Decimal amounts and probabilities travel as strings with every digit
(trailing zeros included), datetimes as ISO 8601 with their offset, dates as YYYY-MM-DD.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from mapping.currencies import ISO_4217
from mapping.model import Deal, DealStatus, Money, Ref, StageChange, format_decimal

__all__ = ["CODEC_VERSION", "deal_fingerprint", "deal_from_json", "deal_to_json"]

CODEC_VERSION = 1

_T = TypeVar("_T")


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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


# deal_from_json runs once per stored deal on every run (hundreds of thousands), so it builds
# the frozen Deal by setting its slots directly: Deal.__init__ validates nothing, and a call
# with 18 keyword arguments plus frozen __setattr__ costs more than the rest of the decoding.
_DEAL_SLOTS = tuple(Deal.__dict__[f.name].__set__ for f in fields(Deal))
_MONEY_SLOTS = tuple(Money.__dict__[f.name].__set__ for f in fields(Money))
_STAGE_SLOTS = tuple(StageChange.__dict__[f.name].__set__ for f in fields(StageChange))
_STATUSES = {status.value: status for status in DealStatus}
_new = object.__new__
_parse_datetime = datetime.fromisoformat
_intern = sys.intern  # a stored value that is not a string fails here, loudly


def _built(
    cls: type[_T], setters: tuple[Callable[[Any, Any], None], ...], values: tuple[Any, ...]
) -> _T:
    obj = _new(cls)
    for set_slot, value in zip(setters, values):  # noqa: B905 (round-trip tests catch a field missed)
        set_slot(obj, value)
    return obj


def _money(amount: str, currency: object) -> Money:
    key = (amount, str(currency))
    money = _AMOUNTS.get(key)
    if money is None:
        value, code = Decimal(amount), key[1]
        if code not in ISO_4217 or not value.is_finite():
            return Money(value, code)  # raises, naming the problem
        money = _remember(_AMOUNTS, key, _built(Money, _MONEY_SLOTS, (value, _intern(code))))
    return money


# Stored deals repeat a few values many times: an instance's stages and pipelines, a team's
# owners, close dates, round amounts. Each distinct one is decoded once and shared by the deals
# holding it (the values are immutable): a million deals take ~25% less memory, and the engine
# compares equal values by identity instead of reading both. Bounded, as hostile data could
# make every value distinct.
_AMOUNTS: dict[tuple[str, str], Money] = {}
_DATES: dict[str, date] = {}
_PROBABILITIES: dict[str, Decimal] = {}
_SHARED_LIMIT = 1 << 16


def _remember(memo: dict[Any, _T], key: Any, value: _T) -> _T:
    if len(memo) >= _SHARED_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _date(text: str) -> date:
    day = _DATES.get(text)
    return day if day is not None else _remember(_DATES, text, date.fromisoformat(text))


def _probability(text: str) -> Decimal:
    value = _PROBABILITIES.get(text)
    return value if value is not None else _remember(_PROBABILITIES, text, Decimal(text))


def deal_from_json(data: Mapping[str, Any]) -> Deal:
    get = data.get
    amount = get("amount")
    created, updated = data["created_at"], data["updated_at"]
    assert created is not None and updated is not None
    close_date, probability = get("close_date"), get("probability")
    entered, stage, owner = get("stage_entered_at"), get("stage"), get("owner_email")
    status = data["status"]
    external_ids, history, extra = get("external_ids"), get("stage_history"), get("extra")
    values = (
        tuple.__new__(Ref, (_intern(data["system"]), data["id"])),
        data["name"],
        _intern(data["pipeline"]),
        stage and _intern(stage),
        _intern(data["native_stage"]),
        _STATUSES.get(status) or DealStatus(status),  # DealStatus() names a bad value
        _money(amount, get("currency")) if amount is not None else None,
        _date(close_date) if close_date else None,
        owner and _intern(owner),
        _probability(probability) if probability is not None else None,
        _parse_datetime(created),
        _parse_datetime(updated),
        _parse_datetime(entered) if entered is not None else None,
        _intern(get("funnel", "default")),
        dict(external_ids) if external_ids else {},
        get("link_id"),
        tuple(
            _built(StageChange, _STAGE_SLOTS, (stage, native, _parse_datetime(at)))
            for stage, native, at in history
        )
        if history
        else (),
        dict(extra) if extra else {},
    )
    return _built(Deal, _DEAL_SLOTS, values)


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
