"""A three-CRM sandbox seeded by the generator, with a config written for it, per test module."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import Generated, generate_full
from connectors.sandbox.launcher import Sandbox, start_sandbox
from sync.reconcile import ReconcileResult, plan_run
from sync.runtime import open_runtime
from sync.sandbox_config import write_sandbox_config
from tests.fixtures_store import store_url_for

DEALS, SEED = 400, 11


@dataclass
class World:
    generated: Generated
    sandbox: Sandbox
    config: Path

    def reconcile(self, run_id: str) -> ReconcileResult:
        with open_runtime(str(self.config)) as rt:
            return plan_run(rt.config, rt.store, rt.connectors, run_id=run_id)

    def members(self) -> dict[str, dict[str, str]]:
        """Entity -> {instance: deal id}, from the store's links, entities in id order."""
        with open_runtime(str(self.config), connect=False) as rt:
            links = rt.store.links()
        members: dict[str, dict[str, str]] = {}
        for (instance, deal_id), entity in sorted(links.items(), key=lambda link: link[1]):
            members.setdefault(entity, {})[instance] = deal_id
        return members

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: s.stats.snapshot() for name, s in self.sandbox.servers.items()}


def retire(world: World, name: str) -> None:
    """Delete `systems.<name>` and every key naming it from the world's config, as README
    "Retiring an instance" says."""
    document: dict[str, Any] = yaml.safe_load(world.config.read_text())
    del document["systems"][name]
    for system in document["systems"].values():
        system.get("external_ids", {}).pop(name, None)
    targets = document["push"].get("targets")
    if targets:
        document["push"]["targets"] = [t for t in targets if t != name]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def build_world(
    tmp: Path, store_url: str, deals: int = DEALS, seed: int = SEED, single_currency: bool = False
) -> Iterator[World]:
    """`single_currency`: a Salesforce org without multi-currency (no CurrencyIsoCode)."""
    generated = generate_full(deals, seed)
    if single_currency:
        for record in generated.dataset["salesforce"]["Opportunity"]:
            record.pop("CurrencyIsoCode", None)
    with start_sandbox(generated.dataset, workdir=tmp) as sandbox:
        config = tmp / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        # a textual edit keeps the comments `init` wrote (`# review: ...`)
        config.write_text(f"allow_absolute_paths: true\nstore: {store_url}\n" + config.read_text())
        yield World(generated, sandbox, config)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"world-{request.param}")
    with store_url_for(request.param, tmp) as url:
        yield from build_world(tmp, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def paged_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """Fresh for each test, on each store dialect; a full read of its 111 HubSpot deals takes
    two pages (tests stop a process between them)."""
    with store_url_for(request.param, tmp_path) as url:
        yield from build_world(tmp_path, url, deals=110, seed=3)


@pytest.fixture
def pg_world(tmp_path: Path) -> Iterator[World]:
    """A small three-CRM sandbox with a PostgreSQL store (skipped when PostgreSQL is absent),
    fresh for each test."""
    with store_url_for("postgresql", tmp_path) as url:
        yield from build_world(tmp_path, url, deals=60, seed=3)


@pytest.fixture
def small_world(tmp_path: Path) -> Iterator[World]:
    """A small three-CRM sandbox with a SQLite store, fresh for each test."""
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=60, seed=3)


@pytest.fixture
def single_currency_world(tmp_path: Path) -> Iterator[World]:
    """small_world with a single-currency Salesforce org."""
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    yield from build_world(tmp_path, url, deals=60, seed=3, single_currency=True)


@contextmanager
def once_served(
    world: World, system: str, request: str, count: int, then: Callable[[], None]
) -> Iterator[None]:
    """Call `then` (from a watcher thread) once `system` has served `count` more `request`s
    (e.g. "PATCH /api/v2/deals/{id}") inside the block."""
    server = world.sandbox.servers[system]

    def served() -> int:
        return int(server.stats.snapshot()["requests"].get(request, 0))

    target = served() + count
    done = threading.Event()

    def watch() -> None:
        while served() < target and not done.is_set():
            time.sleep(0.001)
        if not done.is_set():
            then()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=30)


@contextmanager
def refusing_after(world: World, system: str, request: str, count: int) -> Iterator[None]:
    """`system` answers 5xx to every call once it has served `count` more `request`s inside the
    block, as a CRM that fails for good part-way does; all is well again after the block. A
    30 ms latency leaves time to switch between two calls."""
    faults = world.sandbox.servers[system].faults
    faults.set(Faults(latency_ms=30))
    try:
        with once_served(world, system, request, count, lambda: faults.set(Faults(error5xx=1.0))):
            yield
    finally:
        faults.set(Faults())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def one_try_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A small three-CRM sandbox, on each store dialect, where one refusal dead-letters."""
    with store_url_for(request.param, tmp_path) as url:
        for world in build_world(tmp_path, url, deals=60, seed=3):
            text = world.config.read_text()
            world.config.write_text(text.replace("push:\n", "push:\n  max_attempts: 1\n"))
            yield world
