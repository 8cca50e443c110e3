"""`crmsync report` right after crmsync wrote to the CRMs (an apply, a reconcile that applies, a
rollback) analyses the deals as crmsync last knows them: the stored snapshots with its own
writes since laid over them. It makes no CRM call, and shows the mismatches (and exits as) a
report that pulls first (`--refresh`) does: none of crmsync's own writes, reversed, with "changed
in <target> since last sync", and no inflated `mismatch_rate`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures_store import store_url_for
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import Editors
from tests.sandbox_env import run_crmsync


# PostgreSQL's run of these end-to-end tests is in `pytest -m slow` (default suite time); its
# locks and store are tested in the default suite by tests/store.
@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=(pytest.mark.postgres, pytest.mark.slow))]
)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """Fresh for each test; the report's thresholds are mismatch_rate's only, so its exit code
    says whether the mismatches breach it (the generated deals are all stale)."""
    with store_url_for(request.param, tmp_path) as url:
        for world in build_world(tmp_path, url, deals=60, seed=5):
            _configure(world)
            yield world


def _configure(world: World, **push: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document.setdefault("report", {})["thresholds"] = {
        "mismatch_rate": "0.05",
        "stale_share": None,
        "min_completeness": None,
    }
    document.setdefault("push", {}).update(push)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _crmsync(world: World, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, Any]:
    done = run_crmsync(*args, "--config", str(world.config), "--format", "json")
    assert done.returncode in ok, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def _calls(world: World) -> int:
    return sum(int(s["total"]) for s in world.stats().values())


def _mismatches(report: dict[str, Any]) -> dict[str, Any]:
    cross = report["cross_system"]
    rate = next(t for t in report["thresholds"] if t["name"] == "mismatch_rate")
    return {
        "mismatched_entities": cross["mismatched_entities"],
        "mismatches_by_field": cross["mismatches_by_field"],
        "mismatches": cross["mismatches"],
        "mismatch_rate": rate["value"],
        "breached": [t["name"] for t in report["breached"]],
    }


def _copies(report: dict[str, Any]) -> dict[str, Any]:
    cross = report["cross_system"]
    return {k: cross[k] for k in ("entities", "pairs", "unmatched_by_system")}


def _report_then_refreshed(
    world: World, what: Callable[[dict[str, Any]], dict[str, Any]] = _mismatches
) -> tuple[tuple[int, Any], tuple[int, Any]]:
    """(exit code, `what` of the JSON) of a report of the store, then of one that pulls first;
    the first makes no CRM call."""
    calls = _calls(world)
    code, stored = _crmsync(world, "report", ok=(0, 3))
    assert _calls(world) == calls
    refreshed_code, refreshed = _crmsync(world, "report", "--refresh", ok=(0, 3))
    return (code, what(stored)), (refreshed_code, what(refreshed))


def test_report_after_apply_of_a_saved_plan_shows_what_a_refreshed_report_shows(
    world: World, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    _, planned = _crmsync(world, "reconcile", "--dry-run", "--plan-out", str(plan), ok=(0, 1, 3))
    assert planned["changes"], "nothing to apply: the test would prove nothing"
    _crmsync(world, "apply", str(plan), "--yes", ok=(0, 1))

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert not any("changed in" in m["reason"] for m in stored[1]["mismatches"])


def test_report_after_a_reconcile_that_applies_shows_what_a_refreshed_report_shows(
    world: World,
) -> None:
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    assert applied["changes"], "nothing applied: the test would prove nothing"

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert stored[0] == 0 and stored[1]["breached"] == []


def test_report_after_a_rollback_shows_what_a_refreshed_report_shows(world: World) -> None:
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    assert applied["changes"], "nothing applied: the test would prove nothing"
    _crmsync(world, "rollback", applied["run_id"], "--apply", ok=(0, 1))

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert stored[1]["mismatches"], "the rolled-back differences are differences again"


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_report_after_a_rollback_of_writes_already_pulled_shows_what_a_refreshed_report_shows(
    world: World,
) -> None:
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    assert applied["changes"], "nothing applied: the test would prove nothing"
    _pull(world)  # the snapshots hold the run's writes
    _crmsync(world, "rollback", applied["run_id"], "--apply", ok=(0, 1))

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert stored[1]["mismatches"], "the rolled-back differences are differences again"


def test_report_after_creating_copies_counts_them_as_the_copies_a_refreshed_report_finds(
    world: World,
) -> None:
    _configure(world, create_missing=True)
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    assert applied["creates"], "nothing created: the test would prove nothing"

    (_, stored), (_, refreshed) = _report_then_refreshed(world, _copies)

    assert stored == refreshed
    # an owner the target CRM did not know is its own choice: only a pull can tell it


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_report_after_a_rollback_deleted_the_copies_shows_what_a_refreshed_report_shows(
    world: World,
) -> None:
    _configure(world, create_missing=True)
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    assert applied["creates"], "nothing created: the test would prove nothing"
    _crmsync(world, "rollback", applied["run_id"], "--apply", ok=(0, 1))

    stored, refreshed = _report_then_refreshed(
        world, lambda report: _mismatches(report) | _copies(report)
    )

    assert stored == refreshed


def _pull(world: World) -> None:
    pulled = run_crmsync("pull", "--config", str(world.config), "--format", "table")
    assert pulled.returncode in (0, 1), pulled.stderr


def _undo_an_amount_written(world: World, applied: dict[str, Any]) -> dict[str, Any]:
    """A user puts back the amount one of `applied`'s changes wrote over (the value the snapshot
    from before the write holds), in the CRM's own screens; returns that change."""
    change = next(
        (c for c in applied["changes"] if c["field"] == "amount" and c["from"] is not None), None
    )
    assert change is not None, "no amount written: the test would prove nothing"
    Editors(world, seed=1).set_value(
        change["system"], change["id"], "amount", Decimal(change["from"])
    )
    return dict(change)


def _amount_differs_at(report: dict[str, Any], change: dict[str, Any]) -> bool:
    """Whether the report's mismatches take the amount of `change`'s deal for a difference."""
    deal = (change["system"], change["id"])
    return any(
        m["field"] == "amount" and ((m["system"], m["id"]) == deal or deal[0] in m["reason"])
        for m in report["mismatches"]
    )


@pytest.mark.slow  # ~8 s each: a guard of a refuted defect, not of a fix
def test_report_after_a_user_undid_a_write_and_a_pull_shows_the_value_the_crm_holds_again(
    world: World,
) -> None:
    """The pull re-saves the record (its modification time moved, though the amount is the
    snapshot's again), so the report no longer lays crmsync's write over it."""
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    change = _undo_an_amount_written(world, applied)
    _pull(world)

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert _amount_differs_at(stored[1], change), "the undone amount differs again"


@pytest.mark.slow  # ~8 s each: a guard of a refuted defect, not of a fix
def test_report_after_rolling_back_a_write_a_user_undid_already_shows_what_a_refreshed_report_shows(
    world: World,
) -> None:
    """The rollback finds the amount it would restore held already and writes nothing there;
    the report lays over the snapshot neither that nor the write it rolled back."""
    _, applied = _crmsync(world, "reconcile", "--yes", ok=(0, 1, 3))
    change = _undo_an_amount_written(world, applied)
    _pull(world)
    _crmsync(world, "rollback", applied["run_id"], "--apply", ok=(0, 1))

    stored, refreshed = _report_then_refreshed(world)

    assert stored == refreshed
    assert _amount_differs_at(stored[1], change), "the undone amount still differs"
