"""Where an entity's copies disagree, whether or not the plan writes the difference: the
diff's `Mismatch` records. Pure.

The plan writes only some differences: copies in an instance `push.targets` leaves out, fields
under `never`, values a CRM cannot hold and stages waiting for an undecided status stay as they
are. The report's mismatches are meant to show every one (a read-only CRM is often the very one
being migrated away from), so the diff records each here, with why nothing is planned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from mapping.model import Deal, Money, Ref
from sync.diff_result import Conflict, DealError, FieldChange, Mismatch, Unwritten
from sync.policy import Policy, PolicyRule, policy_for

__all__ = ["READ_ONLY", "mismatches", "split"]

READ_ONLY = "read-only: not in push.targets"
_NEVER = "policy never: the field is left as it is everywhere"
_UNDECIDED = "no value decided"
_LEFT = "no change planned; left as it is"
# Won and lost are both a status and a stage: neither moves while the other is undecided (and a
# probability goes with the status). See `couple` in sync/diff.py.
_COUPLED = {"stage": "status", "status": "stage", "probability": "stage"}


def split(field_name: str, value: Any) -> list[tuple[str, Any]]:
    """A diff field's value as the plan's fields: the amount's Money as amount and currency."""
    if field_name != "amount":
        return [(field_name, value)]
    money: Money | None = value
    return [("amount", money.amount if money else None), ("currency", money and money.currency)]


def mismatches(
    entity: str,
    differing: Mapping[str, Sequence[tuple[Deal, Any]]],
    decided: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    *,
    targets: Collection[str],
    policies: Mapping[str, Policy],
    changes: Sequence[FieldChange],
    conflicts: Sequence[Conflict],
    errors: Sequence[DealError],
) -> list[Mismatch]:
    """The mismatches of one entity: per diff field whose copies hold different values
    (`differing`: field -> each compared copy and its value), as the plan names it; `decided`,
    the value the entity takes per field; `base`, the values its copies last agreed on;
    `changes`, `conflicts`, `errors`: what the diff made of the entity.

    A copy is unwritten where it differs from the decided value; where none is decided, from
    the value the copies last agreed on (the copies still holding it are not what differs), or
    without one, every copy is."""
    written = {(c.target, c.field) for c in changes}
    in_conflict = {c.field for c in conflicts}
    refused = {(e.ref, e.field): e.reason for e in errors}
    found = []
    for name, pairs in differing.items():
        refs = tuple(deal.ref for deal, _ in pairs)
        if name in in_conflict:  # the conflict lists every copy's value
            found.append(Mismatch(entity, name, refs))
            continue
        otherwise = _otherwise(name, policies, differing, decided)
        to_parts = dict(split(name, decided[name])) if name in decided else {}
        agreed = to_parts or (dict(split(name, base[name])) if base and name in base else {})
        parts = [(deal, split(name, value)) for deal, value in pairs]
        for index, part in enumerate(p for p, _ in split(name, None)):
            values = [(deal, its[index][1]) for deal, its in parts]
            if len({value for _, value in values}) < 2:
                continue  # an amount whose currency agrees, or the other way round
            to = to_parts.get(part)
            unwritten = tuple(
                Unwritten(deal.ref, value, to, _why(deal, name, part, targets, refused, otherwise))
                for deal, value in values
                if (part not in agreed or value != agreed[part]) and (deal.ref, part) not in written
            )
            found.append(Mismatch(entity, part, refs, unwritten))
    return found


def _why(
    deal: Deal,
    name: str,
    part: str,
    targets: Collection[str],
    refused: Mapping[tuple[Ref, str], str],
    otherwise: str,
) -> str:
    """Why no change of `part` is planned into `deal`: no push target, else the error the diff
    reported for it (a value its CRM cannot hold, an archived deal), else `otherwise`."""
    if deal.system not in targets:
        return READ_ONLY
    return refused.get((deal.ref, part)) or refused.get((deal.ref, name)) or otherwise


def _otherwise(
    name: str,
    policies: Mapping[str, Policy],
    differing: Collection[str],
    decided: Collection[str],
) -> str:
    """Why a target copy of a field gets no change where the diff reported no error for it."""
    if name in decided:
        return _LEFT
    if policy_for(policies, name).rule is PolicyRule.NEVER:
        return _NEVER
    coupled = _COUPLED.get(name)
    if coupled in differing and coupled not in decided:
        return f"goes with the {coupled}, which is not decided; left as it is"
    return _UNDECIDED
