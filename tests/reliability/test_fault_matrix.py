"""Every sandbox fault x every phase x seeds, on PostgreSQL: the final CRM state equals a
fault-free life's, nothing is lost or duplicated, and each apply report lists every record it
could not write. A representative subset runs by default; the full matrix is `-m slow`.

Print the matrix as a table: `.venv/bin/python -m tests.reliability.test_fault_matrix`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import PUSH
from tests.reliability.pipeline import FAULTS, PHASES, Life, comparable, duplicates, live
from tests.sandbox_env import make_env, stable

SEEDS = (1, 2, 3)
DEFAULT_CELLS = (
    ("5xx", "apply"),
    ("record_failures_207", "apply"),
    ("expired_session", "pull_incremental"),
    ("daily_limit_403", "rollback"),
    ("429_burst", "pull_full"),
    ("dropped_connection", "pull_full"),
    ("latency_spikes", "rollback"),
)


def _faulty_life(
    folder: Path, dataset: dict[str, Any], store: str, fault: str, phase: str, seed: int
) -> Life:
    env = make_env(folder, dataset, store, push=PUSH)
    try:
        return live(env, fault=fault, phase=phase, seed=seed)
    finally:
        env.sandbox.stop()


def _check(life: Life, reference: tuple[Life, dict[str, Any]], dataset: dict[str, Any]) -> None:
    _clean, expected = reference
    assert duplicates(life.final) == {s: [] for s in life.final}, "a deal was created twice"
    got = comparable(life.final, stable(dataset))
    assert {s: len(v) for s, v in got.items()} == {s: len(v) for s, v in expected.items()}
    assert got == expected


def _cell(
    fault: str,
    phase: str,
    seed: int,
    tmp_path: Path,
    new_store_url: Callable[[str], str],
    dataset: dict[str, Any],
    reference: tuple[Life, dict[str, Any]],
) -> None:
    life = _faulty_life(tmp_path, dataset, new_store_url("postgresql"), fault, phase, seed)
    _check(life, reference, dataset)


@pytest.mark.parametrize(("fault", "phase"), DEFAULT_CELLS)
def test_a_fault_in_one_phase_converges_to_the_fault_free_state(
    fault: str, phase: str, tmp_path: Path, new_store_url: Any, dataset: Any, reference: Any
) -> None:
    _cell(fault, phase, 1, tmp_path, new_store_url, dataset, reference)


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "phase", "seed"), list(itertools.product(FAULTS, PHASES, SEEDS)))
def test_fault_matrix_converges(
    fault: str, phase: str, seed: int, tmp_path: Path, new_store_url: Any, dataset: Any,
    reference: Any,
) -> None:  # fmt: skip
    _cell(fault, phase, seed, tmp_path, new_store_url, dataset, reference)


def test_a_record_refused_in_a_207_batch_is_listed_with_system_and_id(
    tmp_path: Path, new_store_url: Any, dataset: Any, reference: Any
) -> None:
    life = _faulty_life(
        tmp_path, dataset, new_store_url("postgresql"), "record_failures_207", "apply", 2
    )
    assert life.unprocessed.get("apply"), "the fault refused no record: the test proves nothing"
    _check(life, reference, dataset)


def test_a_daily_limit_fails_the_pull_with_one_clear_line_then_a_rerun_converges(
    tmp_path: Path, new_store_url: Any, dataset: Any, reference: Any
) -> None:
    life = _faulty_life(tmp_path, dataset, new_store_url("postgresql"), "daily_limit_403",
                        "pull_full", 1)  # fmt: skip
    error = life.errors["pull_full"]
    assert "\n" not in error and ("limit" in error.lower() or "exceeded" in error.lower())
    _check(life, reference, dataset)


def _matrix() -> None:  # pragma: no cover - a report for humans
    import tempfile

    from connectors.sandbox.generator import generate
    from tests.fixtures_store import store_url_for
    from tests.reliability.conftest import DEALS, SEED

    dataset = generate(DEALS, SEED)[0]
    with tempfile.TemporaryDirectory() as tmp, store_url_for("postgresql", Path(tmp)) as store:
        env = make_env(Path(tmp) / "ref", dataset, store, push=PUSH)
        clean = live(env)
        env.sandbox.stop()
    expected = comparable(clean.final, stable(dataset))
    print("| fault | phase | " + " | ".join(f"seed {s}" for s in SEEDS) + " |")
    print("|---|---|" + "---|" * len(SEEDS))
    for fault, phase in itertools.product(FAULTS, PHASES):
        cells = []
        for seed in SEEDS:
            with (
                tempfile.TemporaryDirectory() as tmp,
                store_url_for("postgresql", Path(tmp)) as store,
            ):
                life = _faulty_life(Path(tmp) / "s", dataset, store, fault, phase, seed)
            got = comparable(life.final, stable(dataset))
            dup = sum(len(v) for v in duplicates(life.final).values())
            lost = sum(len([r for r in expected[s] if r not in got[s]]) for s in expected) - dup
            state = "converged" if got == expected else "DIFFERS"
            cells.append(f"{state} lost={max(lost, 0)} dup={dup}")
        print(f"| {fault} | {phase} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    _matrix()
