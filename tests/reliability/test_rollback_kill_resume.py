"""`kill -9` of `crmsync rollback --apply` (restoring fields and deleting the copies the run
created) right after a seeded one of its delete requests reached the CRM, then a rerun: the
CRMs end as after an uninterrupted rollback, and the store as well (the next plan creates the
same copies again)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.dataset import save_dataset
from sync.store import Store
from tests.reliability.conftest import PUSH
from tests.reliability.pipeline import comparable
from tests.sandbox_env import CRMSYNC, SYSTEMS, crmsync_env, http_dump, served, stable

LATENCY = "latency=25ms"  # spreads the rollback over a few seconds of writes


def _crmsync(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CRMSYNC, *args, "--config", str(config)],
        env=crmsync_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes], *codes: int) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode in codes, err.decode()
    assert b"Traceback" not in err
    return out.decode()


def _reconciled(config: Path) -> str:
    """Reconcile with creates; the id of that run (1: a create whose owner is unknown there,
    the same in every world)."""
    _finish(_crmsync(config, "reconcile", "--yes"), 0, 1)
    runs = json.loads(_finish(_crmsync(config, "runs", "--format", "json"), 0))
    return str(next(r["id"] for r in runs if r["kind"] == "reconcile"))


def _rollback(config: Path, run_id: str) -> subprocess.Popen[bytes]:
    return _crmsync(config, "rollback", run_id, "--apply", "--yes", "--format", "json")


def _next_creates(config: Path) -> list[tuple[str, str]]:
    plan = json.loads(_finish(_crmsync(config, "reconcile", "--dry-run", "--format", "json"), 0))
    return sorted((c["system"], c["entity"]) for c in plan["creates"])


def _deletes(info: dict[str, Any]) -> int:
    """Delete requests the CRMs answered so far (Salesforce and Pipedrive DELETE, HubSpot's
    batch archive)."""
    total = 0
    for system in SYSTEMS:
        verify = info["ca_file"] if system == "salesforce" else True
        stats = requests.get(f"{info[system]}/__sandbox/stats", verify=verify, timeout=10).json()
        total += sum(
            n
            for key, n in stats["requests"].items()
            if key.startswith("DELETE ") or key.endswith("/batch/archive")
        )
    return total


def _links(store: str) -> dict[tuple[str, str], str]:
    """The store's links: a deleted copy the rollback left linked would differ here."""
    with Store.open(store) as opened:
        return opened.links()


def _run(tmp_path: Path, new_store_url: Any, dataset: dict[str, Any], seed: int) -> None:
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("postgresql")
    with served(tmp_path / "clean", data, store, faults=LATENCY, push=PUSH) as (config, info):
        run_id = _reconciled(config)
        _finish(_rollback(config, run_id), 0)
        deletes = _deletes(info)
        expected = comparable(http_dump(info), stable(dataset))
        expected_links = _links(store)
        expected_creates = _next_creates(config)
    assert deletes > 3 and expected_creates
    store = new_store_url("postgresql")
    with served(tmp_path / "killed", data, store, faults=LATENCY, push=PUSH) as (config, info):
        run_id = _reconciled(config)
        # Right after the CRM took a delete: the rollback has not recorded it yet (in doubt).
        kill_after = random.Random(seed).randint(1, deletes - 1)
        victim = _rollback(config, run_id)
        while _deletes(info) < kill_after:
            assert victim.poll() is None, "the rollback ended before the kill"
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL, "the rollback ended before the kill"
        report = json.loads(_finish(_rollback(config, run_id), 0))
        assert {r["outcome"] for r in report["results"]} <= {"applied", "already", "done_before"}
        assert comparable(http_dump(info), stable(dataset)) == expected
        assert _links(store) == expected_links
        assert _next_creates(config) == expected_creates


@pytest.mark.parametrize(
    "seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_kill_9_of_a_rollback_that_deletes_then_a_rerun_converges(
    seed: int, tmp_path: Path, new_store_url: Any, dataset: dict[str, Any]
) -> None:
    _run(tmp_path, new_store_url, dataset, seed)
