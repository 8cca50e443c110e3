"""Benchmark plumbing: the quick/full size switch and the results file.

Benchmarks are deselected by the default `-m 'not slow and not benchmark'`; run them with
`.venv/bin/python tests/benchmarks/run.py [--quick]` (or `pytest tests/benchmarks -m benchmark
-s --bench-mode quick`). Each result row is printed as one JSON line as it is measured; at the
end all rows go to bench-results.json at the repo root with a short table on the terminal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.bench_report import summary_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.json"
# (API cost, wall time, engine) sizes: deals per system.
SIZES = {
    "quick": {"api": [10_000], "wall": [10_000], "engine": [100_000]},
    "full": {"api": [10_000, 100_000], "wall": [100_000], "engine": [100_000, 1_000_000]},
}
_ROWS: list[dict[str, Any]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """No per-test time limit for a benchmark: the suite's 300 s guards tests, and the engine
    bench at 1M deals takes about that long (it was cut off mid-measurement)."""
    for item in items:
        if item.get_closest_marker("benchmark") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(0))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-mode",
        choices=sorted(SIZES),
        default=os.environ.get("CRMSYNC_BENCH_MODE", "quick"),
        help="benchmark sizes: quick (10k API / 100k engine) or full (100k API / 1M engine)",
    )


@pytest.fixture(scope="session")
def bench_sizes(request: pytest.FixtureRequest) -> dict[str, list[int]]:
    return SIZES[str(request.config.getoption("--bench-mode"))]


@pytest.fixture(scope="session")
def bench_mode(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--bench-mode"))


@pytest.fixture
def record() -> Callable[[dict[str, Any]], None]:
    """Print a result row as a JSON line now and keep it for bench-results.json."""

    def add(row: dict[str, Any]) -> None:
        print(json.dumps(row, default=str), flush=True)
        _ROWS.append(row)

    return add


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _ROWS:
        return
    mode = session.config.getoption("--bench-mode")
    RESULTS.write_text(json.dumps({"mode": mode, "results": _ROWS}, indent=1, default=str) + "\n")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        for line in summary_table(_ROWS):
            reporter.write_line(line)
        reporter.write_line(f"results written to {RESULTS}")
