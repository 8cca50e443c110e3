"""A `pull` (or `report --refresh`) takes no reconcile lock: it may save deals while a reconcile
on another machine analyses the same PostgreSQL store. The next incremental analysis must
still see every change that pull saved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sync.plan_json import plan_to_json
from sync.pull import PullReport, pull
from sync.reconcile import ReconcileResult, analyze
from sync.runtime import open_runtime
from sync.store import Store
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.test_incremental_reconcile import _settled_hubspot_deal

pytestmark = pytest.mark.postgres


def _comparable(result: ReconcileResult) -> dict[str, Any]:
    document = plan_to_json(result.plan)
    for key in ("run_id", "created_at", "checksum"):
        document.pop(key, None)
    return document


def _full_and_incremental(world: World, run_id: str) -> tuple[ReconcileResult, ReconcileResult]:
    with open_runtime(str(world.config), connect=False) as rt:
        full = analyze(rt.config, rt.store, run_id=run_id, remember=False)
        incremental = analyze(rt.config, rt.store, run_id=run_id)
    return full, incremental


@contextmanager
def _pull_held_before_saving(
    world: World, monkeypatch: pytest.MonkeyPatch, deal_id: str
) -> Iterator[None]:
    """A pull in a thread, stopped just before it saves the chunk holding `deal_id` for the
    block; then it goes on, and must end without a failure (an assert in a thread fails no
    test: what it raised is raised here)."""
    reached, go = threading.Event(), threading.Event()
    ended: list[dict[str, PullReport] | BaseException] = []
    save = Store.save_deals

    def held_save(store: Store, instance: str, payloads: Any, *args: Any, **kw: Any) -> int:
        rows = list(payloads)
        if threading.current_thread().name == "pull-by-hand" and deal_id in {r[0] for r in rows}:
            reached.set()
            assert go.wait(60), "the pull was never let go on"
        return save(store, instance, rows, *args, **kw)

    monkeypatch.setattr(Store, "save_deals", held_save)

    def by_hand() -> None:
        try:
            with open_runtime(str(world.config), systems=("hubspot",)) as rt:
                ended.append(pull(rt.config, rt.store, rt.connectors, run_id="by-hand"))
        except BaseException as exc:
            ended.append(exc)

    thread = threading.Thread(target=by_hand, name="pull-by-hand")
    thread.start()
    try:
        assert reached.wait(60), "the pull never reached the changed deal"
        yield
    finally:
        go.set()
        thread.join(60)
    assert not thread.is_alive(), "the pull did not end"
    [reports] = ended
    if isinstance(reports, BaseException):
        raise reports
    assert not [r.failure for r in reports.values() if r.failure], reports


def test_a_change_a_pull_saves_while_a_reconcile_analyses_is_seen_by_the_next_run(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_world.reconcile("r1")
    deal_id, _ = _settled_hubspot_deal(pg_world)
    bump_amounts(pg_world, "hubspot", [deal_id])  # after the reconcile's own pull read HubSpot

    with (
        _pull_held_before_saving(pg_world, monkeypatch, deal_id),
        open_runtime(str(pg_world.config), connect=False) as rt,  # the reconcile's analysis
    ):
        analyze(rt.config, rt.store, run_id="r2")

    full, nightly = _full_and_incremental(pg_world, "r3")
    assert nightly.scope.incremental
    assert _comparable(nightly) == _comparable(full)
    assert [c for c in full.plan.changes if c.field == "amount"]


def test_a_full_pull_during_a_reconcile_analysis_makes_the_next_analysis_full(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pull --full` saves without flagging and forgets the incremental state instead: a
    reconcile that was analysing meanwhile must not record that state again."""
    pg_world.reconcile("r1")
    deal_id, _ = _settled_hubspot_deal(pg_world)
    bump_amounts(pg_world, "hubspot", [deal_id])
    pending = Store.pending

    def pending_then_a_full_pull(store: Store) -> dict[tuple[str, str], Any]:
        flagged = pending(store)
        with open_runtime(str(pg_world.config), systems=("hubspot",)) as rt:  # by hand, meanwhile
            reports = pull(rt.config, rt.store, rt.connectors, full=True, run_id="by-hand")
            assert not any(r.failure for r in reports.values())
        return flagged

    with open_runtime(str(pg_world.config), connect=False) as rt:  # the reconcile's analysis
        monkeypatch.setattr(Store, "pending", pending_then_a_full_pull)
        assert analyze(rt.config, rt.store, run_id="r2").scope.incremental
        monkeypatch.setattr(Store, "pending", pending)

    full, nightly = _full_and_incremental(pg_world, "r3")
    assert _comparable(nightly) == _comparable(full)
    assert not nightly.scope.incremental
