"""`crmsync check` says when a schedule entry's last run failed or was partial (a revoked token,
writes a CRM refused): a problem line naming the run, when it started and its error, and exit
1, since nobody reads a nightly job's own exit code. A run stopped on request stays ok."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from sync.store import Store
from tests.sandbox_env import run_crmsync
from tests.schedule.conftest import WriteConfig

NIGHTLY_PLAN = {"name": "nightly-plan", "cron": "0 2 * * *", "job": "reconcile-dry-run"}
NIGHTLY_APPLY = {"name": "nightly-apply", "cron": "30 2 * * *", "job": "reconcile"}


def _check(config: Path, entry: str) -> tuple[int, list[str], str]:
    done = run_crmsync("check", "--config", str(config))
    lines = [line for line in done.stdout.splitlines() if f"schedule {entry}" in line]
    return done.returncode, lines, done.stdout + done.stderr


def _run_now(config: Path, entry: str) -> str:
    done = run_crmsync("schedule", "--config", str(config), "--run-now", entry)
    assert done.returncode != 0, done.stderr  # the run did not do its work
    return done.stderr


def _only_run(url: str, job: str) -> Any:
    with Store.open(url) as store:
        (run,) = store.runs.recent(job=job)
        return run


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_last_run_that_failed_is_a_problem_naming_the_run_and_its_error(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path], dialect: str
) -> None:
    url = new_store_url(dialect)
    config = write_config(url, NIGHTLY_PLAN)
    doc = yaml.safe_load(config.read_text())
    token = doc["systems"]["pipedrive"]["credentials"]["api_token"]
    revoked = {**doc, "systems": {**doc["systems"]}}
    revoked["systems"]["pipedrive"] = {
        **doc["systems"]["pipedrive"], "credentials": {"api_token": "revoked-0123456789abcdef"},
    }  # fmt: skip
    config.write_text(yaml.safe_dump(revoked, sort_keys=False))
    _run_now(config, "nightly-plan")
    run = _only_run(url, "nightly-plan")
    assert run.status.value == "failed" and run.error, run
    config.write_text(yaml.safe_dump(doc, sort_keys=False))  # the token fixed: CRMs check ok

    code, lines, out = _check(config, "nightly-plan")

    assert code == 1, out
    assert len(lines) == 1, out
    started = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    assert lines[0] == (
        f"problem: schedule nightly-plan: its last run ({run.id}, started {started}) failed: "
        f"{run.error}"
    ), out
    assert "rejected the API token" in lines[0], out
    assert token not in out and "revoked-0123456789abcdef" not in out


def test_a_last_run_that_was_partial_is_a_problem(
    new_store_url: Callable[[str], str], own_sandbox: Sandbox, write_own_config: WriteConfig
) -> None:
    url = new_store_url("sqlite")
    config = write_own_config(url, NIGHTLY_APPLY)
    for server in own_sandbox.servers.values():
        server.faults.set(Faults(record_fail=0.5, seed=3))
    _run_now(config, "nightly-apply")
    for server in own_sandbox.servers.values():
        server.faults.set(Faults())
    run = _only_run(url, "nightly-apply")
    assert run.status.value == "partial", run

    code, lines, out = _check(config, "nightly-apply")

    assert code == 1, out
    assert len(lines) == 1, out
    assert lines[0].startswith(
        f"problem: schedule nightly-apply: its last run ({run.id}, started "
    ), out
    assert lines[0].endswith(f") was partial: {run.error}"), out
    assert "change(s) not applied" in lines[0], out


def test_the_error_check_shows_of_a_failed_run_masks_the_configs_secrets(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    """A run recorded by another crmsync or a plugin may hold a token: check's line, read in
    monitoring mails and chats, never does."""
    url = new_store_url("sqlite")
    config = write_config(url, NIGHTLY_PLAN)
    token = yaml.safe_load(config.read_text())["systems"]["hubspot"]["credentials"]
    token = token["access_token"]
    with Store.open(url) as store:
        run = store.runs.start("nightly-plan", "reconcile-dry-run")
        leaked = f"hubspot said 401 to {token}; store postgresql://crm:hunter2@db/crm"
        store.runs.finish(run, "failed", error=leaked)

    code, lines, out = _check(config, "nightly-plan")

    assert code == 1 and len(lines) == 1, out
    assert token not in out and "hunter2" not in out
    assert lines[0].endswith("failed: hubspot said 401 to ***; store postgresql://crm:***@db/crm")


def test_a_run_stopped_on_request_is_no_problem_of_its_entry(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    url = new_store_url("sqlite")
    config = write_config(url, NIGHTLY_PLAN)
    with Store.open(url) as store:
        run = store.runs.start("nightly-plan", "reconcile-dry-run")
        store.runs.finish(run, "interrupted", error="stopped on request (SIGTERM)")

    code, lines, out = _check(config, "nightly-plan")

    assert code == 0, out
    assert len(lines) == 1 and lines[0].startswith("ok: schedule nightly-plan: last run "), out
    assert " (interrupted); next firing " in lines[0], out


def test_a_failure_stays_a_problem_until_a_run_of_the_entry_ends_ok(
    new_store_url: Callable[[str], str], write_config: Callable[..., Path]
) -> None:
    """A run stopped on request after the failure says nothing of its cause: the failure is
    still the entry's news; one that ends ok is."""
    url = new_store_url("sqlite")
    config = write_config(url, NIGHTLY_PLAN)
    now = datetime.now(UTC)
    ended = {}
    for minutes, status in ((3, "failed"), (2, "interrupted"), (1, "ok")):
        with Store.open(url, clock=lambda m=minutes: now - timedelta(minutes=m)) as store:
            run = store.runs.start("nightly-plan", "reconcile-dry-run")
            store.runs.finish(run, status, error=None if status == "ok" else f"{status}: why")
        ended[status] = run
        code, lines, out = _check(config, "nightly-plan")
        if status == "ok":
            assert code == 0 and lines[0].startswith("ok: schedule nightly-plan: "), out
        else:
            assert code == 1 and len(lines) == 1, out
            assert f"its last run ({ended['failed']}, started " in lines[0], out
            assert lines[0].endswith(") failed: failed: why"), out
