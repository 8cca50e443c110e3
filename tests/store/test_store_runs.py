from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sync.store import RunKind, RunStatus, Store, StoreError


class Clock:
    """Steps one minute per call; returns a non-UTC zone to prove the store normalises."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=2)))

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def test_run_round_trip_with_aware_utc_times(store_url: str) -> None:
    clock = Clock()
    with Store.open(store_url, clock=clock) as store:
        run_id = store.runs.start("nightly", RunKind.PULL, config_fingerprint="cfg-1")
        store.runs.finish(
            run_id,
            RunStatus.PARTIAL,
            counts={"deals": 10, "errors": 1},
            calls={"hubspot": {"GET /crm/v3/objects/deals": 3}},
            error="pipedrive: 2 records failed\n  Traceback (most recent call last)",
        )
        (run,) = store.runs.recent()
    assert run.id == run_id and run_id.startswith("20261126T110100Z-")
    assert (run.job, run.kind, run.status) == ("nightly", RunKind.PULL, RunStatus.PARTIAL)
    assert run.started_at == datetime(2026, 11, 26, 11, 1, tzinfo=UTC)
    assert run.started_at.tzinfo == UTC and run.finished_at is not None
    assert run.finished_at.tzinfo == UTC and run.finished_at > run.started_at
    assert run.config_fingerprint == "cfg-1"
    assert run.counts == {"deals": 10, "errors": 1}
    assert run.calls == {"hubspot": {"GET /crm/v3/objects/deals": 3}}
    assert run.error == "pipedrive: 2 records failed Traceback (most recent call last)"


class SameSecond:
    """Steps one millisecond per call: every run starts within one second."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def test_runs_started_in_one_second_are_listed_newest_first(store_url: str) -> None:
    with Store.open(store_url, clock=SameSecond()) as store:
        started = [store.runs.start("nightly", RunKind.PULL) for _ in range(12)]
        for run_id in started:
            store.runs.finish(run_id, RunStatus.OK)
        assert [r.id for r in store.runs.recent()] == started[::-1]
        last = store.runs.last_successful(RunKind.PULL)
    assert last is not None and last.id == started[-1]
    assert len(set(started)) == 12


def test_runs_are_listed_newest_first_and_filtered(store_url: str) -> None:
    with Store.open(store_url, clock=Clock()) as store:
        first = store.runs.start("nightly", "pull")
        second = store.runs.start("nightly", "reconcile-dry-run")
        third = store.runs.start("hourly", "pull")
        assert [r.id for r in store.runs.recent()] == [third, second, first]
        assert [r.id for r in store.runs.recent(limit=1)] == [third]
        assert [r.id for r in store.runs.recent(job="nightly")] == [second, first]
        assert [r.id for r in store.runs.recent(kind="pull")] == [third, first]
        assert store.runs.get(second) is not None and store.runs.get("nope") is None


def test_last_successful_run_ignores_failed_and_running(store_url: str) -> None:
    with Store.open(store_url, clock=Clock()) as store:
        ok = store.runs.start("nightly", "pull")
        store.runs.finish(ok, "ok")
        failed = store.runs.start("nightly", "pull")
        store.runs.finish(failed, "failed", error="boom")
        store.runs.start("nightly", "pull")
        found = store.runs.last_successful("pull")
        assert found is not None and found.id == ok
        assert store.runs.last_successful("apply") is None
        assert store.runs.last_successful("pull", job="other") is None


def test_unknown_kind_status_or_run_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.runs.start("nightly", "sync-everything")
    run_id = store.runs.start("nightly", "report")
    with pytest.raises(ValueError):
        store.runs.finish(run_id, "great")
    with pytest.raises(StoreError, match="unknown run 'missing'"):
        store.runs.finish("missing", "ok")
