"""The marks a base keeps beside its values: members whose differing value is no change of
their own (left out) and copies holding their own CRM's pick (picked)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from mapping.model import Ref

__all__ = ["LEFT_OUT", "LEFT_OUT_WHY", "PICKED", "Pick", "left_out", "left_out_why", "picked"]

LEFT_OUT = "left_out"  # the key of a base's left-out marks: {diff field: {ref: value kept}}
# Beside a left-out mark of a member of no push target: {diff field: {ref: the instances whose
# change it kept its value against, () where the copies first agreed}} (`left_out_why`). Marks
# recorded before it, or for other causes, have none.
LEFT_OUT_WHY = "left_out_why"
# The key of a base's pick marks: {diff field: {ref: value held, or Pick.NOT_SEEN}} (`picked`).
PICKED = "picked"


class Pick(Enum):
    """A pick mark's value before a run has seen the copy: whatever it holds is its CRM's."""

    NOT_SEEN = "not seen"


def left_out(base: Mapping[str, Any] | None, name: str) -> Mapping[Ref, Any]:
    """The members of an entity whose value of diff field `name` differs from the base's and
    is no change of their own: ref -> that value. Either the member kept it when the others
    took the base's (it could not hold it), or an apply wrote it there and failed elsewhere
    (our copy of another member's change, stamped with our write's time)."""
    return _marks(base, LEFT_OUT, name)


def left_out_why(base: Mapping[str, Any] | None, name: str) -> Mapping[Ref, tuple[str, ...]]:
    """Of the members `left_out` marks for diff field `name`, those marked because their
    instance was not in push.targets: ref -> the instances whose change the others took
    (empty: the value was agreed on a first sync)."""
    return _marks(base, LEFT_OUT_WHY, name)


def picked(base: Mapping[str, Any] | None, name: str) -> Mapping[Ref, Any]:
    """The copies crmsync created into an entity that had a base, from a deal lacking a value of
    diff field `name`, which hold their own CRM's pick for it (Salesforce an owner, a probability
    from the stage; Pipedrive its API user as owner) instead of the base's value: ref -> that
    value, or Pick.NOT_SEEN before a run has read the copy. Holding it, the copy made no edit
    there."""
    return _marks(base, PICKED, name)


def _marks(base: Mapping[str, Any] | None, key: str, name: str) -> Mapping[Ref, Any]:
    """A base's marks of one kind (LEFT_OUT, PICKED) for diff field `name`."""
    marks = base.get(key) if base else None
    return marks.get(name, {}) if marks else {}
