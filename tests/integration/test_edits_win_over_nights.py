"""Night after night, a person's edit wins and nothing else changes: what the CRMs hold.

Each night seeded people edit one field of one deal in each of several (entity, field) pairs,
at most two fields of an entity and never one field twice, so no two edits compete; straight
in the emulators. Then the nightly reconcile applies. A full pull of the three CRMs into a
fresh store (the CRMs themselves, not what crmsync stored of them) then shows that:
1. every field the edit changed holds the edited value in every deal of its entity, unless the
   applied plan lists an error for that deal and field, and then the deal keeps its old value;
2. no other field of any deal changed, except as the README documents (`DOCUMENTED` below);
3. the next dry run plans no change, no copy and no new conflict, except what `DOCUMENTED`
   says a later run carries.
It found an amount edited in one CRM and the currency in another decided as rival amounts (one
edit lost); tests/engine/test_three_way_diff.py holds that case on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mapping.codec import deal_from_json
from sync.plan import Plan
from sync.pull import failure_of, pull
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.store_records import RunStatus
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import SYSTEMS, Editors
from tests.integration.test_fields_round_trip import FIELDS, _canonical

Ref = tuple[str, str]  # (instance, deal id)
Held = dict[Ref, dict[str, Any]]  # every live deal's canonical FIELDS, as its CRM holds them

# What people edit; a status is edited through the stage (won/lost; Pipedrive: its status).
EDITED = ("name", "stage", "amount", "currency", "close_date", "owner_email", "probability")

# The changes README documents beyond an edit's own fields, each with where it says so.
DOCUMENTED = {
    "probability reset": (
        "When crmsync moves a deal's stage in Salesforce (or in HubSpot, a deal without a "
        "forecast probability), the CRM resets the deal's stage-derived probability after the "
        "plan was made (README, 'What crmsync guarantees under faults')"
    ),
    "probability carried": (
        "the next run carries that probability to the other CRMs (two runs to converge): the "
        "dry run after a night plans it, and the next night writes it (same section)"
    ),
}
RESETS_PROBABILITY = ("salesforce", "hubspot")


def _read_crms(world: World, tag: str) -> Held:
    """A full pull of every CRM into a fresh store of its own."""
    here = world.config.parent
    config = here / f"read-{tag}.yaml"
    text = world.config.read_text()
    config.write_text(text.replace(str(here / "crmsync.db"), str(here / f"read-{tag}.db"), 1))
    with open_runtime(str(config)) as rt:
        failed = failure_of(pull(rt.config, rt.store, rt.connectors, full=True))
        assert failed is None, failed
        return {
            (system, deal.id): {field: _canonical(deal, field) for field in FIELDS}
            for system in SYSTEMS
            for deal in map(deal_from_json, rt.store.iter_deals(system))
        }


def _reconcile(world: World, *, dry_run: bool) -> Plan:
    with open_runtime(str(world.config)) as rt:
        outcome = run_reconcile(rt, dry_run=dry_run, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return outcome.result.plan


def _new_value(editors: Editors, field: str, held: Any) -> Any:
    """A value of `field` other than the one `held`."""
    while True:
        if field == "probability":
            value: Any = Decimal(editors.rng.randint(1, 99)) / 100
        else:
            value = editors._value(field)
        if value != held:
            return value


def _agreeing(held: Held, entities: dict[str, dict[str, str]], busy: set[str]) -> list[str]:
    """Entities of two deals or more, all live, agreeing on every field, with nothing planned."""
    out = []
    for entity, ids in sorted(entities.items()):
        refs = list(ids.items())
        if entity in busy or len(refs) < 2 or any(ref not in held for ref in refs):
            continue
        if all(held[ref] == held[refs[0]] for ref in refs):
            out.append(entity)
    return out


def _pairs(
    editors: Editors, held: Held, agreeing: dict[str, dict[str, str]], edits: int
) -> list[tuple[str, str]]:
    """`edits` distinct (entity, field) pairs, at most two fields per entity. A stage and a
    probability are never paired: a person's stage edit in Salesforce (or HubSpot, without a
    forecast) moves its probability too, which would compete with the other edit. A deal
    without an amount has no currency to edit."""
    pairs: list[tuple[str, str]] = []
    for entity in editors.rng.sample(sorted(agreeing), (edits + 1) // 2):
        some = next(iter(agreeing[entity].items()))
        pool = [f for f in EDITED if f != "currency" or held[some]["amount"] is not None]
        fields = editors.rng.sample(pool, 2)
        while {"stage", "probability"} <= set(fields):
            fields = editors.rng.sample(pool, 2)
        pairs += [(entity, field) for field in fields]
    return pairs[:edits]


def _edit(editors: Editors, held: Held, ids: dict[str, str], field: str) -> None:
    system = editors.rng.choice(sorted(ids))
    ref = (system, ids[system])
    editors.set_value(system, ref[1], field, _new_value(editors, field, held[ref][field]))


def _busy(plan: Plan, entities: dict[str, dict[str, str]]) -> set[str]:
    """Entities the plan has a change or an error for."""
    refs = {(str(e["system"]), str(e["id"])) for e in plan.errors}
    out = {c.entity for c in plan.changes}
    return out | {e for e, ids in entities.items() if refs & set(ids.items())}


def _check_night(
    entities: dict[str, dict[str, str]],
    before: Held,
    edited: Held,
    after: Held,
    applied: Plan,
    carried: dict[Ref, Any],
) -> list[str]:
    """Properties 1 and 2: what each field of each deal holds after the night."""
    of_entity = {(s, i): e for e, ids in entities.items() for s, i in ids.items()}
    wanted: dict[tuple[str, str], Any] = {}  # (entity, field) -> the edited value
    for ref, values in edited.items():
        for field, value in values.items():
            wanted[of_entity[ref], field] = value
    cannot = {(str(e["system"]), str(e["id"]), str(e["field"])) for e in applied.errors}
    staged = {(c.system, c.id) for c in applied.changes if c.field == "stage"}
    problems = []
    for ref, now in after.items():
        if ref not in before:
            problems.append(f"{ref}: a deal nobody made")
            continue
        entity = of_entity.get(ref)
        for field in FIELDS:
            old, new = before[ref][field], now[field]
            if (entity, field) in wanted:
                value = wanted[entity, field]
                if (*ref, field) in cannot:
                    if new != old:
                        problems.append(f"{ref} {field}: {old!r} -> {new!r} though left out")
                elif new != value:
                    problems.append(f"{ref} {field}: holds {new!r}, the edit was {value!r}")
            elif new != old:
                if field == "probability" and ref in staged and ref[0] in RESETS_PROBABILITY:
                    continue  # DOCUMENTED["probability reset"]
                if field == "probability" and ref in carried and carried[ref] == new:
                    continue  # DOCUMENTED["probability carried"]
                problems.append(f"{ref} {field}: {old!r} -> {new!r}, nobody edited it")
    return problems


def _left_to_do(after: Plan, applied: Plan, previous_conflicts: set[str]) -> list[str]:
    """Property 3: what the dry run after the night plans beyond the documented carry."""
    reset = {
        c.entity for c in applied.changes if c.field == "stage" and c.system in RESETS_PROBABILITY
    }
    out = [
        f"{c.system} {c.id} {c.field} -> {c.to_value!r} ({c.reason})"
        for c in after.changes
        if not (c.field == "probability" and c.entity in reset)  # DOCUMENTED["probability carried"]
    ]
    out += [f"create {c}" for c in after.creates]
    out += [f"new conflict {c}" for c in after.conflicts if repr(c) not in previous_conflicts]
    return out


def _nights(world: World, seed: int, nights: int, edits: int) -> None:
    _reconcile(world, dry_run=False)
    plan = _reconcile(world, dry_run=True)
    editors = Editors(world, seed)
    for night in range(1, nights + 1):
        entities = world.members()
        carried = {(c.system, c.id): c.to_value for c in plan.changes if c.field == "probability"}
        before = _read_crms(world, f"{night}-before")
        agreeing = {e: entities[e] for e in _agreeing(before, entities, _busy(plan, entities))}
        editors.done.clear()
        for entity, field in _pairs(editors, before, agreeing, edits):
            _edit(editors, before, entities[entity], field)
        made = _read_crms(world, f"{night}-edited")
        edited = {
            ref: {f: v for f, v in values.items() if v != before[ref][f]}
            for ref, values in made.items()
            if values != before.get(ref)
        }
        assert edited, f"night {night}: {editors.done} changed nothing"

        applied = _reconcile(world, dry_run=False)
        after = _read_crms(world, f"{night}-after")
        problems = _check_night(entities, before, edited, after, applied, carried)
        previous = {repr(c) for c in plan.conflicts}
        plan = _reconcile(world, dry_run=True)
        problems += _left_to_do(plan, applied, previous)
        assert problems == [], f"night {night} after edits {editors.done}: {problems}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=80, seed=10)


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_persons_edit_wins_everywhere_and_nothing_else_changes_night_after_night(
    world: World,
) -> None:
    _nights(world, seed=10, nights=4, edits=16)
