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


def _started() -> Iterator[Sandbox]:
    dataset, _planted = generate(40, seed=11)
    with start_sandbox(dataset) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    yield from _started()


@pytest.fixture
def own_sandbox() -> Iterator[Sandbox]:
    """A sandbox of the test's own, for one that writes to its CRMs or sets faults."""
    yield from _started()


def _sandbox_doc(sandbox: Sandbox, folder: Path) -> dict[str, Any]:
    """The config `sandbox serve --config-out` writes (stage maps proposed from the sandbox)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "crmsync.yaml"
    write_sandbox_config(sandbox.ready_info(), path)
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


@pytest.fixture(scope="module")
def sandbox_doc(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _sandbox_doc(sandbox, tmp_path_factory.mktemp("sandbox-config"))


def _writer(sandbox_doc: dict[str, Any], folder: Path) -> WriteConfig:
    def write(store: str, *schedule: dict[str, Any]) -> Path:
        path = folder / "crmsync.yaml"
        doc = {**sandbox_doc, "allow_absolute_paths": True, "store": store}
        doc["schedule"] = list(schedule)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


@pytest.fixture
def write_config(sandbox_doc: dict[str, Any], tmp_path: Path) -> WriteConfig:
    """``write_config(store_url, *schedule_entries) -> path`` of a working config."""
    return _writer(sandbox_doc, tmp_path)


@pytest.fixture
def write_own_config(own_sandbox: Sandbox, tmp_path: Path) -> WriteConfig:
    """`write_config` for the test's own sandbox (`own_sandbox`)."""
    return _writer(_sandbox_doc(own_sandbox, tmp_path / "sandbox-config"), tmp_path)


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
