"""Deal builders for the engine tests: a valid canonical deal with only the interesting bits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from mapping.model import Deal, DealStatus, Money, Ref

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def deal(
    system: str,
    id: str,
    name: str = "Acme renewal",
    *,
    stage: str | None = "proposal",
    status: DealStatus = DealStatus.OPEN,
    amount: str | None = "1000",
    currency: str = "USD",
    close: date | None = date(2024, 6, 15),
    owner: str | None = "ann@example.com",
    probability: str | None = "0.5",
    created: datetime = T0,
    updated: datetime = T0,
    external_ids: Mapping[str, str] | None = None,
    link_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Deal:
    return Deal(
        ref=Ref(system, id),
        name=name,
        pipeline="default",
        stage=stage,
        native_stage=stage or "Mystery stage",
        status=status,
        value=Money(Decimal(amount), currency) if amount is not None else None,
        close_date=close,
        owner_email=owner,
        probability=Decimal(probability) if probability is not None else None,
        created_at=created,
        updated_at=updated,
        external_ids=dict(external_ids or {}),
        link_id=link_id,
        extra=dict(extra or {}),
    )


def by_system(deals: Iterable[Deal], systems: Sequence[str] = ()) -> dict[str, list[Deal]]:
    out: dict[str, list[Deal]] = {s: [] for s in systems}
    for d in deals:
        out.setdefault(d.system, []).append(d)
    return out
