"""Funnels: the ordered canonical stages deals move through, one per product line.

The default funnel is lead -> qualified -> proposal -> negotiation -> won / lost. A config may
define its own (post-sale stages included); `Funnel` validates the shape once, at load time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = ["DEFAULT_FUNNEL", "Funnel", "FunnelError", "FunnelStage", "Phase"]


class FunnelError(ValueError):
    """A funnel definition that cannot work (duplicate keys, no won stage, ...)."""


class Phase(StrEnum):
    """The classic AIDA funnel phases a pipeline stage belongs to."""

    AWARENESS = "awareness"
    INTEREST = "interest"
    DECISION = "decision"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class FunnelStage:
    key: str
    label: str
    order: int
    phase: Phase
    probability: Decimal  # 0..1, the default when a deal carries none
    is_closed: bool = False
    is_won: bool = False

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.probability <= Decimal(1):
            raise FunnelError(f"stage {self.key!r}: probability must be within 0..1")
        if self.is_won and not self.is_closed:
            raise FunnelError(f"stage {self.key!r}: a won stage must be closed")


@dataclass(frozen=True, slots=True)
class Funnel:
    name: str
    stages: tuple[FunnelStage, ...]
    # Derived once: reports ask "is this key in the funnel" for every deal.
    _by_key: dict[str, FunnelStage] = field(init=False, repr=False, compare=False)
    _open: tuple[FunnelStage, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {s.key: s for s in self.stages})
        object.__setattr__(self, "_open", tuple(s for s in self.stages if not s.is_closed))
        keys = [s.key for s in self.stages]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise FunnelError(f"funnel {self.name!r}: duplicate stage keys {', '.join(duplicates)}")
        won = [s.key for s in self.stages if s.is_won]
        if len(won) != 1:
            raise FunnelError(
                f"funnel {self.name!r}: needs exactly one won stage, found {len(won)}"
                + (f" ({', '.join(won)})" if won else "")
            )
        if not any(s.is_closed and not s.is_won for s in self.stages):
            raise FunnelError(f"funnel {self.name!r}: needs at least one lost stage")
        orders = [s.order for s in self.open_stages]
        if orders != sorted(set(orders)):
            raise FunnelError(
                f"funnel {self.name!r}: open stages must have strictly increasing order"
            )

    @classmethod
    def build(cls, name: str, stages: Iterable[FunnelStage]) -> Funnel:
        return cls(name, tuple(stages))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages)

    @property
    def open_stages(self) -> tuple[FunnelStage, ...]:
        return self._open

    @property
    def won_stage(self) -> FunnelStage:
        return next(s for s in self.stages if s.is_won)

    @property
    def lost_stages(self) -> tuple[FunnelStage, ...]:
        return tuple(s for s in self.stages if s.is_closed and not s.is_won)

    def stage(self, key: str) -> FunnelStage:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key


def _stage(
    key: str, order: int, phase: Phase, probability: str, closed: bool = False, won: bool = False
) -> FunnelStage:
    return FunnelStage(key, key.capitalize(), order, phase, Decimal(probability), closed, won)


DEFAULT_FUNNEL = Funnel(
    "default",
    (
        _stage("lead", 1, Phase.AWARENESS, "0.1"),
        _stage("qualified", 2, Phase.INTEREST, "0.25"),
        _stage("proposal", 3, Phase.DECISION, "0.5"),
        _stage("negotiation", 4, Phase.DECISION, "0.75"),
        _stage("won", 5, Phase.ACTION, "1", closed=True, won=True),
        _stage("lost", 6, Phase.ACTION, "0", closed=True),
    ),
)
