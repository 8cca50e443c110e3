"""After an apply: the values it wrote become its entities' bases (sync/diff.py's three-way
comparison), so the next run sees no echo of crmsync's own writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from mapping.model import Deal, Money, Ref
from sync.apply_report import ChangeResult, Outcome
from sync.diff import LEFT_OUT
from sync.plan import Change, Plan, current_value, decode_value
from sync.reconcile import base_from_json, base_to_json, rebased
from sync.store import Store

__all__ = ["save_bases_after"]

# Outcomes after which a target holds the planned value.
_SUCCESS = (Outcome.APPLIED, Outcome.ALREADY, Outcome.DONE_BEFORE)


def save_bases_after(
    store: Store,
    plan: Plan,
    results: Sequence[ChangeResult],
    current: Mapping[tuple[str, str], Deal],
) -> None:
    """The written values become the entity's base, so next run sees no echo of our write.

    Only for a (entity, field) whose planned changes all landed: had one target failed, the
    old base keeps the failed target from looking 'changed since last sync'. The targets that
    did take the value are marked in the base with it instead: holding it, they are no more
    changed than the base, since that value is our copy of another system's change, stamped
    with our write's time (which the `newest` policy must not take for a user's edit). Members
    the plan left out of that field (they cannot hold the value) are marked in the base with
    what they kept, so that value does not look like a change of theirs either.
    """
    outcome = {r.change_id: r.outcome for r in results}
    by_key: dict[tuple[str, str], dict[Ref, list[Change]]] = defaultdict(lambda: defaultdict(list))
    for change in plan.changes:
        if not change.entity:  # a rollback's change of a deal no longer linked
            continue
        diff_field = "amount" if change.field == "currency" else change.field
        by_key[(change.entity, diff_field)][Ref(change.system, change.id)].append(change)
    updates: dict[str, dict[str, Any]] = defaultdict(dict)
    echoes: dict[str, dict[str, dict[Ref, Any]]] = defaultdict(dict)
    for (entity, diff_field), targets in by_key.items():
        landed = {
            ref: _value_after(diff_field, changes, current)
            for ref, changes in targets.items()
            if all(outcome.get(c.change_id) in _SUCCESS for c in changes)
        }
        if len(landed) < len(targets):
            held = {ref: value for ref, value in landed.items() if value is not _UNKNOWN}
            if held:
                echoes[entity][diff_field] = held
        elif (value := next(iter(landed.values()))) is not _UNKNOWN:
            updates[entity][diff_field] = value
    if not updates and not echoes:
        return
    stored = store.bases(list(updates.keys() | echoes.keys()))
    left = _left_out_marks(plan)
    merged = {}
    for entity in updates.keys() | echoes.keys():
        values = updates.get(entity, {})
        base = rebased(base_from_json(stored.get(entity, {})), values)
        marks = base.setdefault(LEFT_OUT, {})
        for name in values:
            if (entity, name) in left:
                marks[name] = left[entity, name]
        for name, held in echoes.get(entity, {}).items():
            marks[name] = {**marks.get(name, {}), **held}
        merged[entity] = base_to_json(base)
    store.save_bases(merged)


def _left_out_marks(plan: Plan) -> dict[tuple[str, str], dict[Ref, Any]]:
    """(entity, diff field) -> {ref: value kept} of the plan's left-out members."""
    marks: dict[tuple[str, str], dict[Ref, Any]] = defaultdict(dict)
    for error in plan.errors:
        entity, name = error.get("entity"), error.get("base_field")
        if isinstance(entity, str) and isinstance(name, str):
            held = decode_value(name, error.get("held"), money=True)
            marks[entity, name][Ref(error["system"], error["id"])] = held
    return marks


_UNKNOWN = object()


def _value_after(
    diff_field: str, changes: Sequence[Change], current: Mapping[tuple[str, str], Deal]
) -> Any:
    """The comparable value of `diff_field` a target holds after its `changes` landed: the
    Money after its amount and/or currency change, else the value written."""
    if diff_field != "amount":
        return changes[0].to_value
    change = changes[0]
    parts = {c.field: c.to_value for c in changes}
    deal = current.get((change.system, change.id))
    if "amount" in parts and parts["amount"] is None:
        return None
    amount = parts.get("amount", deal and current_value(deal, "amount"))
    currency = parts.get("currency", deal and current_value(deal, "currency"))
    if amount is None or currency is None:
        return _UNKNOWN
    return Money(amount, str(currency))
