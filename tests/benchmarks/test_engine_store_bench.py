"""Engine from the state store: load + match + diff + plan, against the pandas-merge baseline.

Extends test_engine_bench.py (same synthetic deals, same engine call, same pandas baseline) by
the step a real run starts with: reading every deal back from the SQLite store. Sizes come from
--bench-mode (quick 100k, full 100k and 1M per side). Timing is reported, never asserted; peak
memory over the loaded dataset is (2 GB target) as in the engine bench.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from mapping import deal_fingerprint, deal_to_json
from mapping.model import Deal, Ref
from sync.incremental import key_digests
from sync.match import MatchConfig, MatchResult, match
from sync.reconcile import load_deals
from sync.store import Store
from tests.benchmarks.test_engine_bench import (
    HS,
    SF,
    Dataset,
    _measure,
    generate,
    run_engine,
    run_pandas,
)
from tests.fixtures_store import pg_unavailable_reason, store_url_for

PAGE = 10_000  # deals per save_deals call, as a pull saves chunks
KEYS = ("name", "close_month")  # run_engine's match keys


def _rows(deals: list[Deal]) -> Iterator[tuple[str, str, datetime, bool, dict[str, Any]]]:
    for deal in deals:
        yield deal.id, deal_fingerprint(deal), deal.updated_at, False, deal_to_json(deal)


def _fill(store: Store, data: Dataset) -> None:
    for system, deals in data.deals.items():
        for start in range(0, len(deals), PAGE):
            store.save_deals(system, _rows(deals[start : start + PAGE]), cursor=f"c{start}")


def _from_store(store: Store, data: Dataset) -> Callable[[Dataset], Any]:
    """The engine as a run calls it: deals read back from the store, links and bases as given."""

    def run(_: Dataset) -> Any:
        loaded = load_deals(store, [SF, HS])
        return run_engine(Dataset(loaded, data.links, data.bases, data.planted, data.changed))

    return run


@pytest.mark.benchmark
@pytest.mark.timeout(0)
def test_engine_from_store_scales_and_beats_pandas(
    bench_sizes: dict[str, list[int]], record: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    rows = []
    for n in bench_sizes["engine"]:
        data = generate(n)
        with Store.open(f"sqlite:///{tmp_path / f'engine-{n}.db'}") as store:
            started = time.perf_counter()
            _fill(store, data)
            fill_s = time.perf_counter() - started
            gc.collect()
            gc.freeze()  # the generated input is not garbage: keep it out of every collection
            dataset_mb = psutil.Process(os.getpid()).memory_info().rss / 2**20
            started = time.perf_counter()
            loaded = load_deals(store, [SF, HS])
            load_s = time.perf_counter() - started
            del loaded
            total_s, peak_mb, summary = _measure(_from_store(store, data), data)
        pandas_s, pandas_mb, _ = _measure(run_pandas, data)
        row = {
            "bench": "engine",
            "deals_per_side": n,
            "store_fill_s": round(fill_s, 2),
            "load_s": round(load_s, 2),
            "engine_s": round(total_s - load_s, 2),
            "total_s": round(total_s, 2),
            "peak_extra_mb": round(peak_mb),
            "dataset_rss_mb": round(dataset_mb),
            "pandas_s": round(pandas_s, 2),
            "pandas_total_s": round(pandas_s + load_s, 2),  # pandas needs the rows loaded too
            "pandas_peak_extra_mb": round(pandas_mb),
            "speedup_vs_pandas": round((pandas_s + load_s) / total_s, 2),
            "matched": summary["matched"],
            "changes": summary["changes"] + summary["conflicts"],
            "planted": data.planted,
        }
        record(row)
        rows.append(row)
        assert summary["matched"] == n
        assert row["changes"] == data.planted
        del data
        gc.unfreeze()
        gc.collect()
    if len(rows) > 1:
        small, big = rows[0], rows[-1]
        growth = (big["total_s"] / small["total_s"]) / (
            big["deals_per_side"] / small["deals_per_side"]
        )
        record(
            {
                "bench": "engine_growth",
                "from": small["deals_per_side"],
                "to": big["deals_per_side"],
                "time_growth_vs_linear": round(growth, 2),
            }
        )
    assert all(r["peak_extra_mb"] <= 2048 for r in rows)


def _keys_step(store: Store, deals: dict[Ref, Deal], matched: MatchResult) -> tuple[float, float]:
    """What a full remembering analysis adds after the plan: (digest s, save s)."""
    started = time.perf_counter()
    digests = key_digests(deals, KEYS, matched)
    digest_s = time.perf_counter() - started
    started = time.perf_counter()
    store.save_match_keys(digests, replace=True)
    return digest_s, time.perf_counter() - started


@pytest.mark.benchmark
@pytest.mark.timeout(0)
def test_match_key_digests_share_of_a_full_analysis(
    bench_sizes: dict[str, list[int]], record: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    """The match-key digests a full analysis stores (sync/store_keys.py), against the analysis
    itself (load + match + diff + plan): once into an empty table (the first run) and once
    over the same digests (every later full run), on SQLite and, when it answers, PostgreSQL."""
    for n in bench_sizes["engine"]:
        data = generate(n)
        with Store.open(f"sqlite:///{tmp_path / f'keys-{n}.db'}") as store:
            _fill(store, data)
            gc.collect()
            gc.freeze()
            started = time.perf_counter()
            loaded = load_deals(store, [SF, HS])
            summary = run_engine(dataclasses.replace(data, deals=loaded))
            analysis_s = time.perf_counter() - started
            assert summary["matched"] == n
            deals = {d.ref: d for group in loaded.values() for d in group}
            matched = match(loaded, data.links, MatchConfig(keys=KEYS))  # as the analysis did
            steps = {"sqlite": [_keys_step(store, deals, matched) for _ in range(2)]}
        if pg_unavailable_reason() is None:
            with store_url_for("postgresql", tmp_path) as url, Store.open(url) as store:
                steps["postgresql"] = [_keys_step(store, deals, matched) for _ in range(2)]
        for dialect, ((_, first_s), (digest_s, again_s)) in steps.items():
            step_s = digest_s + again_s
            record(
                {
                    "bench": "match_keys",
                    "dialect": dialect,
                    "deals_per_side": n,
                    "analysis_s": round(analysis_s, 2),
                    "digests_s": round(digest_s, 2),
                    "save_first_s": round(first_s, 2),
                    "save_again_s": round(again_s, 2),
                    "step_s": round(step_s, 2),
                    "share_of_run": round(step_s / (analysis_s + step_s), 3),
                }
            )
        del data, loaded, deals, matched
        gc.unfreeze()
        gc.collect()
