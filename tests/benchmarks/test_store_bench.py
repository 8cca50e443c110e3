"""State-store throughput: save + stream 1M small deal payloads on SQLite.

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

from sync.store import DealRow, Store

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
