"""People keep editing while crmsync plans and applies; applies stop part-way. Under the
`newest` policy (the sandbox config's default) every deal must end on the value a person set
last, field by field, in all three CRMs, and the CRMs must converge.

Each round: people set an amount, close date, stage or status (won/lost) in one CRM each;
crmsync plans; people edit some of the same deals again (so the apply skips those as drifted,
while landing elsewhere); the apply runs with one CRM refusing all or some writes; then a
clean reconcile. Edits are a second apart, since Pipedrive stamps whole seconds and `newest`
compares stamps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from sync.apply import apply_plan
from sync.reconcile import plan_run
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from tests.integration.conftest import World, build_world

SYSTEMS = ("salesforce", "hubspot", "pipedrive")
FIELDS = ("amount", "close_date", "stage", "status")
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
REFUSALS = ({"error5xx": 1.0}, {"record_fail": 0.5}, None)
TICK = 1.1  # seconds between edits whose order `newest` must see


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=60, seed=3)


class People:
    """Edit deals in the CRMs as their users would, and remember the last value set."""

    def __init__(self, world: World, seed: int) -> None:
        self.world, self.rng = world, random.Random(seed)
        document = yaml.safe_load(world.config.read_text())
        self.stage_maps = {s: document["systems"][s]["stage_map"] for s in SYSTEMS}
        self.last: dict[tuple[str, str], Any] = {}  # (entity, field) -> last value set

    def edit(self, entity: str, ids: dict[str, str], held: dict[str, dict[str, Any]]) -> None:
        """Set a new value of a random field in one CRM; never the value a copy holds already
        (re-saving a value is no change a three-way diff can see)."""
        name, system = self.rng.choice(FIELDS), self.rng.choice(SYSTEMS)
        taken = {row[name] for row in held.values()} | {self.last.get((entity, name))}
        if name == "amount":
            value: Any = str(Decimal(self.rng.randint(1000, 99999)))
        elif name == "close_date":
            value = (date(2030, 1, 1) + timedelta(days=self.rng.randint(0, 900))).isoformat()
        elif name == "status":  # won or lost, once: a closed deal stays closed here
            if (entity, "status") in self.last or any(r["status"] != "open" for r in held.values()):
                return
            value = self.rng.choice(("won", "lost"))
        else:
            if (entity, "status") in self.last:
                return
            free = [s for s in OPEN_STAGES if s not in taken]
            value = self.rng.choice(free) if free else None
        if value is None or value in taken:
            return
        self._set(system, ids[system], name, value)
        self.last[entity, name] = value
        if name == "status":  # its stage is now the won/lost one (Pipedrive keeps its own)
            self.last.pop((entity, "stage"), None)

    def _set(self, system: str, deal_id: str, name: str, value: str) -> None:
        em: Any = self.world.sandbox.servers[system].emulator
        with em.lock:
            if system == "salesforce":
                em.store.apply(em.store.check_update(deal_id, self._salesforce(name, value)))
            elif system == "hubspot":
                pipeline = em.store.live[deal_id]["properties"]["pipeline"]
                em.store.update(deal_id, self._hubspot(pipeline, name, value))
            else:
                pipeline = str(em.store.deals[int(deal_id)]["pipeline_id"])
                em.store.update(int(deal_id), self._pipedrive(pipeline, name, value))

    def _salesforce(self, name: str, value: str) -> dict[str, Any]:
        if name == "amount":
            return {"Amount": Decimal(value)}
        if name == "close_date":
            return {"CloseDate": value}
        return {"StageName": self._native("salesforce", "default", value)}

    def _hubspot(self, pipeline: str, name: str, value: str) -> dict[str, Any]:
        if name == "amount":
            return {"amount": value}
        if name == "close_date":
            return {"closedate": f"{value}T00:00:00Z"}
        return {"dealstage": self._native("hubspot", pipeline, value)}

    def _pipedrive(self, pipeline: str, name: str, value: str) -> dict[str, Any]:
        if name == "amount":
            return {"value": Decimal(value)}
        if name == "close_date":
            return {"expected_close_date": value}
        if name == "status":
            return {"status": value}
        return {"stage_id": int(self._native("pipedrive", pipeline, value))}

    def _native(self, system: str, pipeline: str, stage: str) -> str:
        """A native stage of `stage` (won and lost are stages there too) in that pipeline."""
        natives = sorted(n for n, s in self.stage_maps[system][pipeline].items() if s == stage)
        return self.rng.choice(natives)


def _reconcile(world: World, *, dry_run: bool) -> Any:
    with open_runtime(str(world.config)) as rt:
        return run_reconcile(rt, dry_run=dry_run, yes=True).result.plan


def _settle(world: World) -> None:
    """Reconcile until a dry run finds nothing to do. A stage crmsync writes moves Salesforce's
    and HubSpot's stage-derived probability after the plan was made, which the next run
    carries on: two runs at most."""
    for _ in range(2):
        _reconcile(world, dry_run=False)
        if not _reconcile(world, dry_run=True).changes:
            return
    raise AssertionError("the CRMs did not converge in two reconciles")


def _held(world: World, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each copy's canonical values as the last pull stored them."""
    with open_runtime(str(world.config), connect=False) as rt:
        return {s: rt.store.get_deals(s, [ids[s]])[ids[s]] for s in SYSTEMS}


def _open_in_all_three(world: World) -> dict[str, dict[str, str]]:
    return {
        entity: ids
        for entity, ids in world.members().items()
        if len(ids) == len(SYSTEMS)
        and all(row["stage"] in OPEN_STAGES for row in _held(world, ids).values())
    }


def _round(world: World, people: People, entities: dict[str, dict[str, str]], n: int) -> None:
    picked = people.rng.sample(sorted(entities), 8)
    for entity in picked:
        people.edit(entity, entities[entity], _held(world, entities[entity]))
    time.sleep(TICK)
    with open_runtime(str(world.config)) as rt:
        planned = plan_run(rt.config, rt.store, rt.connectors, run_id=f"round-{n}")
        for entity in people.rng.sample(picked, 4):  # edited again before the apply
            people.edit(entity, entities[entity], _held(world, entities[entity]))
        time.sleep(TICK)
        refusing, refusal = people.rng.choice(SYSTEMS), people.rng.choice(REFUSALS)
        if refusal is not None:
            world.sandbox.servers[refusing].faults.set(Faults(**refusal))
        try:
            apply_plan(rt, planned.plan, run_id=f"round-{n}", contexts=planned.contexts)
        finally:
            world.sandbox.servers[refusing].faults.set(Faults())
    time.sleep(TICK)
    _settle(world)
    time.sleep(TICK)  # the next round's edits come after this round's writes


def _soak(world: World, seed: int, rounds: int) -> None:
    _settle(world)
    people = People(world, seed)
    entities = _open_in_all_three(world)
    for n in range(rounds):
        _round(world, people, entities, n)
    wrong = []
    for (entity, name), value in sorted(people.last.items()):
        held = {s: row[name] for s, row in _held(world, entities[entity]).items()}
        if set(held.values()) != {value}:
            wrong.append(f"{entity} {name}: set {value} last, the CRMs hold {held}")
    assert wrong == []


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_the_last_value_a_person_set_wins_while_applies_stop_part_way(world: World) -> None:
    _soak(world, seed=1, rounds=2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_last_value_a_person_set_wins_over_many_rounds(world: World, seed: int) -> None:
    _soak(world, seed, rounds=8)
