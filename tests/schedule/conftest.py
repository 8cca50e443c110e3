"""A running sandbox (small generated dataset) and a crmsync config for it with a schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox
from sync.sandbox_config import write_sandbox_config
from tests.fixtures_store import new_store_url  # noqa: F401

WriteConfig = Callable[..., Path]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    dataset, _planted = generate(40, seed=11)
    with start_sandbox(dataset) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox_doc(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The config `sandbox serve --config-out` writes (stage maps proposed from the sandbox)."""
    path = tmp_path_factory.mktemp("sandbox-config") / "crmsync.yaml"
    write_sandbox_config(sandbox.ready_info(), path)
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


@pytest.fixture
def write_config(sandbox_doc: dict[str, Any], tmp_path: Path) -> WriteConfig:
    """``write_config(store_url, *schedule_entries) -> path`` of a working config."""

    def write(store: str, *schedule: dict[str, Any]) -> Path:
        path = tmp_path / "crmsync.yaml"
        doc = {**sandbox_doc, "allow_absolute_paths": True, "store": store}
        doc["schedule"] = list(schedule)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


def slowed(sandbox: Sandbox, latency_ms: float) -> Iterator[Sandbox]:
    """The sandbox answering every API call `latency_ms` late while the fixture lasts."""
    for server in sandbox.servers.values():
        server.faults.set(Faults(latency_ms=latency_ms))
    yield sandbox
    for server in sandbox.servers.values():
        server.faults.set(Faults())


@pytest.fixture
def slow_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Every API answer takes 400 ms, so a pull is still running when a signal arrives."""
    yield from slowed(sandbox, 400)
