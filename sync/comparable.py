"""A deal reduced to the one tuple the diff compares and bases store (DIFF_FIELDS order),
with what its funnel says about closed deals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mapping.funnel import DEFAULT_FUNNEL, Funnel
from mapping.model import Deal, DealStatus
from sync.policy import DIFF_FIELDS

__all__ = ["DEFAULT_FACTS", "FunnelFacts", "base_values", "comparable"]

_OPEN = DealStatus.OPEN


@dataclass(frozen=True, slots=True)
class FunnelFacts:
    """What a funnel says about closed deals: its won stage, first lost stage, closed keys;
    and which stage keys it has at all."""

    won: str
    first_lost: str
    closed: Mapping[str, DealStatus]
    keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, funnel: Funnel) -> FunnelFacts:
        closed = {s.key: DealStatus.WON if s.is_won else DealStatus.LOST for s in funnel.stages}
        closed = {k: v for k, v in closed.items() if funnel.stage(k).is_closed}
        return cls(funnel.won_stage.key, funnel.lost_stages[0].key, closed, frozenset(funnel.keys))

    def effective_stage(self, deal: Deal) -> str | None:
        """Closed deals compare by their status: a Pipedrive deal marked won stays in its
        pipeline stage natively, but it is in the won stage as far as the funnel goes."""
        if deal.status is DealStatus.WON:
            return self.won
        if deal.status is DealStatus.LOST and self.closed.get(deal.stage or "") is not (
            DealStatus.LOST
        ):
            return self.first_lost
        return deal.stage


def comparable(deal: Deal, facts: FunnelFacts | None = None) -> tuple[Any, ...]:
    """The deal's values in DIFF_FIELDS order, as the diff compares and bases store them."""
    status = deal.status
    stage = deal.stage if status is _OPEN else (facts or DEFAULT_FACTS).effective_stage(deal)
    owner = deal.owner_email
    if owner:
        owner = _OWNERS.get(owner) or _owner_key(owner)
    return (
        deal.name,
        stage,
        status,
        deal.value,
        deal.close_date,
        owner,
        deal.probability,
    )


DEFAULT_FACTS = FunnelFacts.of(DEFAULT_FUNNEL)
# Owner emails repeat across deals (a team, not a million people): normalising each distinct
# one once saves two string allocations per deal in the diff's hot loop.
_OWNERS: dict[str, str] = {}


def _owner_key(owner: str) -> str:
    if len(_OWNERS) >= 10_000:
        _OWNERS.clear()
    key = _OWNERS[owner] = owner.strip().lower()
    return key


def base_values(deal: Deal, funnel: Funnel | None = None) -> dict[str, Any]:
    """The deal's values as a base stores them ({DIFF_FIELDS: comparable value}); what the
    engine records after writing, so the next diff sees every system equal to the base."""
    facts = FunnelFacts.of(funnel) if funnel is not None else DEFAULT_FACTS
    return dict(zip(DIFF_FIELDS, comparable(deal, facts), strict=True))
