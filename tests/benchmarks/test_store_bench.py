"""State-store throughput: save + stream 1M small deal payloads on SQLite; the audit entries
the health report reads out of 500k (SQLite and PostgreSQL).

Run: ``pytest tests/benchmarks/test_store_bench.py -m benchmark -s``. Prints numbers; asserts
only correctness (the count), never time.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.store import AuditEntry, DealRow, Store

# tests/ is not an installed package: make `tests.fixtures_store` importable from here.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fixtures_store import store_url_for

N = 1_000_000
PAGE = 10_000  # rows per save_deals call (one transaction, cursor saved with it)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _page(start: int) -> Iterator[DealRow]:
    for i in range(start, min(start + PAGE, N)):
        deal_id = f"{i:08d}"
        payload = {
            "system": "hubspot",
            "id": deal_id,
            "name": f"Deal {i}",
            "stage": "proposal",
            "status": "open",
            "amount": f"{i % 50000}.00",
            "currency": "EUR",
            "owner_email": f"owner{i % 40}@example.com",
            "updated_at": "2026-01-01T00:00:00Z",
        }
        yield deal_id, f"fp{i}", T0 + timedelta(seconds=i), False, payload


@pytest.mark.benchmark
def test_save_and_stream_one_million_deals_on_sqlite(tmp_path: Path) -> None:
    rss_start = _rss_mb()
    with Store.open(f"sqlite:///{tmp_path / 'bench.db'}") as store:
        started = time.perf_counter()
        for start in range(0, N, PAGE):
            store.save_deals("hubspot", _page(start), cursor=f"after-{start + PAGE}")
        saved_s = time.perf_counter() - started
        rss_after_save = _rss_mb()

        started = time.perf_counter()
        count = sum(1 for _ in store.iter_deals("hubspot"))
        iter_s = time.perf_counter() - started
        rss_after_iter = _rss_mb()

        started = time.perf_counter()
        store.save_deals("hubspot", _page(0), cursor="again")
        upsert_s = time.perf_counter() - started
    size_mb = (tmp_path / "bench.db").stat().st_size / 2**20
    print(
        f"\nstore bench (SQLite, {N:,} deals, {PAGE:,}/call): "
        f"save {saved_s:.1f}s ({N / saved_s:,.0f}/s), iter {iter_s:.1f}s ({N / iter_s:,.0f}/s), "
        f"re-upsert {PAGE:,} existing {upsert_s:.2f}s; db {size_mb:.0f} MB; peak RSS "
        f"{rss_start:.0f} MB at start, {rss_after_save:.0f} MB after save, "
        f"{rss_after_iter:.0f} MB after iter"
    )
    assert count == N


PG_N = 200_000


@pytest.mark.benchmark
@pytest.mark.postgres
def test_save_and_stream_deals_on_postgresql(tmp_path: Path) -> None:
    rss_start = _rss_mb()
    with store_url_for("postgresql", tmp_path) as url, Store.open(url) as store:
        started = time.perf_counter()
        for start in range(0, PG_N, PAGE):
            store.save_deals("hubspot", _page(start), cursor=f"after-{start + PAGE}")
        saved_s = time.perf_counter() - started
        started = time.perf_counter()
        count = sum(1 for _ in store.iter_deals("hubspot"))
        iter_s = time.perf_counter() - started
    print(
        f"\nstore bench (PostgreSQL, {PG_N:,} deals, {PAGE:,}/call): "
        f"save {saved_s:.1f}s ({PG_N / saved_s:,.0f}/s), iter {iter_s:.1f}s "
        f"({PG_N / iter_s:,.0f}/s); peak RSS {rss_start:.0f} -> {_rss_mb():.0f} MB"
    )
    assert count == PG_N


AUDIT_DEALS = 100_000
AUDIT_DAYS = 100
AUDIT_PER_DAY = 5_000  # 500k audit rows in all


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _audit_history(store: Store, clock: _Clock) -> None:
    """A first pull of every deal, then each day an apply writing 5,000 of them and a pull
    re-saving what it wrote; deals never written keep the first pull's snapshot, as deals
    nobody edits do."""

    def pull(day: int, ids: list[int]) -> None:
        clock.now = T0 + timedelta(days=day)
        run = store.runs.start("pull", "pull")
        rows = [(f"{i:07d}", f"fp{day}", T0, False, {"id": f"{i:07d}", "v": day}) for i in ids]
        store.save_deals("hubspot", rows, run_id=run)
        store.runs.finish(run, "ok")

    pull(0, list(range(AUDIT_DEALS)))
    step = AUDIT_DEALS // AUDIT_PER_DAY
    for day in range(1, AUDIT_DAYS + 1):
        at = T0 + timedelta(days=day, hours=1)
        ids = list(range(day % step, AUDIT_DEALS, step))
        store.audit.append(
            AuditEntry("apply", "hubspot", f"{i:07d}", "amount", "1", str(day), "x", at)
            for i in ids
        )
        if day < AUDIT_DAYS:  # the last day's writes are not pulled yet
            pull(day + 1, ids)


@pytest.mark.benchmark
@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_report_reads_the_writes_since_each_snapshot_out_of_500k_audit_rows(
    tmp_path: Path, dialect: str
) -> None:
    clock = _Clock()
    with store_url_for(dialect, tmp_path) as url, Store.open(url, clock=clock) as store:
        started = time.perf_counter()
        _audit_history(store, clock)
        built_s = time.perf_counter() - started
        timings = {}
        for name in ("after_snapshots", "unread_creates"):
            best, found = float("inf"), 0
            for _ in range(3):
                started = time.perf_counter()
                found = len(getattr(store.audit, name)(["hubspot"]))
                best = min(best, time.perf_counter() - started)
            timings[name] = (best, found)
    after_s, newer = timings["after_snapshots"]
    print(
        f"\naudit bench ({dialect}, {AUDIT_DEALS:,} deals, {AUDIT_DAYS * AUDIT_PER_DAY:,} audit "
        f"rows, built in {built_s:.0f}s): writes since the snapshots {after_s * 1000:.0f} ms, "
        f"unread creates {timings['unread_creates'][0] * 1000:.0f} ms"
    )
    assert newer == AUDIT_PER_DAY
