"""Run the benchmark suite: `.venv/bin/python tests/benchmarks/run.py [--quick|--full]`.

Quick: API cost and wall time at 10k deals per system, engine at 100k (~5 min). Full: API cost
at 10k and 100k, wall time at 100k, engine at 100k and 1M (~30 min). Prints one JSON line per
measurement and a table; writes bench-results.json at the repo root. Extra arguments go to
pytest (e.g. `-k engine`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUITE = (
    "test_api_cost_bench.py",
    "test_engine_store_bench.py",
    "test_rate_limit_share_bench.py",
    "test_sandbox_bench.py",
)


def main(argv: list[str]) -> int:
    mode = "full" if "--full" in argv else "quick"
    rest = [a for a in argv if a not in ("--quick", "--full")]
    os.chdir(HERE.parents[1])
    return int(
        pytest.main(
            [
                *(str(HERE / name) for name in SUITE),
                "-m",
                "benchmark",
                "-s",
                "-p",
                "no:cacheprovider",
                f"--bench-mode={mode}",
                *rest,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
