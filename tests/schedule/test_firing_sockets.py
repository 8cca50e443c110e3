"""A firing releases its connections to the CRMs as it ends, however it ends: the daemon holds
no socket between firings (README, Scheduled runs: Running for weeks)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from config import load_config
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import SYSTEMS, Sandbox
from sync.jobs import JobOutcome, run_job
from sync.shutdown import stop_event
from sync.store import RunStatus

APPLY = {"name": "nightly-apply", "cron": "30 2 * * *", "job": "reconcile"}
# Gives up after a second answer: the firing fails in a fraction of a second.
QUICK_FAILURE = {"max_attempts": 2, "backoff_base": 0.01}


def open_sockets_to(sandbox: Sandbox) -> list[str]:
    """The CRMs this process holds a client socket to (one entry per socket)."""
    ports = {urlsplit(s.url).port: name for name, s in sandbox.servers.items()}
    return [
        ports[c.raddr.port]
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port in ports
    ]


@pytest.fixture
def faults_reset(sandbox: Sandbox) -> Iterator[Sandbox]:
    yield sandbox
    for server in sandbox.servers.values():
        server.faults.set(Faults())


@contextmanager
def collector_held() -> Iterator[None]:
    """The cyclic garbage collector held off: in the daemon it runs at some later moment
    (about the next firing), so what only it would free stays held until then."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def fire(config: Path, stop: threading.Event | None = None) -> JobOutcome:
    entry = load_config(str(config)).schedule[0]
    stop = stop or threading.Event()
    return run_job(str(config), entry, stop=stop, connector_options=QUICK_FAILURE)


@pytest.mark.parametrize("down", SYSTEMS)
def test_a_firing_that_fails_on_a_crm_leaves_no_socket_open_to_any_crm(
    down: str,
    faults_reset: Sandbox,
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
) -> None:
    config = write_config(new_store_url("sqlite"), APPLY)
    faults_reset.servers[down].faults.set(Faults(error5xx=1.0))  # down until retries run out
    with collector_held():
        outcome = fire(config)
        left_open = open_sockets_to(faults_reset)
    assert outcome.status == RunStatus.FAILED.value
    assert left_open == []


def test_a_firing_stopped_during_its_pull_leaves_no_socket_open_to_any_crm(
    faults_reset: Sandbox,
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
) -> None:
    config = write_config(new_store_url("sqlite"), APPLY)
    faults_reset.servers["pipedrive"].faults.set(Faults(latency_ms=300))
    timer = threading.Timer(0.5, stop_event.set)  # as SIGTERM does in `crmsync schedule`
    timer.start()
    try:
        with collector_held():
            outcome = fire(config, stop_event)
            left_open = open_sockets_to(faults_reset)
    finally:
        timer.cancel()
        stop_event.clear()
    assert outcome.status == RunStatus.INTERRUPTED.value
    assert "during the pull" in outcome.detail, outcome.detail
    assert left_open == []
