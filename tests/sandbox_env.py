"""Shared sandbox helpers for tests that drive crmsync against the emulators.

Two ways to serve: in-process (`make_env`, fast, faults set directly on the servers) and as a
separate `crmsync sandbox serve` process (`served`, whose state survives a `kill -9` of
crmsync). Dumps are compared through `stable`, which drops the stamps a write sets to the
wall clock.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import SYSTEMS, Sandbox, start_sandbox
from sync.runtime import Runtime, open_runtime
from sync.sandbox_config import write_sandbox_config

__all__ = [
    "CRMSYNC",
    "DEAL_KEYS",
    "SYSTEMS",
    "SandboxEnv",
    "crmsync_env",
    "deal_records",
    "http_dump",
    "http_faults",
    "http_writes",
    "make_env",
    "run_crmsync",
    "served",
    "stable",
    "warm_crmsync",
]

CRMSYNC = [str(Path(sys.executable).with_name("crmsync"))]
ROOT = Path(__file__).resolve().parents[1]
# Where each system's deals sit in a dump.
DEAL_KEYS = {"salesforce": "Opportunity", "hubspot": "deals", "pipedrive": "deals"}
_VOLATILE = ("modstamp", "lastmodified", "updated", "date_entered", "date_exited", "createddate")
_VOLATILE_EXACT = (
    *("createdate", "createdAt", "archivedAt", "add_time", "update_time", "stage_change_time"),
    *("won_time", "first_won_time", "lost_time", "close_time"),
)


def stable(value: Any) -> Any:
    """The dump without the stamps a write sets to the wall clock."""
    if isinstance(value, dict):
        return {
            k: stable(v)
            for k, v in value.items()
            if k not in _VOLATILE_EXACT and not any(m in k.lower() for m in _VOLATILE)
        }
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def deal_records(dump: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Only the deal records of a (stable) dump: history entries legitimately grow."""
    return {system: list(body[DEAL_KEYS[system]]) for system, body in dump.items()}


def crmsync_env() -> dict[str, str]:
    """The environment for a `crmsync` subprocess that runs this checkout."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_crmsync(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """`crmsync *args` in a process of its own that runs this checkout, started warm by the fork
    server (`warm_crmsync`): text output, 2 minutes at most; `columns`: the terminal width its
    tables take (a pipe's is 80)."""
    env = crmsync_env() | ({} if columns is None else {"COLUMNS": str(columns)})
    return subprocess.run(
        [*warm_crmsync(), *args], env=env, capture_output=True, text=True, timeout=120
    )


_fork_server: list[str] = []


def warm_crmsync() -> list[str]:
    """The command that runs `crmsync` as a process of its own, forked from a server that has
    imported crmsync already (tests/cli_fork_server.py): the same argv, environment, working
    directory, streams, signals and exit status as the `crmsync` script, a second less start-up.

    The server starts on first use and stops with this process. Tests of what a fresh
    interpreter does (what it imports, a hash seed of its own) run `CRMSYNC` instead."""
    if not _fork_server:
        folder = tempfile.mkdtemp(prefix="crmsync-fork-")
        socket_path = os.path.join(folder, "socket")
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "cli_fork_server.py"), socket_path],
            env=crmsync_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        atexit.register(_stop_fork_server, server, folder)
        deadline = time.monotonic() + 120
        while not os.path.exists(socket_path):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the crmsync fork server did not start (exit {server.poll()})")
            time.sleep(0.02)
        client = str(ROOT / "tests" / "cli_fork_client.py")
        _fork_server.extend([sys.executable, "-I", "-S", client, socket_path])
    return _fork_server


def _stop_fork_server(server: subprocess.Popen[bytes], folder: str) -> None:
    server.kill()
    server.wait()
    shutil.rmtree(folder, ignore_errors=True)


def _configure(config: Path, store: str, **sections: Mapping[str, Any]) -> None:
    document = yaml.safe_load(config.read_text())
    document["store"] = store
    document["allow_absolute_paths"] = True
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    config.write_text(yaml.safe_dump(document, sort_keys=False))


@dataclass
class SandboxEnv:
    """In-process emulators, a config for them and the state store it points at."""

    sandbox: Sandbox
    config: Path

    @contextmanager
    def runtime(self, **options: Any) -> Iterator[Runtime]:
        """Connectors with a short retry backoff (the schedule of waits is not under test)."""
        with open_runtime(
            str(self.config), connector_options={"backoff_base": 0.01, **options}
        ) as rt:
            yield rt

    def faults(self, systems: Sequence[str] | None = None, **spec: Any) -> None:
        """Set (or, without spec, clear) the faults of `systems` (default: all)."""
        for name in systems or list(self.sandbox.servers):
            self.sandbox.servers[name].faults.set(Faults(**spec))

    def dump(self) -> dict[str, Any]:
        return {name: stable(s.emulator.dump()) for name, s in self.sandbox.servers.items()}

    def writes(self) -> int:
        """Write requests the sandboxes served."""
        return sum(count_writes(s.stats.snapshot()) for s in self.sandbox.servers.values())


def make_env(
    folder: Path,
    dataset: Mapping[str, Any],
    store: str,
    *,
    systems: Sequence[str] = SYSTEMS,
    faults: Faults | None = None,
    **sections: Mapping[str, Any],
) -> SandboxEnv:
    """Start the emulators of `systems` with `dataset`; `sections` update the config."""
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = start_sandbox(dataset, systems=systems, faults=faults, workdir=folder)
    config = folder / "crmsync.yaml"
    write_sandbox_config(sandbox.ready_info(), config)
    _configure(config, store, **sections)
    return SandboxEnv(sandbox, config)


@contextmanager
def hubspot_and_pipedrive(folder: Path, dataset: Mapping[str, Any]) -> Iterator[SandboxEnv]:
    """The HubSpot and Pipedrive emulators of `dataset` and a SQLite store in `folder`, stopped
    on exit (the report tests' two-CRM world)."""
    sandbox_env = make_env(
        folder,
        {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]},
        f"sqlite:///{folder}/store.db",
        systems=("hubspot", "pipedrive"),
    )
    try:
        yield sandbox_env
    finally:
        sandbox_env.sandbox.stop()


@contextmanager
def served(
    folder: Path,
    dataset: Path,
    store: str,
    *,
    systems: Sequence[str] = SYSTEMS,
    faults: str = "",
    name: str | None = None,
    **sections: Mapping[str, Any],
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`crmsync sandbox serve` in its own process; yields (config path, ready-file JSON).
    Its files are `crmsync.yaml` and `ready.json` in `folder`, or `<name>.yaml` and
    `<name>.ready.json` (several sandboxes in one folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    ready, config = folder / "ready.json", folder / "crmsync.yaml"
    if name is not None:
        ready, config = folder / f"{name}.ready.json", folder / f"{name}.yaml"
    args = [*CRMSYNC, "sandbox", "serve", "--dataset", str(dataset),
            "--ready-file", str(ready), "--config-out", str(config)]  # fmt: skip
    if faults:
        args += ["--faults", faults]
    for system in systems:
        args += ["--system", system]
    server = subprocess.Popen(args, cwd=folder, stderr=subprocess.DEVNULL, env=crmsync_env())
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and config.exists()):
            assert server.poll() is None and time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.05)
        _configure(config, store, **sections)
        yield config, json.loads(ready.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def _verify(info: Mapping[str, Any], system: str) -> str | bool:
    # The environment may set REQUESTS_CA_BUNDLE: name the sandbox CA explicitly.
    return str(info["ca_file"]) if system == "salesforce" else True


def http_dump(info: Mapping[str, Any], systems: Sequence[str] = SYSTEMS) -> dict[str, Any]:
    out = {}
    for system in systems:
        url = f"{info[system]}/__sandbox/dump"
        body = requests.get(url, verify=_verify(info, system), timeout=10).json()
        out[system] = stable(body[system])
    return out


def count_writes(stats: Mapping[str, Any]) -> int:
    """Write requests in one sandbox server's stats (`GET /__sandbox/stats`). HubSpot reads
    some things by POST (a search, a batch read of companies or associations): not writes."""
    total = 0
    for key, n in stats["requests"].items():
        method = key.split(" ", 1)[0]
        read = key.endswith(("/search", "/batch/read"))
        if method in ("PATCH", "PUT", "DELETE") or (
            method == "POST"
            and not read
            and ("composite" in key or "batch" in key or "deals" in key)
        ):
            total += n
    return total


def http_writes(info: Mapping[str, Any], systems: Sequence[str] = SYSTEMS) -> int:
    """Write requests the served sandboxes answered so far."""
    total = 0
    for system in systems:
        url = f"{info[system]}/__sandbox/stats"
        total += count_writes(requests.get(url, verify=_verify(info, system), timeout=10).json())
    return total


def http_faults(info: Mapping[str, Any], system: str, **spec: Any) -> None:
    url = f"{info[system]}/__sandbox/faults"
    response = requests.post(url, json=spec, verify=_verify(info, system), timeout=10)
    response.raise_for_status()
