"""A SQLite store whose disk fills up mid-run: one clear line (not a traceback or an
'unexpected' driver error), the store stays intact, and the next run, once there is room,
finishes the work without duplicates."""

from __future__ import annotations

import resource
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.dataset import save_dataset
from connectors.sandbox.generator import generate
from tests.reliability.conftest import PUSH
from tests.reliability.pipeline import duplicates
from tests.sandbox_env import CRMSYNC, crmsync_env, http_dump, served


def _reconcile(config: Path, *extra: str, max_bytes: int | None = None) -> tuple[int, str]:
    return _crmsync("reconcile", config, *extra, max_bytes=max_bytes)


def _crmsync(
    command: str, config: Path, *extra: str, max_bytes: int | None = None, timeout: float = 300
) -> tuple[int, str]:
    def limit() -> None:  # writes past it fail with EFBIG, as on a full disk
        if max_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    done = subprocess.run(
        [*CRMSYNC, command, "--config", str(config), *extra], env=crmsync_env(),
        capture_output=True, timeout=timeout, preexec_fn=limit,
    )  # fmt: skip
    return done.returncode, done.stderr.decode()


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_full_disk_mid_run_is_one_clear_line_and_the_next_run_finishes(
    tmp_path: Path, dataset: dict[str, Any]
) -> None:
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    db = tmp_path / "s" / "store.db"
    with served(tmp_path / "s", data, f"sqlite:///{db}", push=PUSH) as (config, info):
        code, err = _reconcile(config, "--dry-run")
        assert code == 0, err
        code, err = _reconcile(config, "--full", "--yes", max_bytes=db.stat().st_size + 8192)
        assert code == 1, err
        assert err.count("\n") == 1 and err.startswith("crmsync: error: state store failed"), err
        with sqlite3.connect(db) as conn:
            assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        for _ in range(2):  # the rerun finishes; one more finds nothing left to do
            code, err = _reconcile(config, "--yes")
            assert code in (0, 1), err  # 1: a create with an owner unknown there
            assert "Traceback" not in err
        dump = http_dump(info)
        assert duplicates(dump) == {s: [] for s in dump}


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_full_disk_mid_pull_of_thousands_of_deals_stops_the_pull_with_one_line(
    tmp_path: Path,
) -> None:
    # Thousands of deals per CRM: the readers still have pages to hand over when saving fails.
    data = tmp_path / "dataset.json"
    save_dataset(data, generate(2500, 3)[0])
    db = tmp_path / "s" / "store.db"
    with served(tmp_path / "s", data, f"sqlite:///{db}"):
        config = tmp_path / "s" / "crmsync.yaml"
        assert _crmsync("runs", config)[0] == 0  # creates the empty store
        code, err = _crmsync("pull", config, "--full", max_bytes=db.stat().st_size + 8192,
                             timeout=60)  # fmt: skip
        assert code == 1, err
        assert err.count("\n") == 1 and err.startswith("crmsync: error: state store failed"), err
