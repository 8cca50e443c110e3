"""Night after night, two people edit one field of one deal in two CRMs: the policies decide.

Each night seeded people pick entities held by all three CRMs whose copies agree, and for each
one field: a first person edits it in one CRM, then (after a pause longer than any emulator's
clock step, so the order is explicit) a second person edits it in another CRM, to another value
or sometimes to the same one. The fields' policies (`POLICIES`) and the README ("How
reconciliation works") say what every CRM holds after the nightly reconcile applies:
- both edits to one value: agreement, that value everywhere (but under `never`, and under
  `source_of_truth` when neither edit was made in that instance: both are taken back);
- `amount: {source_of_truth: salesforce}`: Salesforce's value, edited or not;
- `close_date: newest`: the second edit;
- `owner_email: {priority: [hubspot, pipedrive, salesforce]}`: HubSpot's value, edited or not;
- `name: never`: each copy keeps its own, even where both edits agree (the third copy keeps the
  old name), and no conflict is listed (only a mismatch);
- `stage: conflict`: each copy keeps its own, and the plan lists the conflict.
A full pull of the three CRMs into a fresh store shows what they hold. The next dry run plans
no change and no copy, and its conflicts are exactly the stage conflicts still open. The night
after, a person settles every open stage conflict by hand (the second CRM back to the first's
value): the conflict is gone from the next plan and nothing is written for it.

A person's stage edit in Salesforce or HubSpot moves the deal's stage-derived probability
there too, a second edit that `probability: newest` decides; the probability of an entity
whose stage was edited is therefore not checked, and its carry is what the existing
test_edits_win_over_nights.py documents.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.plan import Plan
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import OPEN_STAGES, SYSTEMS, Editors
from tests.integration.test_edits_win_over_nights import (
    Held,
    _agreeing,
    _busy,
    _new_value,
    _read_crms,
    _reconcile,
)

POLICIES: dict[str, Any] = {
    "amount": {"source_of_truth": "salesforce"},
    "close_date": "newest",
    "owner_email": {"priority": ["hubspot", "pipedrive", "salesforce"]},
    "name": "never",
    "stage": "conflict",
}
COMPETED = ("amount", "close_date", "owner_email", "name", "stage")
# Longer than the coarsest emulator clock step (Pipedrive and Salesforce stamp whole seconds).
CLOCK_STEP = 1.1


@dataclass(frozen=True)
class Rivalry:
    """One field of one entity edited in `first`, then in `second` (instances)."""

    entity: str
    field: str
    first: str
    second: str
    first_value: Any
    second_value: Any
    old: Any

    def expected(self, system: str) -> Any:
        """What `system` holds after the night's reconcile, from the README's rules."""
        edits = {self.first: self.first_value, self.second: self.second_value}
        own = edits.get(system, self.old)
        rule = POLICIES[self.field]
        if rule == "never":  # "left as it is everywhere", even where two copies agree
            return own
        if isinstance(rule, dict) and "source_of_truth" in rule:  # "even when only another
            return edits.get(rule["source_of_truth"], self.old)  # CRM changed the field"
        if self.first_value == self.second_value:
            return self.first_value
        if rule == "newest":
            return self.second_value
        if isinstance(rule, dict) and "priority" in rule:
            return edits.get(rule["priority"][0], self.old)
        return own  # never, conflict: left as it is

    @property
    def open_conflict(self) -> bool:
        return self.first_value != self.second_value and POLICIES[self.field] == "conflict"


def _configure(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["policies"]["fields"].update(POLICIES)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _rival_value(editors: Editors, field: str, held: Any) -> Any:
    if field == "stage":  # an open stage: a won/lost would move the status too
        return editors.rng.choice([s for s in OPEN_STAGES if s != held])
    return _new_value(editors, field, held)


def _rivalries(
    editors: Editors, held: Held, entities: dict[str, dict[str, str]], agreeing: list[str], n: int
) -> list[Rivalry]:
    full = [e for e in agreeing if set(entities[e]) == set(SYSTEMS)]
    out = []
    for entity in editors.rng.sample(full, min(n, len(full))):
        ids = entities[entity]
        field = editors.rng.choice(COMPETED)
        old = held["salesforce", ids["salesforce"]][field]
        if field == "stage" and old not in OPEN_STAGES:
            continue
        first, second = editors.rng.sample(SYSTEMS, 2)
        first_value = _rival_value(editors, field, old)
        same = editors.rng.random() < 0.25
        second_value = first_value if same else _rival_value(editors, field, old)
        while not same and second_value == first_value:
            second_value = _rival_value(editors, field, old)
        out.append(Rivalry(entity, field, first, second, first_value, second_value, old))
    return out


def _edit(editors: Editors, rivalries: list[Rivalry], entities: dict[str, dict[str, str]]) -> None:
    """Every first edit, a pause, then every second edit: each second edit is the newer."""
    for r in rivalries:
        editors.set_value(r.first, entities[r.entity][r.first], r.field, r.first_value)
    time.sleep(CLOCK_STEP)
    for r in rivalries:
        editors.set_value(r.second, entities[r.entity][r.second], r.field, r.second_value)


def _settle(editors: Editors, open_: list[Rivalry], entities: dict[str, dict[str, str]]) -> None:
    """A person ends each open conflict: the second CRM takes the first one's value."""
    for r in open_:
        editors.set_value(r.second, entities[r.entity][r.second], r.field, r.first_value)


def _check_night(
    rivalries: list[Rivalry], entities: dict[str, dict[str, str]], after: Held, applied: Plan
) -> list[str]:
    problems = []
    for r in rivalries:
        for system, deal_id in entities[r.entity].items():
            holds, wanted = after[system, deal_id][r.field], r.expected(system)
            if holds != wanted:
                problems.append(f"{r}: {system} holds {holds!r}, wanted {wanted!r}")
    listed = {(c.entity, c.field) for c in applied.conflicts}
    for r in rivalries:
        if r.open_conflict != ((r.entity, r.field) in listed):
            problems.append(f"{r}: conflict listed {not r.open_conflict}")
    return problems


def _left_to_do(
    plan: Plan, open_: list[Rivalry], staged: set[str], baseline: set[tuple[str, str]]
) -> list[str]:
    """What the dry run after the night plans beyond the still-open conflicts (and those the
    world held before the first night, `baseline`)."""
    out = [
        f"{c.system} {c.id} {c.field} -> {c.to_value!r} ({c.reason})"
        for c in plan.changes
        if not (c.field == "probability" and c.entity in staged)
    ]
    out += [f"create {c}" for c in plan.creates]
    expected = {(r.entity, r.field) for r in open_} | baseline
    listed = {(c.entity, c.field) for c in plan.conflicts}
    out += [
        f"unexpected conflict {c}" for c in plan.conflicts if (c.entity, c.field) not in expected
    ]
    out += [f"conflict not listed: {r}" for r in open_ if (r.entity, r.field) not in listed]
    return out


def _nights(world: World, seed: int, nights: int, per_night: int) -> None:
    _configure(world)
    _reconcile(world, dry_run=False)
    plan = _reconcile(world, dry_run=True)
    editors = Editors(world, seed)
    entities = world.members()
    baseline = {(c.entity, c.field) for c in plan.conflicts}  # the world's own, left alone
    open_: list[Rivalry] = []
    staged: set[str] = set()
    for night in range(1, nights + 1):
        before = _read_crms(world, f"{night}-before")
        busy = _busy(plan, entities) | {e for e, _ in baseline} | {r.entity for r in open_}
        agreeing = _agreeing(before, entities, busy)
        editors.done.clear()
        _settle(editors, open_, entities)
        rivalries = _rivalries(editors, before, entities, agreeing, per_night)
        _edit(editors, rivalries, entities)

        applied = _reconcile(world, dry_run=False)
        after = _read_crms(world, f"{night}-after")
        problems = _check_night(rivalries, entities, after, applied)
        listed = {(c.entity, c.field) for c in applied.conflicts}
        for r in open_:  # settled by hand: the value the person chose, and no conflict
            for system, deal_id in entities[r.entity].items():
                if (holds := after[system, deal_id][r.field]) != r.first_value:
                    problems.append(f"settled {r}: {system} holds {holds!r}")
            if (r.entity, r.field) in listed:
                problems.append(f"settled {r}: still listed as a conflict")
        staged = {r.entity for r in [*rivalries, *open_] if r.field == "stage"}
        open_ = [r for r in rivalries if r.open_conflict]
        plan = _reconcile(world, dry_run=True)
        problems += _left_to_do(plan, open_, staged, baseline)
        assert problems == [], f"night {night} after edits {editors.done}: {problems}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=80, seed=12)


def test_competing_edits_are_decided_by_the_field_policies_night_after_night(
    world: World,
) -> None:
    _nights(world, seed=12, nights=3, per_night=14)
