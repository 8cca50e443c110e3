"""`crmsync` commands as separate processes against a World's sandbox, and ways to hold one
still (SIGSTOP) or kill it (kill -9) once the sandbox served it a chosen request.

While such a process runs up to that request, its system answers 100 ms late: the process is
stopped or killed before it gets its next answer, however busy the machine."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal

from click.testing import CliRunner, Result

from connectors.sandbox.faults import Faults
from sync.cli import main
from sync.pull import failure_of, pull
from sync.runtime import open_runtime
from sync.store import RunRecord
from tests.fixtures_store import end_lock_session
from tests.integration.conftest import World, once_served
from tests.sandbox_env import crmsync_env, warm_crmsync

__all__ = [
    "HUBSPOT_LIST", "Process", "assert_stopped_on_a_lost_lock", "cli", "crm_amount",
    "end_lock_session_of", "first_page_deal", "full_hubspot_pull_paused", "killed", "paused",
    "pull_here", "run", "runs", "stored",
]  # fmt: skip

_started = itertools.count()
HUBSPOT_LIST = "GET /crm/objects/2026-09/deals"  # a full read of HubSpot, 100 deals a page


class Process:
    """A running `crmsync` command whose stderr lines are collected as they come. It runs warm
    (`warm_crmsync`); `pid` is the command's own, for the signals a test sends it."""

    def __init__(self, world: World, *args: str) -> None:
        command = [*warm_crmsync(), *args, "--config", str(world.config)]
        pid_file = world.config.parent / f"pid-{next(_started)}"
        env = {**crmsync_env(), "WARM_CRMSYNC_PID_FILE": str(pid_file)}
        self.popen = subprocess.Popen(command, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert self.popen.poll() is None, f"crmsync did not start: {self.popen.stderr}"
            assert time.monotonic() < deadline, "crmsync did not start"
            time.sleep(0.002)
        self._pid = int(pid_file.read_text())
        self.err_lines: list[str] = []
        self.out = ""
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.err_lines.append(line.rstrip("\n"))

    def _read_out(self) -> None:
        assert self.popen.stdout is not None
        self.out = self.popen.stdout.read()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def err(self) -> str:
        return "\n".join(self.err_lines)

    def wait_for_err(self, text: str, timeout: float = 60) -> bool:
        """Until a stderr line holds `text` (True) or the process ends without one (False)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.err_lines):
            if self.popen.poll() is not None:
                self.finish()
                return any(text in line for line in self.err_lines)
            assert time.monotonic() < deadline, f"no {text!r} on stderr: {self.err}"
            time.sleep(0.02)
        return True

    def finish(self, timeout: float = 120) -> int:
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.finish()


def run(world: World, *args: str) -> Process:
    """Run a command to its end."""
    process = Process(world, *args)
    process.finish()
    return process


@contextmanager
def paused(world: World, system: str, request: str, *args: str) -> Iterator[Process]:
    """Start `crmsync *args` and stop it (SIGSTOP) once `system` served it one `request`;
    it goes on (SIGCONT) when the block ends and is waited for."""
    stopped = threading.Event()
    holder: list[Process] = []

    def stop() -> None:
        os.kill(holder[0].pid, signal.SIGSTOP)
        stopped.set()

    with _slow(world, system), once_served(world, system, request, 1, stop):
        holder.append(Process(world, *args))
        process = holder[0]
        try:
            deadline = time.monotonic() + 60
            while not stopped.wait(0.05):
                if process.popen.poll() is not None or time.monotonic() > deadline:
                    process.finish()
                    raise AssertionError(f"never served {request}: {process.err}")
        except BaseException:
            process.kill()
            raise
    try:
        yield process
    finally:
        os.kill(process.pid, signal.SIGCONT)
        try:
            process.finish()
        finally:
            process.kill()


def full_hubspot_pull_paused(world: World) -> AbstractContextManager[Process]:
    """`crmsync pull --system hubspot --full` stopped once it read HubSpot's first page."""
    return paused(world, "hubspot", HUBSPOT_LIST, "pull", "--system", "hubspot", "--full")


def killed(world: World, system: str, request: str, *args: str) -> Process:
    """Run `crmsync *args` until `system` served it one `request`, then kill -9 it."""
    holder: list[Process] = []
    kill = lambda: os.kill(holder[0].pid, signal.SIGKILL)  # noqa: E731
    with _slow(world, system), once_served(world, system, request, 1, kill):
        holder.append(Process(world, *args))
        holder[0].finish()
    assert holder[0].popen.returncode == -signal.SIGKILL, holder[0].err
    return holder[0]


@contextmanager
def _slow(world: World, system: str) -> Iterator[None]:
    faults = world.sandbox.servers[system].faults
    faults.set(Faults(latency_ms=100))
    try:
        yield
    finally:
        faults.set(Faults())


def cli(world: World, *args: str) -> Result:
    """A `crmsync` command run in this process (quicker than a process of its own)."""
    return CliRunner().invoke(main, [*args, "--config", str(world.config)])


def first_page_deal(world: World, among: set[str] | None = None) -> str:
    """A stored HubSpot deal with an amount that a full read gets on its first page."""
    live = world.sandbox.servers["hubspot"].emulator.store.live
    first_page = sorted(live, key=int)[:100]
    with open_runtime(str(world.config), connect=False) as rt:
        saved = rt.store.get_deals("hubspot", first_page)
    for deal_id in first_page:
        wanted = among is None or deal_id in among
        if wanted and deal_id in saved and saved[deal_id].get("amount"):
            return deal_id
    raise AssertionError("no stored deal with an amount on HubSpot's first page")


def stored(world: World, deal_id: str) -> tuple[Decimal, str | None]:
    """The amount the store holds for HubSpot deal `deal_id`, and HubSpot's cursor."""
    with open_runtime(str(world.config), connect=False) as rt:
        payload = rt.store.get_deals("hubspot", [deal_id])[deal_id]
        return Decimal(payload["amount"]), rt.store.cursor("hubspot")


def crm_amount(world: World, deal_id: str) -> Decimal:
    live = world.sandbox.servers["hubspot"].emulator.store.live
    return Decimal(live[deal_id]["properties"]["amount"])


def pull_here(world: World, *systems: str) -> None:
    """A pull in this process (quicker than a `crmsync` process for setting the scene)."""
    with open_runtime(str(world.config), systems=systems) as rt:
        reports = pull(rt.config, rt.store, rt.connectors)
    assert not failure_of(reports), failure_of(reports)


def end_lock_session_of(world: World, name: str, namespace: str) -> None:
    """End the PostgreSQL session holding lock `name` of the world's store (see
    tests.fixtures_store.end_lock_session): its holder has lost it."""
    with open_runtime(str(world.config), connect=False) as rt:
        end_lock_session(rt.store, name, namespace)


def assert_stopped_on_a_lost_lock(process: Process, label: str) -> None:
    """`process` ended with exit 1 and, last, the one line saying it lost lock `label`."""
    assert process.popen.returncode == 1, process.err
    assert re.fullmatch(
        rf"crmsync: error: {re.escape(label)}: lock lost \(the PostgreSQL session holding it "
        r"ended: .+\); stopped before writing more: run it again, it resumes",
        process.err_lines[-1],
    ), process.err


def runs(world: World) -> list[RunRecord]:
    with open_runtime(str(world.config), connect=False) as rt:
        return rt.store.runs.recent(100)
