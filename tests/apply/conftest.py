"""Apply fixtures: a Salesforce + HubSpot sandbox with planted discrepancies, a config for it
(its state store on SQLite or PostgreSQL) and helpers to plan, dump and compare."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

_ROOT = str(Path(__file__).resolve().parents[2])
for _path in (_ROOT, str(Path(__file__).parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from connectors.sandbox.faults import Faults  # noqa: E402
from connectors.sandbox.generator import generate  # noqa: E402
from connectors.sandbox.launcher import Sandbox, start_sandbox  # noqa: E402
from sync.plan import Plan  # noqa: E402
from sync.reconcile import ReconcileResult, plan_run  # noqa: E402
from sync.runtime import open_runtime  # noqa: E402
from sync.sandbox_config import write_sandbox_config  # noqa: E402
from tests.fixtures_store import new_store_url, store_url  # noqa: E402, F401

SYSTEMS = ("salesforce", "hubspot")
DEALS, SEED = 300, 5


@dataclass
class Env:
    sandbox: Sandbox
    config: Path

    def plan(self, run_id: str = "plan-1") -> ReconcileResult:
        with open_runtime(str(self.config)) as rt:
            return plan_run(rt.config, rt.store, rt.connectors, run_id=run_id)

    def faults(self, **spec: Any) -> None:
        for server in self.sandbox.servers.values():
            server.faults.set(Faults(**spec))

    def dump(self) -> dict[str, Any]:
        return {name: _stable(s.emulator.dump()) for name, s in self.sandbox.servers.items()}

    def deals(self) -> dict[str, Any]:
        """Only the deal records of the dump (history entries legitimately grow)."""
        dump = self.dump()
        return {
            "salesforce": dump["salesforce"]["Opportunity"],
            "hubspot": dump["hubspot"]["deals"],
        }

    def writes(self) -> int:
        """Write requests the sandboxes served (any path with update/create/PATCH/POST deals)."""
        total = 0
        for server in self.sandbox.servers.values():
            for key, n in server.stats.snapshot()["requests"].items():
                method = key.split(" ", 1)[0]
                if (
                    method in ("PATCH", "PUT", "DELETE")
                    or "batch/update" in key
                    or (method == "POST" and "composite" in key)
                ):
                    total += n
        return total


_VOLATILE = ("modstamp", "lastmodified", "updated", "date_entered", "createddate")


def _stable(value: Any) -> Any:
    """The dump without the stamps a write sets to the wall clock."""
    if isinstance(value, dict):
        return {
            k: _stable(v) for k, v in value.items() if not any(m in k.lower() for m in _VOLATILE)
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def make_env(tmp: Path, store: str, faults: Faults | None = None, **push: Any) -> Env:
    dataset, _ = generate(DEALS, SEED)
    sandbox = start_sandbox(dataset, systems=SYSTEMS, faults=faults, workdir=tmp)
    config = tmp / "crmsync.yaml"
    write_sandbox_config(sandbox.ready_info(), config)
    document = yaml.safe_load(config.read_text())
    document["store"] = store
    document["allow_absolute_paths"] = True
    document["push"].update(push)
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return Env(sandbox, config)


@pytest.fixture
def env_factory(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    started: list[Env] = []

    def factory(store: str, name: str = "a", **kwargs: Any) -> Env:
        folder = tmp_path / name
        folder.mkdir()
        env = make_env(folder, store, **kwargs)
        started.append(env)
        return env

    yield factory
    for env in started:
        env.sandbox.stop()


@pytest.fixture
def env(env_factory: Callable[..., Env], tmp_path: Path) -> Env:
    return env_factory(f"sqlite:///{tmp_path / 'state.db'}")


def changed_records(plan: Plan) -> set[tuple[str, str]]:
    return {(c.system, c.id) for c in plan.changes}
