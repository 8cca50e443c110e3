"""The native stage a member held, unreadable, when its entity's other members took a stage.

A deal in a native stage its map does not cover reads as no funnel stage: the diff skips it and
the others move on without it. Once a person maps that stage, the deal reads as a funnel stage
that differs from the base; only its native stage tells a remap (the same native stage, read
anew) from a move made in its CRM (another one). So the base marks the member with this value
(a left-out mark of the stage, see `sync.base_marks.left_out`) instead of a funnel stage it never
had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mapping.model import Deal, Ref
from sync.base_marks import left_out

__all__ = ["UnmappedStage", "holds_mark", "unmapped_marks"]

_NONE = object()


@dataclass(frozen=True, slots=True)
class UnmappedStage:
    pipeline: str
    native_stage: str

    @classmethod
    def of(cls, deal: Deal) -> UnmappedStage:
        return cls(deal.pipeline, deal.native_stage)

    def held_by(self, deal: Deal) -> bool:
        """Is `deal` still where it was: no move of its own since, however its map reads it?"""
        return deal.pipeline == self.pipeline and deal.native_stage == self.native_stage

    def to_json(self) -> dict[str, str]:
        return {"pipeline": self.pipeline, "native_stage": self.native_stage}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> UnmappedStage:
        """ValueError unless `value` is what `to_json` writes."""
        pipeline, native = value.get("pipeline"), value.get("native_stage")
        if set(value) != {"pipeline", "native_stage"} or not (
            isinstance(pipeline, str) and isinstance(native, str)
        ):
            raise ValueError("an unmapped stage is {pipeline, native_stage}, both strings")
        return cls(pipeline, native)


def holds_mark(mark: Any, deal: Deal, value: Any) -> bool:
    """Does `deal`, holding `value`, still hold what its base mark says is no change of its own
    (`sync.base_marks.left_out`)? A mark of an unmapped stage is held while the deal stays in that
    native stage, whichever funnel stage its map reads it as since."""
    if isinstance(mark, UnmappedStage):
        return mark.held_by(deal)
    return bool(mark == value)


def unmapped_marks(
    unread: Sequence[Deal], value: Any, base: Mapping[str, Any] | None
) -> dict[Ref, Any]:
    """What the base marks for each member in an unmapped native stage as the others' stage
    `value` is recorded: the mark it has already (whatever it did since that mark is a change
    of its own: a move to another native stage, unmapped or not, spreads once it reads), else,
    when `value` moves the base on, the native stage it holds (`UnmappedStage`): it stayed
    behind only because it could not take `value`, and its stage read once mapped is no edit.
    One without a mark while the base stays left the base's stage since: no mark, so that
    move reads as its edit once mapped."""
    marks = left_out(base, "stage")
    moves_on = base is None or base.get("stage", _NONE) != value
    return {
        deal.ref: marks[deal.ref] if deal.ref in marks else UnmappedStage.of(deal)
        for deal in unread
        if deal.ref in marks or moves_on
    }
