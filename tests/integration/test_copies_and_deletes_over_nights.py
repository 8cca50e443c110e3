"""Night after night, with push.create_missing and push.propagate_deletes: what the CRMs hold.

Each night seeded people create new deals in one CRM, edit some of the copies crmsync made the
night before, and delete deals in one CRM: some whose other copies nobody touched, some whose
copy in a third CRM a person edited first. Then the nightly reconcile applies. A full pull of the
three CRMs into a fresh store (tests/integration/test_edits_win_over_nights.py) then shows that:
1. every live deal is in an entity that has exactly one live deal in every CRM, and each new
   deal's name is held once by every CRM; except what the plan reports (README): a copy no CRM
   of that instance can hold (`no copy can be made in <instance>`), an ambiguous match or a
   duplicate, an entity in `deleted`;
2. a deal deleted in one CRM is gone everywhere when its other copies were untouched; a copy a
   person edited since is kept (README, "Deletions": reported as drifted), the untouched copy
   beside it is deleted, and the plan lists the entity in `deleted`;
3. an edit of a fresh copy is in every deal of its entity;
4. the next dry run plans no change, no copy, no delete and no new conflict, except what README
   documents: a copy's CRM picks its own probability for an entity without a base yet
   ("probability aside"), which the next run carries (`# DOCUMENTED` below), and a drifted copy's
   delete is planned again while its reason holds ("Journal"), to drift again.
CRMSYNC_LIFECYCLE_SEED picks another seed (all of 1-12 passed when this test was written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.plan import Plan
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import SYSTEMS, Editors
from tests.integration.test_edits_win_over_nights import (
    Held,
    Ref,
    _new_value,
    _read_crms,
    _reconcile,
)

FRESH_FIELDS = ("name", "amount", "close_date")


def _cannot_copy(plan: Plan) -> set[Ref]:
    """(instance, source deal id) of copies the plan says no CRM of that instance can hold."""
    return {
        (str(e["system"]), str(e["id"]))
        for e in plan.errors
        if str(e["reason"]).startswith("no copy can be made in ")
    }


def _whole(held: Held, entities: dict[str, dict[str, str]]) -> list[str]:
    """Entities with a live deal in every CRM, all agreeing."""
    out = []
    for entity, ids in sorted(entities.items()):
        refs = list(ids.items())
        live = len(refs) == len(SYSTEMS) and all(ref in held for ref in refs)
        if live and all(held[ref] == held[refs[0]] for ref in refs):
            out.append(entity)
    return out


def _check_copies(
    after: Held, entities: dict[str, dict[str, str]], plan: Plan, deleted: set[str]
) -> list[str]:
    """Property 1: one live deal per entity and CRM, none outside an entity; an entity `deleted`
    in one CRM, with a copy kept elsewhere, lacks that CRM's."""
    problems = []
    linked = {(s, i): e for e, ids in entities.items() for s, i in ids.items()}
    refused = _cannot_copy(plan)
    deleted = deleted | {str(d["entity"]) for d in plan.deleted}  # README "Deletions": reported
    reported = {(str(a["system"]), str(a["id"])) for a in plan.ambiguous} | {
        (str(d["system"]), str(i)) for d in plan.duplicates for i in d["ids"]
    }
    for ref in after:
        if ref not in linked and ref not in reported | refused:
            problems.append(f"{ref} {after[ref]['name']!r}: live, in no entity")
    for entity, ids in entities.items():
        live = {s for s, i in ids.items() if (s, i) in after}
        if not live or entity in deleted:
            continue
        missing = set(SYSTEMS) - live
        if missing and not any((s, ids[s]) in refused for s in live):
            problems.append(f"entity {entity} {ids}: no live copy in {sorted(missing)}")
    return problems


def _nights(world: World, seed: int, nights: int) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, propagate_deletes=True)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    _reconcile(world, dry_run=False)  # the first run, then what it leaves to carry
    applied = _reconcile(world, dry_run=False)
    plan = _reconcile(world, dry_run=True)
    editors = Editors(world, seed)
    drifted: set[str] = set()  # entities deleted in one CRM, with an edited copy kept
    for night in range(1, nights + 1):
        editors.done.clear()
        entities = world.members()
        before = _read_crms(world, f"{night}-before")
        # 3. a person edits some of the copies crmsync made last night
        fresh: dict[str, tuple[str, Any]] = {}  # entity -> (field, edited value)
        for entity in sorted({str(c["entity"]) for c in applied.creates})[::2]:
            system = next(str(c["system"]) for c in applied.creates if c["entity"] == entity)
            ref = (system, entities[entity][system])
            field = editors.rng.choice(FRESH_FIELDS)
            value = _new_value(editors, field, before[ref][field])
            editors.set_value(system, ref[1], field, value)
            fresh[entity] = (field, value)
        # 2. deletes in one CRM: some with untouched copies (last night's copies among them,
        # their probability carry still pending), some with a copy edited first
        whole = [e for e in _whole(before, entities) if e not in fresh and e not in drifted]
        copies = sorted({str(c["entity"]) for c in applied.creates} - set(fresh))
        copies = [e for e in copies if all(r in before for r in entities[e].items())]
        doomed = editors.rng.sample(whole, 6)
        gone, kept = [*editors.rng.sample(copies, min(2, len(copies))), *doomed[:3]], {}
        doomed += [e for e in gone if e not in doomed]
        doomed_ids = {e: entities[e] for e in doomed}
        for entity in doomed:
            ids = entities[entity]
            deleted_in, edited_in = editors.rng.sample(sorted(ids), 2)
            if entity not in gone:
                field = editors.rng.choice(FRESH_FIELDS)
                ref = (edited_in, ids[edited_in])
                value = _new_value(editors, field, before[ref][field])
                editors.set_value(edited_in, ids[edited_in], field, value)
                kept[entity] = (ref, field, value)
            editors.delete(deleted_in, ids[deleted_in])
        # 1. new deals, each in one CRM
        for _ in range(4):
            editors.create_new()
        made = {ref: v["name"] for ref, v in _read_crms(world, f"{night}-made").items()}
        new_names = {name for ref, name in made.items() if ref not in before}

        assert fresh or night == 1, f"night {night}: no copy of last night to edit"
        drifted |= set(kept)
        previous = {repr(c) for c in plan.conflicts}
        applied = _reconcile(world, dry_run=False)
        after = _read_crms(world, f"{night}-after")
        plan = _reconcile(world, dry_run=True)
        entities = world.members()
        problems = _check_copies(after, entities, plan, drifted)
        for name in sorted(new_names):
            holders = sorted(s for (s, _), v in after.items() if v["name"] == name)
            if holders != sorted(SYSTEMS):
                problems.append(f"new deal {name!r}: held by {holders}")
        listed = {str(d["entity"]) for d in applied.deleted}
        for entity in gone:
            live = [ref for ref in doomed_ids[entity].items() if ref in after]
            problems += [f"{ref}: live, its entity was deleted untouched" for ref in live]
        for entity, (ref, field, value) in kept.items():
            if entity not in listed:
                problems.append(f"entity {entity}: deleted, not in the plan's `deleted`")
            if ref not in after or after[ref][field] != value:
                problems.append(f"{ref} {field}={value!r}: an edited copy, not kept as edited")
            untouched = [r for r in doomed_ids[entity].items() if r != ref and r in after]
            problems += [f"{r}: live, untouched, its entity was deleted" for r in untouched]
        for entity, (field, value) in fresh.items():
            for ref in entities[entity].items():
                if ref in after and after[ref][field] != value:
                    problems.append(f"{ref} {field}: {after[ref][field]!r}, edited to {value!r}")
        problems += [f"new conflict {c}" for c in plan.conflicts if repr(c) not in previous]
        copied = {str(c["entity"]) for c in applied.creates}
        problems += [
            f"{c.system} {c.id} {c.field} -> {c.to_value!r} ({c.reason})"
            for c in plan.changes
            if not (c.field == "probability" and c.entity in copied)  # DOCUMENTED, item 4
        ]
        problems += [f"create {c}" for c in plan.creates]
        again = [d for d in plan.deleted if d["propagate"] and d["entity"] not in drifted]
        problems += [f"delete {d}" for d in again]
        report = "\n".join(problems)
        assert not problems, f"night {night} after {editors.done}:\n{report}"


SEED = int(os.environ.get("CRMSYNC_LIFECYCLE_SEED", "12"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=70, seed=SEED)


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_copies_and_deletes_spread_once_and_edited_copies_are_kept_night_after_night(
    world: World,
) -> None:
    _nights(world, seed=SEED, nights=3)
