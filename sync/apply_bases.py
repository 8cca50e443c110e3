"""After an apply: the values it wrote become its entities' bases (sync/diff.py's three-way
comparison), so the next run sees no echo of crmsync's own writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mapping import deal_from_json
from mapping.model import Deal, Money, Ref
from sync.apply_creates import create_change_id
from sync.apply_report import ChangeResult, Outcome
from sync.diff import LEFT_OUT, LEFT_OUT_WHY, PICKED, Pick
from sync.known_writes import overlaid
from sync.plan import Change, Plan, current_value, decode_held, decode_value, diff_values
from sync.reconcile import base_from_json, base_to_json, rebased
from sync.store import Store
from sync.store_records import AuditEntry

__all__ = ["BaseKeeper"]

# Outcomes after which a target holds the planned value.
_SUCCESS = (Outcome.APPLIED, Outcome.ALREADY, Outcome.DONE_BEFORE)
_MONEY = ("amount", "currency")  # the two plan fields of one diff field (a Money)


class BaseKeeper:
    """The written values become the entity's base, so next run sees no echo of our write.

    Only for a (entity, field) whose planned changes all landed, with one value (a rollback's
    targets may each go back to their own, see `_differ`): had one target failed, the
    old base keeps the failed target from looking 'changed since last sync'. The targets that
    did take the value are marked in the base with it instead: holding it, they are no more
    changed than the base, since that value is our copy of another system's change, stamped
    with our write's time (which the `newest` policy must not take for a user's edit). Members
    the plan left out of that field (they cannot hold the value) are marked in the base with
    what they kept, so that value does not look like a change of theirs either.

    Saved after each batch (:meth:`after`), not once at the end: a run killed (or stopped by a
    lost lock) between two batches leaves its writes marked, and the targets it did not reach
    yet count as failed. Else the next reconcile would take its writes for edits made in those
    CRMs and carry them to the others (a rollback's restored values, over the edit it undid).
    """

    def __init__(self, store: Store, plan: Plan) -> None:
        self._store = store
        self._by_entity: dict[str, list[Change]] = defaultdict(list)
        for change in plan.changes:
            if change.entity:  # else a rollback's change of a deal no longer linked
                self._by_entity[change.entity].append(change)
        self._left, self._whys = _left_out_marks(plan)
        self._creates = {create_change_id(c): c for c in plan.creates}
        self._outcome: dict[str, Outcome] = {}
        self._current: dict[tuple[str, str], Deal] = {}

    def after(
        self, results: Sequence[ChangeResult], current: Mapping[tuple[str, str], Deal]
    ) -> None:
        """Save the bases of the entities of ``results`` (a batch's, or those of changes done
        before) as every result so far leaves them. ``current``: targets as this apply read
        them before writing. A change an earlier run of the plan did (`done before`: a run
        killed, or stopped by a lost lock) was not read again: see :meth:`_known`."""
        self._outcome.update((r.change_id, r.outcome) for r in results)
        self._current.update(current)
        picks = self._created(
            [(self._creates[r.change_id], r) for r in results
             if r.change_id in self._creates and r.outcome in _SUCCESS]
        )  # fmt: skip
        entities = {r.entity for r in results if r.entity}
        changes = [c for entity in entities for c in self._by_entity.get(entity, ())]
        self._current.update(self._known(changes))
        by_key: dict[tuple[str, str], dict[Ref, list[Change]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for change in changes:
            diff_field = "amount" if change.field == "currency" else change.field
            by_key[(change.entity, diff_field)][Ref(change.system, change.id)].append(change)
        updates: dict[str, dict[str, Any]] = defaultdict(dict)
        echoes: dict[str, dict[str, dict[Ref, Any]]] = defaultdict(dict)
        for (entity, diff_field), targets in by_key.items():
            landed = {
                ref: _value_after(diff_field, changes, self._current)
                for ref, changes in targets.items()
                if all(self._outcome.get(c.change_id) in _SUCCESS for c in changes)
            }
            if len(landed) < len(targets) or _differ(landed.values()):
                held = {ref: value for ref, value in landed.items() if value is not _UNKNOWN}
                if held:
                    echoes[entity][diff_field] = held
            elif (value := next(iter(landed.values()))) is not _UNKNOWN:
                updates[entity][diff_field] = value
        if updates or echoes or picks:
            self._save(updates, echoes, picks)

    def _created(
        self, creates: Sequence[tuple[Mapping[str, Any], ChangeResult]]
    ) -> dict[str, dict[str, dict[Ref, Any]]]:
        """A copy holds the values it was created with, as its source does: they are the base
        of an entity that has none yet (a deal one CRM alone held). Else the next run would
        decide every field as on a first sync, and a person's edit of the fresh copy would go
        to the field's policy (taken back under a `priority` ranking the source first, or a
        conflict) instead of spreading. Probability is left out: a copy's is its CRM's own
        (from its stage) as often as the source's.

        An entity with a base keeps it: its members may disagree with the source on a field
        the plan left undecided. Returned for either: the fields the copy was created without a
        value of, which its CRM may pick (see `sync.base_marks.picked`), to mark in the base. Left
        to the field's policy as on a first sync, such a pick was taken for an edit: `newest`
        gave an ownerless deal to the API user Salesforce had picked for its copy."""
        # The copies of one entity share its values (one source, the same decided values).
        entities = {str(c["entity"]): c for c, _ in creates}
        if not entities:
            return {}
        stored = self._store.bases(list(entities))
        fresh = {
            entity: _created_base(create["values"])
            for entity, create in entities.items()
            if not stored.get(entity)
        }
        if fresh:
            self._store.save_bases({entity: base_to_json(b) for entity, b in fresh.items()})
        # Every copy's picks: keyed by entity alone, a deal copied into two CRMs kept the last
        # copy's marks only, and the other's pick (Pipedrive's owner) spread as an edit.
        picks: dict[str, dict[str, dict[Ref, Any]]] = defaultdict(dict)
        for create, result in creates:
            entity, system = str(create["entity"]), str(create["system"])
            base = stored.get(entity) or fresh.get(entity, {})
            values = diff_values(create["values"])
            fields = [name for name, value in values.items() if value is None and name in base]
            copy = (result.id or self._copy_id(entity, system)) if fields else None
            if copy:
                for name in fields:
                    picks[entity].setdefault(name, {})[Ref(system, copy)] = Pick.NOT_SEEN
        return dict(picks)

    def _copy_id(self, entity: str, system: str) -> str | None:
        """The id of the copy an earlier run of the plan made (`done before`: no id here)."""
        links = self._store.link_records([entity])
        return next((link.deal_id for link in links if link.instance == system), None)

    def _save(
        self,
        updates: Mapping[str, Mapping[str, Any]],
        echoes: Mapping[str, Mapping[str, Any]],
        picks: Mapping[str, Mapping[str, Mapping[Ref, Any]]],
    ) -> None:
        """The new values over the stored bases, with their left-out marks, the targets that
        took a value marked (`echoes`), and fresh copies' picks marked (see `_created`)."""
        entities = updates.keys() | echoes.keys() | picks.keys()
        stored = self._store.bases(list(entities))
        merged = {}
        for entity in entities:
            values = updates.get(entity, {})
            base = rebased(base_from_json(stored.get(entity, {}), entity), values)
            marks = base.setdefault(LEFT_OUT, {})
            whys = base.setdefault(LEFT_OUT_WHY, {})
            for name in values:
                if (entity, name) in self._left:
                    marks[name] = self._left[entity, name]
                if (entity, name) in self._whys:
                    whys[name] = self._whys[entity, name]
            for name, held in echoes.get(entity, {}).items():
                marks[name] = {**marks.get(name, {}), **held}
                # an echo is no value kept for want of push.targets
                whys[name] = {r: w for r, w in whys.get(name, {}).items() if r not in held}
            # After the rebase: a field the others took None for keeps the copy's pick; a pick
            # a run has seen since stays as seen.
            chosen = base.setdefault(PICKED, {})
            for name, held in picks.get(entity, {}).items():
                chosen[name] = {**held, **chosen.get(name, {})}
            merged[entity] = base_to_json(base)
        self._store.save_bases(merged)

    def _known(self, changes: Sequence[Change]) -> dict[tuple[str, str], Deal]:
        """The targets of amount or currency changes done before this run and not read by it,
        as crmsync last knows them: the stored snapshot with the audited writes since laid over
        it (the earlier run's write included). Only their currency (or amount) is taken from
        them, the half of the Money that the change did not write and no write changed since."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for change in changes:
            ref = (change.system, change.id)
            done = self._outcome.get(change.change_id) is Outcome.DONE_BEFORE
            if done and change.field in _MONEY and ref not in self._current:
                wanted[change.system].add(change.id)
        if not wanted:
            return {}
        writes: dict[tuple[str, str], list[AuditEntry]] = defaultdict(list)
        for entry in self._store.audit.after_snapshots(list(wanted)):
            if entry.deal_id in wanted[entry.instance]:
                writes[entry.instance, entry.deal_id].append(entry)
        known = {}
        for instance, ids in wanted.items():
            for deal_id, payload in self._store.get_deals(instance, sorted(ids)).items():
                deal = deal_from_json(payload)
                known[instance, deal_id] = overlaid(deal, writes[instance, deal_id])
        return known


def _created_base(values: Mapping[str, Any]) -> dict[str, Any]:
    """A create's values (canonical, amount and currency apart) as a base's diff fields. A value
    the source lacks is none there: the target may pick its own (Salesforce an owner and a close
    date, Pipedrive its API user as owner), which the base marks as no edit made there."""
    return {name: value for name, value in diff_values(values).items() if name != "probability"}


_Marks = dict[tuple[str, str], dict[Ref, Any]]


def _left_out_marks(plan: Plan) -> tuple[_Marks, _Marks]:
    """(entity, diff field) -> {ref: value kept} of the plan's left-out members, and of those
    of no push target; and of the latter, {ref: the instances whose change it kept its value
    against} (see `sync.base_marks.left_out_why`), where the plan says."""
    marks: _Marks = defaultdict(dict)
    whys: _Marks = defaultdict(dict)
    for error in plan.errors:
        entity, name = error.get("entity"), error.get("base_field")
        if isinstance(entity, str) and isinstance(name, str):
            held = decode_held(name, error.get("held"))
            marks[entity, name][Ref(error["system"], error["id"])] = held
    for item in plan.kept:  # members of no push target: what they keep is no edit of theirs
        held = decode_value(item["field"], item["value"], money=True)
        key, ref = (item["entity"], item["field"]), Ref(item["system"], item["id"])
        marks[key][ref] = held
        if "changed_in" in item:
            whys[key][ref] = tuple(item["changed_in"])
    return marks, whys


_UNKNOWN = object()


def _differ(values: Iterable[Any]) -> bool:
    """Do the targets of one field hold different values after their changes landed? Only a
    rollback's may: each goes back to what it held before the run (a member left out of the
    run's value, a copy holding its CRM's pick), and no one of them is the entity's base. They
    are marked with them instead, as after a partial apply, and the base keeps the run's value:
    else the next reconcile took the others' restored values for edits made there, and carried
    one of them over the edit the rolled-back run had copied."""
    known = [value for value in values if value is not _UNKNOWN]
    return any(value != known[0] for value in known[1:])


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
