"""kill -9 during `crmsync apply`, then run it again: the final CRM state equals an
uninterrupted run's (compared through the sandbox's /__sandbox/dump)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connectors.sandbox.dataset import save_dataset
from connectors.sandbox.generator import generate
from sync.plan_json import plan_to_json
from sync.reconcile import plan_run
from sync.runtime import open_runtime
from tests.apply.conftest import DEALS, SEED, SYSTEMS, _stable
from tests.sandbox_env import http_writes

CRMSYNC = [str(Path(sys.executable).with_name("crmsync"))]


@contextmanager
def _served(folder: Path, dataset: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`crmsync sandbox serve` in its own process: its state survives the apply's kill."""
    ready, config = folder / "ready.json", folder / "crmsync.yaml"
    args = [*CRMSYNC, "sandbox", "serve", "--dataset", str(dataset), "--faults", "latency=40ms",
            "--ready-file", str(ready), "--config-out", str(config)]  # fmt: skip
    for system in SYSTEMS:
        args += ["--system", system]
    server = subprocess.Popen(args, cwd=folder, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert server.poll() is None and time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.05)
        document = yaml.safe_load(config.read_text())
        document["store"] = f"sqlite:///{folder / 'state.db'}"
        document["allow_absolute_paths"] = True
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        yield config, json.loads(ready.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def _dump(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for system in SYSTEMS:
        verify = info["ca_file"] if system == "salesforce" else True
        body = requests.get(f"{info[system]}/__sandbox/dump", verify=verify, timeout=10).json()
        out[system] = _stable(body[system])
    return out


def _plan(config: Path, path: Path) -> int:
    with open_runtime(str(config)) as rt:
        result = plan_run(rt.config, rt.store, rt.connectors, run_id="plan-1")
    path.write_text(json.dumps(plan_to_json(result.plan)))
    return len(result.plan.changes)


def _apply(config: Path, plan: Path) -> subprocess.Popen[bytes]:
    args = [*CRMSYNC, "apply", str(plan), "--config", str(config), "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run_kill_resume(tmp_path: Path, seed: int) -> None:
    dataset, _ = generate(DEALS, SEED)
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    (tmp_path / "clean").mkdir()
    (tmp_path / "killed").mkdir()
    with _served(tmp_path / "clean", data) as (config, info):
        plan = tmp_path / "clean" / "plan.json"
        assert _plan(config, plan) >= 5
        done = _apply(config, plan)
        assert done.wait(timeout=120) == 0, done.stderr.read() if done.stderr else ""
        writes = http_writes(info, SYSTEMS)
        expected = _dump(info)
    with _served(tmp_path / "killed", data) as (config, info):
        plan = tmp_path / "killed" / "plan.json"
        _plan(config, plan)
        # After a seeded number of the clean apply's writes, whatever the machine's speed.
        kill_after = random.Random(seed).randint(1, writes - 1)
        victim = _apply(config, plan)
        while http_writes(info, SYSTEMS) < kill_after:
            assert victim.poll() is None, "the apply ended before the kill"
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL, "the apply ended before the kill"
        resumed = _apply(config, plan)
        assert resumed.wait(timeout=120) == 0, resumed.stderr.read() if resumed.stderr else ""
        assert _dump(info) == expected


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_kill_9_then_resume_converges_to_the_uninterrupted_state(tmp_path: Path) -> None:
    _run_kill_resume(tmp_path, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_kill_9_at_other_points_then_resume_converges(tmp_path: Path, seed: int) -> None:
    _run_kill_resume(tmp_path, seed)
