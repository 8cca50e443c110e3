"""What every engine command opens: the config, the state store, the connectors, a run record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from config import Config, load_config
from connectors.base import Connector
from sync.connect import open_connector
from sync.errors import UsageError, terminal_safe
from sync.store import Store
from sync.store_open import open_store
from sync.terminal import plain_console

__all__ = ["Runtime", "open_runtime", "progress_reporter"]

_log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    store: Store
    connectors: dict[str, Connector] = field(default_factory=dict)
    connector_options: dict[str, Any] = field(default_factory=dict)  # as opened with

    def calls(self) -> dict[str, dict[str, int]]:
        return {name: c.calls() for name, c in self.connectors.items()}


@contextmanager
def open_runtime(
    config_path: str,
    *,
    systems: Sequence[str] = (),
    connect: bool = True,
    connector_options: dict[str, Any] | None = None,
) -> Iterator[Runtime]:
    config = load_config(config_path)
    unknown = [s for s in systems if s not in config.systems]
    if unknown:
        raise UsageError(
            f"--system {unknown[0]}: no such instance in {config.path.name} "
            f"(expected one of {', '.join(config.systems)})"
        )
    store = open_store(config)
    runtime = Runtime(config, store, connector_options=dict(connector_options or {}))
    try:
        if connect:
            for name in systems or list(config.systems):
                runtime.connectors[name] = open_connector(config, name, connector_options)
        yield runtime
    except BaseException:
        _close(runtime, raising=False)  # the run's own error is the one told
        raise
    _close(runtime, raising=True)


def _close(runtime: Runtime, *, raising: bool) -> None:
    """Every connector the runtime holds (commands open some after `open_runtime`: apply's
    targets, a firing's CRMs) and the store, though one close raises (a plugin's may): the
    others' sockets and connections are freed all the same. The first failure is raised once
    all are closed; where the run is failing already, it is logged instead."""
    failures: list[Exception] = []
    for close in [*(c.close for c in runtime.connectors.values()), runtime.store.close]:
        try:
            close()
        except Exception as exc:  # each close is tried, whatever the others did
            failures.append(exc)
    if failures and raising:
        raise failures[0]
    for failure in failures:
        _log.warning("could not close a connection: %s", terminal_safe(str(failure)))


class Bars:
    """Rich progress bars on stderr: one per instance (deals read or written), called as a
    pull's `Progress`, and one for the analysis under way (:meth:`phase`)."""

    def __init__(self, bar: Progress, instances: Sequence[str]) -> None:
        self._bar = bar
        self._tasks = {name: bar.add_task(name, total=None) for name in instances}
        self._phase: TaskID | None = None

    def __call__(self, instance: str, done: int) -> None:
        self._bar.update(self._tasks[instance], completed=done)

    def phase(self, step: str | None, deals: int = 0) -> None:
        """What the analysis does now and over how many deals; None: it is over."""
        if step is None:
            if self._phase is not None:
                self._bar.remove_task(self._phase)
                self._phase = None
            return
        if self._phase is None:
            self._phase = self._bar.add_task(step, total=None)
        # drawn at once: a step can be over before the bar's next timed refresh
        self._bar.update(self._phase, description=step, completed=deals, refresh=True)


@contextmanager
def progress_reporter(
    instances: Sequence[str], *, enabled: bool | None = None
) -> Iterator[Bars | None]:
    """Rich progress bars on a terminal (:class:`Bars`); None elsewhere (CI, pipes)."""
    console = plain_console(stderr=True)
    if enabled is None:
        enabled = sys.stderr.isatty() and console.is_terminal
    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<12}", style="bold", markup=False),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:>8,} deals"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield Bars(bar, instances)
