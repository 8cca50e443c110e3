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
        run_id = store.start_run("nightly", RunKind.PULL, config_fingerprint="cfg-1")
        store.finish_run(
            run_id,
            RunStatus.PARTIAL,
            counts={"deals": 10, "errors": 1},
            calls={"hubspot": {"GET /crm/v3/objects/deals": 3}},
            error="pipedrive: 2 records failed\n  Traceback (most recent call last)",
        )
        (run,) = store.runs()
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
        started = [store.start_run("nightly", RunKind.PULL) for _ in range(12)]
        for run_id in started:
            store.finish_run(run_id, RunStatus.OK)
        assert [r.id for r in store.runs()] == started[::-1]
        last = store.last_successful_run(RunKind.PULL)
    assert last is not None and last.id == started[-1]
    assert len(set(started)) == 12


def test_runs_are_listed_newest_first_and_filtered(store_url: str) -> None:
    with Store.open(store_url, clock=Clock()) as store:
        first = store.start_run("nightly", "pull")
        second = store.start_run("nightly", "reconcile-dry-run")
        third = store.start_run("hourly", "pull")
        assert [r.id for r in store.runs()] == [third, second, first]
        assert [r.id for r in store.runs(limit=1)] == [third]
        assert [r.id for r in store.runs(job="nightly")] == [second, first]
        assert [r.id for r in store.runs(kind="pull")] == [third, first]
        assert store.run(second) is not None and store.run("nope") is None


def test_last_successful_run_ignores_failed_and_running(store_url: str) -> None:
    with Store.open(store_url, clock=Clock()) as store:
        ok = store.start_run("nightly", "pull")
        store.finish_run(ok, "ok")
        failed = store.start_run("nightly", "pull")
        store.finish_run(failed, "failed", error="boom")
        store.start_run("nightly", "pull")
        found = store.last_successful_run("pull")
        assert found is not None and found.id == ok
        assert store.last_successful_run("apply") is None
        assert store.last_successful_run("pull", job="other") is None


def test_unknown_kind_status_or_run_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.start_run("nightly", "sync-everything")
    run_id = store.start_run("nightly", "report")
    with pytest.raises(ValueError):
        store.finish_run(run_id, "great")
    with pytest.raises(StoreError, match="unknown run 'missing'"):
        store.finish_run("missing", "ok")
