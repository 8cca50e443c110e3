"""Ctrl-C of `crmsync reconcile`, `pull` or `apply` aborts at once (the journal makes that
safe), SIGTERM of `crmsync apply` stops it between batches, and either way the run is
recorded as interrupted: `crmsync runs` never shows a dead run as running. The next run
finishes the work."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.dataset import save_dataset
from connectors.sandbox.generator import generate
from sync.store import RunStatus, Store
from tests.reliability.conftest import PUSH
from tests.sandbox_env import CRMSYNC, crmsync_env, http_writes, served


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    # A shell that starts jobs in the background ignores SIGINT in them: restore it.
    return subprocess.Popen(
        [*CRMSYNC, *args, "--config", str(config)], env=crmsync_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _wait_until(condition: Any, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> bytes:
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    assert process.returncode != 0 and b"Traceback" not in err, err
    return err


def _started(store: str) -> bool:
    if not Path(store.removeprefix("sqlite:///")).exists():
        return False
    with Store.open(store) as opened:
        return bool(opened.runs.recent(1))


def _audited(store: str, run_id: str | None = None) -> int:
    with Store.open(store) as opened:
        return len(opened.audit.entries(run_id=run_id))


def _latest(store: str, job: str) -> Any:
    with Store.open(store) as opened:
        return opened.runs.recent(1, job=job)[0]


# What each stop says: (signal, last stderr line, a word the run's recorded error holds).
_CTRL_C = (signal.SIGINT, "crmsync: error: interrupted (Ctrl-C)", "Ctrl-C")
_SIGTERM = (signal.SIGTERM, "crmsync: error: stopped on request (SIGTERM)", "SIGTERM")


@pytest.mark.parametrize(
    ("command", "options", "stop"),
    [
        ("reconcile", ["--yes"], _CTRL_C),
        pytest.param("pull", [], _CTRL_C, marks=pytest.mark.slow),  # default suite time
        ("report", ["--refresh"], _CTRL_C),
        # a pull or report stopped by its scheduler's timeout stops as on Ctrl-C: its run is
        # interrupted at once, not left `running` for the next run to notice
        ("pull", [], _SIGTERM),
        pytest.param("report", ["--refresh"], _SIGTERM, marks=pytest.mark.slow),
    ],
    ids=["reconcile-ctrl-c", "pull-ctrl-c", "report-ctrl-c", "pull-sigterm", "report-sigterm"],
)
def test_a_stop_mid_pull_says_so_in_one_line_and_records_the_run_as_interrupted(
    command: str,
    options: list[str],
    stop: tuple[signal.Signals, str, str],
    tmp_path: Path,
    new_store_url: Any,
    dataset: dict[str, Any],
) -> None:
    sig, last_line, word = stop
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    with served(tmp_path / "s", data, store, faults="latency=300ms", push=PUSH) as (config, _):
        victim = _start(config, command, *options)
        _wait_until(lambda: _started(store), victim)
        time.sleep(0.5)  # inside the pull
        err = _stop(victim, sig).decode()
        assert err.splitlines()[-1] == last_line, err
        run = _latest(store, command)
        assert run.status is RunStatus.INTERRUPTED, run
        assert run.finished_at is not None and word in (run.error or "")


@pytest.mark.parametrize("options", [["--yes"], ["--dry-run"]], ids=["apply", "dry-run"])
def test_a_reconcile_stopped_by_ctrl_c_in_its_pull_records_that_it_wrote_nothing(
    options: list[str], tmp_path: Path, new_store_url: Any, dataset: dict[str, Any]
) -> None:
    """Not "the next run resumes from the journal": no apply began, there is none to resume."""
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    with served(tmp_path / "s", data, store, faults="latency=300ms", push=PUSH) as (config, _):
        victim = _start(config, "reconcile", *options)
        _wait_until(lambda: _started(store), victim)
        time.sleep(0.5)  # inside the pull
        _stop(victim)
        run = _latest(store, "reconcile")
    assert run.status is RunStatus.INTERRUPTED, run
    assert run.error == "interrupted (Ctrl-C) before writing to any CRM: run it again", run


def test_ctrl_c_mid_pull_of_thousands_of_deals_exits_at_once(
    tmp_path: Path, new_store_url: Any
) -> None:
    # Thousands of deals per CRM: more pages than a pull holds between reading and saving,
    # so the readers still have pages to hand over when Ctrl-C stops the saving.
    data = tmp_path / "dataset.json"
    save_dataset(data, generate(2500, 3)[0])
    store = new_store_url("sqlite")
    with served(tmp_path / "s", data, store, faults="latency=300ms") as (config, _):
        victim = _start(config, "pull", "--full")
        _wait_until(lambda: _started(store), victim)
        time.sleep(0.5)  # inside the pull, every CRM still being read
        victim.send_signal(signal.SIGINT)
        try:
            _out, err = victim.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            victim.kill()
            victim.communicate()
            pytest.fail("crmsync pull still running 20 s after Ctrl-C")
        assert victim.returncode == 1 and b"Traceback" not in err, err
        assert err.decode().splitlines()[-1] == "crmsync: error: interrupted (Ctrl-C)"
        assert _latest(store, "pull").status is RunStatus.INTERRUPTED


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_a_stopped_apply_is_recorded_as_interrupted_with_what_it_wrote_and_a_rerun_finishes(
    sig: signal.Signals, tmp_path: Path, new_store_url: Any, dataset: dict[str, Any]
) -> None:
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    plan = tmp_path / "plan.json"
    with served(tmp_path / "s", data, store, faults="latency=150ms", push=PUSH) as (config, info):
        args = [
            *CRMSYNC,
            "reconcile",
            "--config",
            str(config),
            "--dry-run",
            "--plan-out",
            str(plan),
        ]
        subprocess.run(args, env=crmsync_env(), capture_output=True, check=True, timeout=120)
        victim = _start(config, "apply", str(plan), "--yes")
        _wait_until(lambda: http_writes(info) > 0 and _audited(store) > 0, victim)
        _stop(victim, sig)
        run = _latest(store, "apply")
        assert run.status is RunStatus.INTERRUPTED, run
        assert run.finished_at is not None
        assert ("Ctrl-C" if sig is signal.SIGINT else "SIGTERM") in (run.error or "")
        # `crmsync runs` counts what it wrote, as `rollback` of the run lists it
        assert run.counts["totals"]["applied"] == _audited(store, run.id), run.counts
        rerun = subprocess.run([*CRMSYNC, "apply", str(plan), "--config", str(config), "--yes"],
                               env=crmsync_env(), capture_output=True, timeout=300)  # fmt: skip
        assert rerun.returncode in (0, 1), rerun.stderr  # 1: creates with an unknown owner
        assert _latest(store, "apply").status in (RunStatus.OK, RunStatus.PARTIAL)


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_ctrl_c_of_a_reconcile_mid_apply_records_what_it_wrote(
    tmp_path: Path, new_store_url: Any, dataset: dict[str, Any]
) -> None:
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    with served(tmp_path / "s", data, store, faults="latency=150ms", push=PUSH) as (config, info):
        victim = _start(config, "reconcile", "--yes")
        _wait_until(lambda: http_writes(info) > 0 and _audited(store) > 0, victim)
        _stop(victim)
    run = _latest(store, "reconcile")
    assert run.status is RunStatus.INTERRUPTED, run
    assert run.counts["changes"] > 0  # what it planned, and what it wrote of that
    assert run.counts["applied"]["applied"] == _audited(store, run.id), run.counts


def test_a_reconcile_killed_with_kill_9_is_recorded_as_interrupted_by_the_next_one(
    tmp_path: Path, new_store_url: Any, dataset: dict[str, Any]
) -> None:
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    with served(tmp_path / "s", data, store, faults="latency=300ms", push=PUSH) as (config, _):
        victim = _start(config, "reconcile", "--yes")
        _wait_until(lambda: _started(store), victim)
        victim.kill()
        victim.wait(timeout=30)
        killed = _latest(store, "reconcile")
        assert killed.status is RunStatus.RUNNING  # nothing could record its end
        rerun = subprocess.run([*CRMSYNC, "reconcile", "--config", str(config), "--dry-run"],
                               env=crmsync_env(), capture_output=True, timeout=300)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
    with Store.open(store) as opened:
        killed = opened.runs.get(killed.id)
    assert killed is not None and killed.status is RunStatus.INTERRUPTED, killed
    assert killed.finished_at is not None and "killed" in (killed.error or "")


def _at_the_question(config: Path, answer: bytes | None) -> tuple[int, str]:
    """`crmsync reconcile` on a terminal (a pseudo-terminal) asked to confirm its writes:
    `answer` typed at the question, or (None) Ctrl-C there; its exit code and all it drew."""
    import pty

    main_fd, side_fd = pty.openpty()
    process = subprocess.Popen(
        [*CRMSYNC, "reconcile", "--config", str(config)], env=crmsync_env(),
        stdin=side_fd, stdout=subprocess.DEVNULL, stderr=side_fd,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(side_fd)
    drawn = bytearray()
    try:
        while b"to the CRMs?" not in drawn:
            assert process.poll() is None, drawn.decode(errors="replace")
            drawn += os.read(main_fd, 65536)
        os.set_blocking(main_fd, False)
        settled = time.monotonic() + 0.5  # into the read of the answer
        while time.monotonic() < settled:
            try:
                drawn += os.read(main_fd, 65536)
            except BlockingIOError:
                time.sleep(0.02)
        os.set_blocking(main_fd, True)
        if answer is None:
            process.send_signal(signal.SIGINT)
        else:
            os.write(main_fd, answer)
        deadline = time.monotonic() + 60
        while chunk := _read_rest(main_fd):  # read on: a full terminal would block its writes
            drawn += chunk
            assert time.monotonic() < deadline, drawn.decode(errors="replace")
        code = process.wait(timeout=60)
    finally:
        os.close(main_fd)
        if process.poll() is None:
            process.kill()
    return code, drawn.decode(errors="replace")


def _read_rest(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal closed with the process
        return b""


@pytest.mark.parametrize(
    ("answer", "code", "status", "error"),
    [
        (None, 1, RunStatus.INTERRUPTED,
         "interrupted (Ctrl-C) before writing to any CRM: run it again"),
        (b"\x04", 2, RunStatus.FAILED, "not confirmed: "),  # Ctrl-D: the end of input
    ],
    ids=["ctrl-c", "end-of-input"],
)  # fmt: skip
def test_ctrl_c_at_the_confirmation_question_is_an_interrupt_recorded_so_and_writes_nothing(
    answer: bytes | None,
    code: int,
    status: RunStatus,
    error: str,
    tmp_path: Path,
    new_store_url: Any,
    dataset: dict[str, Any],
) -> None:
    """It was click's "Aborted!", and a run recorded failed without a word."""
    data = tmp_path / "dataset.json"
    save_dataset(data, dataset)
    store = new_store_url("sqlite")
    push = {**PUSH, "confirm_above": 1}
    with served(tmp_path / "s", data, store, push=push) as (config, info):
        exited, drawn = _at_the_question(config, answer)
        assert http_writes(info) == 0
    last = [line for line in drawn.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert exited == code, drawn
    assert "Aborted!" not in drawn, drawn
    run = _latest(store, "reconcile")
    assert run.status is status, run
    assert (run.error or "").startswith(error), run
    if answer is None:
        assert last.endswith("crmsync: error: interrupted (Ctrl-C)"), drawn
