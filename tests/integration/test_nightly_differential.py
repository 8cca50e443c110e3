"""Night after night of people editing the three CRMs, the nightly (incremental) reconcile plans
exactly what a full reconcile plans over the same CRMs and the same store.

Each night: seeded random edits straight in the emulators (amounts, stages incl. won/lost,
close dates, owners, currencies, names, new deals, copies of deals, deletions, a deal moved to
another pipeline, one entity edited in two CRMs); then a full dry run over a copy of the store
(a full pull plans from everything, so it needs no incremental state and leaves the original
store as it was); then the nightly reconcile on the store itself, which applies its plan, so
the next night builds on it. Both runs read the same CRM state: nothing writes in between.

Edits are stamped by the emulators' wall clocks, as in the other incremental tests: every edit
comes after the last pull's cursor, and the 10-minute overlap re-reads the last writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.reconcile_run import ReconcileOutcome, run_reconcile
from sync.runtime import open_runtime
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import Editors

COMPARED = (
    "changes",
    "conflicts",
    "creates",
    "deleted",
    "unmatched",
    "ambiguous",
    "duplicates",
    "errors",
)
# Summary keys that differ by design: README "Incremental runs": `mismatches_by_field` counts
# only the entities an incremental run looked at (differences under `never` are counted in full
# only by a `--full` run); `api_calls` is what each run's reads cost, not what it plans.
ONLY_FULL = ("mismatches_by_field", "api_calls")
# A create's account keys that only a dry run adds (README "What the dry run finds of the
# accounts"): what its lookup found of the name, not what the plan does.
DRY_RUN_ONLY = ("found", "not_looked_up")


def _world(tmp: Path, deals: int, seed: int) -> Iterator[World]:
    store = tmp / "crmsync.db"
    for world in build_world(tmp, f"sqlite:///{store}", deals=deals, seed=seed):
        text = world.config.read_text()
        # creates and propagated deletes are planned too, so they are compared too
        text = text.replace("  create_missing: false", "  create_missing: true")
        text = text.replace("push:\n", "push:\n  propagate_deletes: true\n", 1)
        assert "create_missing: true" in text and "propagate_deletes: true" in text
        world.config.write_text(text)
        yield world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, deals=60, seed=3)


def _comparable(outcome: ReconcileOutcome) -> dict[str, Any]:
    plan = outcome.plan_json
    summary = {k: v for k, v in plan["summary"].items() if k not in ONLY_FULL}
    compared = {key: plan[key] for key in COMPARED}
    compared["creates"] = [_as_planned(c) for c in plan["creates"]]
    return {"summary": summary, **compared}


def _as_planned(create: dict[str, Any]) -> dict[str, Any]:
    filed = {
        key: {k: v for k, v in value.items() if k not in DRY_RUN_ONLY}
        for key in ("account", "organization")
        if isinstance(value := create.get(key), dict)
    }
    return {**create, **filed}


def _full_dry_run_on_a_copy(world: World, night: int) -> ReconcileOutcome:
    """`reconcile --full --dry-run` over a copy of the store as it is now."""
    here = world.config.parent
    copy = here / f"night-{night}-full.db"
    with sqlite3.connect(here / "crmsync.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)
    config = here / f"night-{night}-full.yaml"
    text = world.config.read_text().replace(str(here / "crmsync.db"), str(copy), 1)
    config.write_text(text)
    with open_runtime(str(config)) as rt:
        return run_reconcile(rt, job="full", dry_run=True, full=True)


def _nightly(world: World) -> ReconcileOutcome:
    with open_runtime(str(world.config)) as rt:
        return run_reconcile(rt, dry_run=False, yes=True)


def _differences(full: dict[str, Any], nightly: dict[str, Any]) -> list[str]:
    """What one plan says and the other does not, per compared key."""
    out = []
    for key in COMPARED:
        if full[key] != nightly[key]:
            only_full = [x for x in full[key] if x not in nightly[key]]
            only_nightly = [x for x in nightly[key] if x not in full[key]]
            out.append(f"{key}: full only {only_full}; nightly only {only_nightly}")
    a, b = full["summary"], nightly["summary"]
    out += [
        f"summary {k}: full {a.get(k)}, nightly {b.get(k)}"
        for k in sorted({*a, *b})
        if a.get(k) != b.get(k)
    ]
    return out


def _nights(world: World, seed: int, nights: int, edits: int) -> None:
    first = _nightly(world)  # the first run reads and analyses everything, and applies
    assert not first.result.scope.incremental
    editors = Editors(world, seed)
    for night in range(1, nights + 1):
        editors.done.clear()
        editors.night(edits)
        full = _full_dry_run_on_a_copy(world, night)
        nightly = _nightly(world)
        assert nightly.result.scope.incremental, nightly.result.scope.reason
        differences = _differences(_comparable(full), _comparable(nightly))
        assert differences == [], f"night {night} after edits {editors.done}: {differences}"


def test_nightly_runs_plan_what_full_runs_plan_over_the_same_edits(world: World) -> None:
    _nights(world, seed=2, nights=3, edits=12)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_nightly_runs_plan_what_full_runs_plan_over_many_nights(tmp_path: Path, seed: int) -> None:
    for world in _world(tmp_path, deals=150, seed=seed):
        _nights(world, seed, nights=8, edits=25)
