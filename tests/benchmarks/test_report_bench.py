"""Health report over many deals: time and peak memory of build_health + the renderers.

Run: REPORT_BENCH_SIZES=100000,1000000 \
     .venv/bin/pytest tests/benchmarks/test_report_bench.py -m benchmark -s
Deals are split over two instances and all matched (the consolidated view merges them), half
of them with stage history. Prints one JSON line per size; asserts nothing about time, only
that the report counted every deal.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from mapping.funnel import DEFAULT_FUNNEL
from mapping.model import StageChange
from sync.health import build_health
from sync.health_model import HealthInputs
from sync.report_render import to_html, to_json
from tests.benchmarks.test_engine_bench import generate

pytestmark = pytest.mark.benchmark
NOW = datetime(2024, 9, 1, tzinfo=UTC)


def _with_history(deals: list) -> list:  # type: ignore[type-arg]
    out = []
    for i, deal in enumerate(deals):
        if i % 2 == 0 and deal.stage:
            entered = deal.created_at + timedelta(days=3)
            history = (StageChange("lead", "lead", deal.created_at),
                       StageChange(deal.stage, deal.stage, entered))  # fmt: skip
            deal = dataclasses.replace(deal, stage_history=history, stage_entered_at=entered)
        out.append(deal)
    return out


def _sizes() -> list[int]:
    return [int(n) for n in os.environ.get("REPORT_BENCH_SIZES", "100000").split(",")]


@pytest.mark.parametrize("size", _sizes())
def test_report_over_many_deals(size: int) -> None:
    data = generate(size // 2)
    deals = {name: _with_history(group) for name, group in data.deals.items()}
    entities: dict[str, dict] = {}  # type: ignore[type-arg]
    for ref, entity in data.links.items():
        entities.setdefault(entity, {})[ref.system] = ref
    inputs = HealthInputs(
        deals=deals,
        funnels={"default": DEFAULT_FUNNEL},
        now=NOW,
        entities=list(entities.values()),
        consolidation_order=list(deals),
    )
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    started = time.perf_counter()
    report = build_health(inputs)
    built = time.perf_counter() - started
    started = time.perf_counter()
    document = json.dumps(to_json(report))
    as_json = time.perf_counter() - started
    started = time.perf_counter()
    page = to_html(report)
    as_html = time.perf_counter() - started
    peak = process.memory_info().rss
    assert {name: figures.deals for name, figures in report.systems.items()} == {
        name: len(group) for name, group in deals.items()
    }
    merged = report.consolidated
    assert merged.deals + merged.copies_merged == sum(len(g) for g in deals.values()), merged
    assert merged.copies_merged == sum(len(refs) - 1 for refs in entities.values())
    print(json.dumps({
        "benchmark": "report", "deals": sum(len(g) for g in deals.values()),
        "build_s": round(built, 2), "json_s": round(as_json, 2), "html_s": round(as_html, 2),
        "rss_mb": round(peak / 2**20), "rss_added_mb": round((peak - before) / 2**20),
        "json_kb": len(document) // 1024, "html_kb": len(page) // 1024,
    }))  # fmt: skip
