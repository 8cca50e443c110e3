"""The canonical sales model every system is mapped onto.

Values here are already normalised: money is Decimal with an ISO 4217 currency, datetimes are
aware UTC, stages are funnel keys. Everything is frozen; mapping functions return new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple

from mapping.currencies import ISO_4217

__all__ = [
    "CANONICAL_FIELDS",
    "CurrencyMismatch",
    "Deal",
    "DealStatus",
    "MappingError",
    "Money",
    "Owner",
    "Ref",
    "StageChange",
    "bounded_decimal",
    "format_utc",
    "money_or_none",
    "parse_money",
]


class CurrencyMismatch(ValueError):
    """Arithmetic or comparison across two currencies without an explicit rate."""


class MappingError(ValueError):
    """A native record that cannot be mapped; the run reports it and goes on with the rest."""

    def __init__(self, system: str, id: str, field: str, reason: str) -> None:
        self.system, self.id, self.field, self.reason = system, id, field, reason
        super().__init__(f"{system} record {id}: {field}: {reason}")

    def as_dict(self) -> dict[str, str]:
        return {"system": self.system, "id": self.id, "field": self.field, "reason": self.reason}


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


def _check_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"unknown currency {code!r} (expected an ISO 4217 code such as USD, EUR)")
    return code


# No amount or probability has digits this far from the decimal point; a hostile value such as
# 1E+999999999 would otherwise become a billion-digit string wherever it is formatted.
_LIMIT = 100


def bounded_decimal(value: Decimal) -> Decimal:
    """`value` if finite and within 10^+-100 (digits included); ValueError otherwise."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    exponent = value.as_tuple().exponent
    if value.adjusted() > _LIMIT or (isinstance(exponent, int) and exponent < -_LIMIT):
        raise ValueError(
            f"{str(value)[:40]} is out of range (digits more than {_LIMIT} places from the "
            "decimal point)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise ValueError(f"Money amount must be finite, not {self.amount}")
        bounded_decimal(self.amount)
        _check_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot subtract {other.currency} from {self.currency}")
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply Money by Decimal or int, never float")
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot compare {other.currency} with {self.currency}")
        return self.amount < other.amount

    def same_value(self, other: Money | None) -> bool:
        """Equal amounts in the same currency, ignoring trailing zeros (1500 == 1500.00)."""
        return (
            other is not None
            and other.currency == self.currency
            and other.amount.compare(self.amount) == 0
        )

    def __str__(self) -> str:
        return f"{format_decimal(self.amount)} {self.currency}"


def format_decimal(value: Decimal) -> str:
    """A plain decimal string: no exponent, no float rounding ('1500.5', '0', '1E+3' -> '1000')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_money(amount: object, currency: str) -> Money:
    """Money from a native amount: str, int or Decimal (a float goes through its repr)."""
    if isinstance(amount, bool):
        raise ValueError(f"amount must be a number, not {amount!r}")
    if isinstance(amount, float):
        amount = repr(amount)
    if not isinstance(amount, (str, int, Decimal)):
        raise ValueError(f"amount must be a number, not {type(amount).__name__}")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"amount {str(amount)[:40]!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"amount {amount!r} is not finite")
    return Money(value, currency)


def money_or_none(amount: object, currency: str) -> Money | None:
    """`parse_money`, where an amount of 0 is no amount: Pipedrive has no empty value (a deal
    created without one holds 0, a cleared one reads back as 0), so a 0 anywhere stands for
    what an empty amount means elsewhere. Read as an amount, it disagreed with the same deal's
    empty amount in the other CRMs, and a reconcile wrote 0 over them."""
    money = parse_money(amount, currency)
    return None if money.amount == 0 else money


class Ref(NamedTuple):
    """A deal in one system instance (`system` is the instance name from the config).

    A NamedTuple rather than a dataclass: the engine hashes and compares millions of refs per
    run, and a tuple does both in C (a dataclass's `__hash__`/`__eq__` are Python calls).
    """

    system: str
    id: str

    def __str__(self) -> str:
        return f"{self.system}:{self.id}"


@dataclass(frozen=True, slots=True)
class Owner:
    system: str
    id: str
    email: str | None
    name: str | None
    active: bool = True  # False: deactivated (Salesforce IsActive, HubSpot archived, Pipedrive)


@dataclass(frozen=True, slots=True)
class StageChange:
    """One entry of a deal's real stage history, as the CRM recorded it."""

    stage: str | None  # funnel key, None when the native stage is unmapped
    native_stage: str
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class Deal:
    ref: Ref
    name: str
    pipeline: str
    stage: str | None  # funnel key; None when the native stage is not in the stage map
    native_stage: str
    status: DealStatus
    value: Money | None
    close_date: date | None
    owner_email: str | None
    probability: Decimal | None  # 0..1
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime | None = None
    funnel: str = "default"
    external_ids: Mapping[str, str] = field(default_factory=dict)  # instance name -> id there
    link_id: str | None = None  # our idempotency / entity marker stored in the CRM
    stage_history: tuple[StageChange, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return self.ref.system

    @property
    def id(self) -> str:
        return self.ref.id

    def as_record(self) -> dict[str, Any]:
        """The DESIGN.md `pull --format jsonl` record: stable key order, Decimal as string.
        Keys added later go last (`funnel`: the product line), so scripts reading the
        documented ones by position or name keep working."""
        return {
            "system": self.ref.system,
            "id": self.ref.id,
            "name": self.name,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "native_stage": self.native_stage,
            "status": self.status.value,
            "amount": format_decimal(self.value.amount) if self.value else None,
            "currency": self.value.currency if self.value else None,
            "close_date": self.close_date.isoformat() if self.close_date else None,
            "owner_email": self.owner_email,
            "probability": format_decimal(self.probability)
            if self.probability is not None
            else None,
            "created_at": format_utc(self.created_at),
            "updated_at": format_utc(self.updated_at),
            "funnel": self.funnel,
        }


# The canonical deal keys a diff compares and a plan names in `field`.
CANONICAL_FIELDS: tuple[str, ...] = (
    "name",
    "stage",
    "status",
    "amount",
    "currency",
    "close_date",
    "owner_email",
    "probability",
)


def format_utc(value: datetime) -> str:
    """ISO 8601 UTC with a `Z`, millisecond precision only when present."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: all datetimes must be aware UTC")
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"
