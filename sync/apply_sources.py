"""A saved plan's changes whose value another deal of the entity no longer holds.

`crmsync apply PLAN` writes a plan made earlier. Its target re-read tells whether the target
moved since (sync/apply.py); this tells whether the value it would write is still the news:
when a deal of the same entity changed that field again after the plan was made (a pull read
the edit), the plan's value is older than what that deal holds now, and writing it would
undo a person's newer edit in the target until the next reconcile. Such a change is drifted
(not sent); the next reconcile decides the field from what every CRM holds then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mapping.codec import deal_from_json
from mapping.model import Deal
from sync.apply_doubt import holds
from sync.diff import FunnelFacts
from sync.match import is_deleted
from sync.plan import Change, Plan, current_value, decode_held, show_value
from sync.store import Store

__all__ = ["SourceCheck"]


@dataclass(frozen=True)
class SourceCheck:
    store: Store
    since: datetime  # when the plan's data was read (`_read_from`)
    # (system, deal id, field) -> the value the plan expects there: a change's `from`
    expected: Mapping[tuple[str, str, str], Any]
    facts: Mapping[str, FunnelFacts]

    @classmethod
    def of(cls, store: Store, plan: Plan, facts: Mapping[str, FunnelFacts]) -> SourceCheck:
        expected: dict[tuple[str, str, str], Any] = {}
        # Members the plan leaves out of a field (no push target, or a value their CRM cannot
        # take) keep their own value of it: that value is no newer edit either.
        left_out = [(e, e.get("base_field"), e.get("held")) for e in plan.errors]
        left_out += [(k, k["field"], k["value"]) for k in plan.kept]
        for item, name, value in left_out:
            if isinstance(name, str) and isinstance(item.get("system"), str):
                held = decode_held(name, value)
                for field, kept in _plan_fields(name, held):
                    expected[item["system"], item["id"], field] = kept
        expected |= {(c.system, c.id, c.field): c.from_value for c in plan.changes}
        return cls(store, _read_from(store, plan), expected, facts)

    def outdated(self, changes: Sequence[Change]) -> dict[str, str]:
        """Change id -> why it is not sent, for the changes of which another deal of the entity
        was modified after the plan and now holds neither the plan's value for it nor the
        change's, with the amount or currency change that makes one value with it (one store
        read of the entities' deals)."""
        members = self._members({c.entity for c in changes})
        outdated: dict[str, str] = {}
        for change in changes:
            for deal in members.get(change.entity, ()):
                if (deal.system, deal.id) == (change.system, change.id):
                    continue
                why = self._edited(deal, change)
                if why is not None:
                    outdated[change.change_id] = why
                    break
        # A deal's amount and currency are one value: half of it would change its meaning.
        money: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in changes:
            if change.field in ("amount", "currency"):
                money[change.system, change.id].append(change)
        for pair in money.values():
            why = next((outdated[c.change_id] for c in pair if c.change_id in outdated), None)
            if why is not None:
                outdated |= {c.change_id: why for c in pair}
        return outdated

    def _edited(self, deal: Deal, change: Change) -> str | None:
        if is_deleted(deal) or deal.updated_at <= self.since:
            return None
        # A deal the plan did not write to held the change's value when the plan was made.
        before = self.expected.get((deal.system, deal.id, change.field), change.to_value)
        if any(holds(deal, change.field, v, self.facts) for v in (before, change.to_value)):
            return None
        return (
            f"{deal.system} {deal.id} changed {change.field} to "
            f"{show_value(current_value(deal, change.field))} since the plan was made "
            f"(which writes {show_value(change.to_value)}): not written; the next reconcile "
            "decides it"
        )

    def _members(self, entities: set[str]) -> dict[str, list[Deal]]:
        ids: dict[str, dict[str, str]] = defaultdict(dict)  # instance -> deal id -> entity
        for link in self.store.link_records(sorted(entities)):
            ids[link.instance][link.deal_id] = link.entity_id
        members: dict[str, list[Deal]] = defaultdict(list)
        for instance, entity_of in sorted(ids.items()):
            for deal_id, payload in self.store.get_deals(instance, list(entity_of)).items():
                members[entity_of[deal_id]].append(deal_from_json(payload))
        return members


def _plan_fields(diff_field: str, value: Any) -> list[tuple[str, Any]]:
    """A diff field's value as the plan fields' values (the amount's Money is two of them)."""
    if diff_field != "amount":
        return [(diff_field, value)]
    return [
        ("amount", value.amount if value else None),
        ("currency", value.currency if value else None),
    ]


def _read_from(store: Store, plan: Plan) -> datetime:
    """When the plan's data was read: the start of the run that made it (its pull came after),
    less a second (Salesforce and Pipedrive stamp edits in whole seconds). The plan is stamped
    when its analysis ends, minutes later at scale: an edit in between, which its pull did not
    read, is newer than its data. Without that run's record (another store), the plan's time.
    An earlier time only lets more deals be compared by value; one the plan read holds the
    value it planned from."""
    run = store.runs.get(plan.run_id)
    if run is None:
        return plan.created_at
    return min(plan.created_at, run.started_at) - timedelta(seconds=1)
