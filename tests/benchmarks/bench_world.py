"""A benchmark world: a cached generated dataset, the three sandboxes and a config for them.

Generating 100k deals per system takes ~30 s, so datasets are cached on disk under
/tmp/crmsync-bench-cache/ keyed by (deals, seed, day, generator source); they are never
committed. Changes "made by users" between runs go straight into the emulators' in-memory
stores (under their locks), so they cost no API calls and never show in the request counters
the benchmarks read.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox import generator
from connectors.sandbox.dataset import load_dataset, load_planted, planted_path_for
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_full, write_generated
from connectors.sandbox.launcher import Sandbox, start_sandbox
from sync.sandbox_config import write_sandbox_config

__all__ = [
    "CACHE_DIR",
    "BenchData",
    "World",
    "bench_data",
    "bench_dataset_file",
    "bump_amounts",
    "open_world",
    "shared_entities",
]

CACHE_DIR = Path(os.environ.get("CRMSYNC_BENCH_CACHE", "/tmp/crmsync-bench-cache"))
SYSTEMS = ("salesforce", "hubspot", "pipedrive")
# Pacing far above the emulators' limits: the API-cost runs count calls, they do not wait.
UNPACED = {"requests": 1_000_000, "per_seconds": 1.0}
# A changed generator makes other data for the same (deals, seed, day): not the cached one.
_GENERATOR = hashlib.sha1(Path(generator.__file__).read_bytes()).hexdigest()[:10]


@dataclass(frozen=True)
class BenchData:
    deals: int
    seed: int
    dataset: dict[str, Any]
    entity_refs: dict[str, dict[str, str]]  # entity -> {system: native id}
    planted: frozenset[str]  # entities with a planted discrepancy


def bench_data(deals: int, seed: int = 7) -> BenchData:
    """The generated dataset for (deals, seed) as of today, from the disk cache when there.

    "Today", not the generator's fixed date: a nightly run's cursor is hours old, so the
    incremental reads take the paths they take in production (Pipedrive lists a deleted deal
    for 30 days only).
    """
    path = _cached_path(deals, seed)
    if not path.exists() or not planted_path_for(path).exists():
        generated = _generate(deals, seed, path)
        document = generated.planted_document()
        dataset = generated.dataset
    else:
        document, dataset = load_planted(planted_path_for(path)), load_dataset(path)
    planted = frozenset(str(p["entity"]) for p in document["planted"])
    return BenchData(deals, seed, dataset, document["entity_refs"], planted)


def bench_dataset_file(deals: int, seed: int = 7) -> Path:
    """The file of :func:`bench_data`'s dataset, generated when not cached, for a sandbox
    served from another process: this one then holds none of it."""
    path = _cached_path(deals, seed)
    if not path.exists() or not planted_path_for(path).exists():
        _generate(deals, seed, path)
    return path


def _cached_path(deals: int, seed: int) -> Path:
    return CACHE_DIR / f"deals-{deals}-seed-{seed}-{_today():%Y%m%d}-{_GENERATOR}.json"


def _today() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)


def _generate(deals: int, seed: int, path: Path) -> generator.Generated:
    generated = generate_full(deals, seed, now=_today())
    write_generated(path, generated)
    return generated


@dataclass
class World:
    data: BenchData
    sandbox: Sandbox
    config: Path

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: s.stats.snapshot() for name, s in self.sandbox.servers.items()}

    def clear_stats(self) -> None:
        for server in self.sandbox.servers.values():
            server.stats.clear()

    def set_faults(self, faults: Faults) -> None:
        for server in self.sandbox.servers.values():
            server.faults.set(faults)

    def live_counts(self) -> dict[str, dict[str, int]]:
        """What each API holds now: the record counts the lower bounds are computed from."""
        out: dict[str, dict[str, int]] = {}
        for name, server in self.sandbox.servers.items():
            em = server.emulator
            with em.lock:
                dump = em.dump()
            out[name] = _counts(name, dump)
        return out


def _counts(system: str, dump: Mapping[str, Any]) -> dict[str, int]:
    if system == "salesforce":
        opps = dump["Opportunity"]
        return {
            "deals": sum(1 for r in opps if not r.get("IsDeleted")),
            "deleted": sum(1 for r in opps if r.get("IsDeleted")),
            "history": len(dump.get("OpportunityHistory", [])),
            "owners": len(dump["User"]),
        }
    if system == "hubspot":
        deals = dump["deals"]
        companies = {
            entry["id"]
            for d in deals
            if not d.get("archived")
            for entry in ((d.get("associations") or {}).get("companies") or {}).get("results", ())
        }
        return {
            "deals": sum(1 for d in deals if not d.get("archived")),
            "deleted": sum(1 for d in deals if d.get("archived")),
            "owners": len(dump["owners"]),
            "companies": len(companies),  # those of live deals: their accounts
        }
    deals = dump["deals"]
    live = [d for d in deals if d.get("status") != "deleted"]
    orgs = {(o.get("value") if isinstance(o, dict) else o) for d in live if (o := d.get("org_id"))}
    return {
        "deals": len(live),
        "deleted": len(deals) - len(live),
        "owners": len(dump["users"]),
        "organizations": len(orgs),  # those of live deals: their accounts' names are read
        # every organization the list shows (deleted ones left out): what a listing reads
        "organizations_listed": sum(
            1 for o in dump["organizations"] if o.get("active_flag", True) is not False
        ),
    }


@contextmanager
def open_world(
    data: BenchData,
    workdir: Path,
    *,
    faults: Faults | None = None,
    paced: bool = False,
) -> Iterator[World]:
    """Sandboxes seeded with `data` and a config (SQLite store in `workdir`) for them.

    `paced=False` lifts the connectors' own pacing, for runs that count calls only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with start_sandbox(data.dataset, workdir=workdir, faults=faults) as sandbox:
        config = workdir / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        document = yaml.safe_load(config.read_text())
        document["store"] = f"sqlite:///{workdir / 'bench.db'}"
        document["allow_absolute_paths"] = True
        if not paced:
            for system in document["systems"].values():
                system["rate_limit"] = dict(UNPACED)
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        world = World(data, sandbox, config)
        world.clear_stats()  # `init` read pipelines while writing the config
        yield world


def shared_entities(data: BenchData, count: int, seed: int = 1) -> list[dict[str, str]]:
    """`count` unplanted entities present in all three systems, picked reproducibly."""
    full = [
        refs
        for entity, refs in sorted(data.entity_refs.items())
        if set(SYSTEMS) <= set(refs) and entity not in data.planted
    ]
    return random.Random(seed).sample(full, min(count, len(full)))


def bump_amounts(world: World, system: str, ids: list[str], step: int = 1) -> None:
    """Raise the amount of each deal by `step`, as a user editing it in the CRM would."""
    em: Any = world.sandbox.servers[system].emulator  # each emulator has its own store type
    with em.lock:
        if system == "salesforce":
            store = em.store
            for record_id in ids:
                record = store.by_id[record_id]
                amount = Decimal(str(record.get("Amount") or 0)) + step
                store.apply(store.check_update(record_id, {"Amount": amount}))
        elif system == "hubspot":
            for record_id in ids:
                deal = em.store.live[record_id]
                amount = Decimal(deal["properties"].get("amount") or 0) + step
                em.store.update(record_id, {"amount": str(amount)})
        else:
            for record_id in ids:
                deal = em.store.deals[int(record_id)]
                em.store.update(int(record_id), {"value": Decimal(str(deal["value"] or 0)) + step})
