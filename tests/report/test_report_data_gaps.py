"""Data gaps end to end: records the Pipedrive sandbox serves that crmsync cannot map stay in the
plan's `errors` and the report's `mapping_errors` (and its `max_mapping_errors` alarm) for as
long as they are bad in the CRM, whatever incremental runs pass over them."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.generator import generate
from sync.runtime import open_runtime
from sync.store import Store
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync


def _dataset() -> dict[str, Any]:
    """1, 2: clean open deals; unmappable: 3 (a close date no calendar has), 4 (no such
    currency), 5 (a status Pipedrive does not have). The bad ones changed last before the clean
    ones, so an incremental pull (from the newest change seen) does not read them again. (API
    v2 types amounts as numbers: an amount that is no number cannot be served any more.)"""
    pipedrive = generate(3, 1)[0]["pipedrive"]
    template = pipedrive["deals"][0]
    deals = []
    bad = (
        (3, {"expected_close_date": "2024-13-01"}),
        (4, {"currency": "ZZZ"}),
        (5, {"status": "frozen"}),
    )
    for deal_id, fields in ((1, {}), (2, {}), *bad):
        record = copy.deepcopy(template)
        record.update(id=deal_id, title=f"Deal {deal_id}", value=1000, currency="USD")
        changed = "2024-01-01 00:00:00" if fields else "2024-02-01 00:00:00"
        record.update(add_time="2023-12-01 00:00:00", update_time=changed)
        record.update({"status": "open", "pipeline_id": 1, "stage_id": 1, **fields})
        deals.append(record)
    pipedrive["deals"] = deals
    pipedrive["deal_flows"] = {}
    return {"pipedrive": pipedrive}


BAD = [("3", "close_date"), ("4", "currency"), ("5", "status")]  # canonical keys
_ONLY_MAPPING_ERRORS = {
    "thresholds": {
        "mismatch_rate": None,
        "stale_share": None,
        "min_completeness": None,
        "max_mapping_errors": 0,
    }
}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SandboxEnv]:
    made = make_env(
        tmp_path,
        _dataset(),
        f"sqlite:///{tmp_path}/store.db",
        systems=("pipedrive",),
        report=_ONLY_MAPPING_ERRORS,
    )
    try:
        yield made
    finally:
        made.sandbox.stop()


def _crmsync(env: SandboxEnv, *args: str) -> tuple[int, dict[str, Any]]:
    done = run_crmsync(*args, "--config", str(env.config), "--format", "json")
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.startswith("{") else {}


def _plan_errors(env: SandboxEnv, *args: str) -> list[tuple[str, str]]:
    _, plan = _crmsync(env, "reconcile", "--dry-run", *args)
    return [(e["id"], e["field"]) for e in plan["errors"]]


def _report_errors(env: SandboxEnv) -> tuple[int, list[tuple[str, str]], list[str]]:
    code, report = _crmsync(env, "report")
    errors = [(e["id"], e["field"]) for e in report["data_quality"]["mapping_errors"]]
    return code, errors, [b["name"] for b in report["breached"]]


def _pipedrive(env: SandboxEnv, method: str, deal_id: int, body: Any = None) -> None:
    server = env.sandbox.ready_info()
    url = f"{server['pipedrive']}/v1/deals/{deal_id}"
    token = server["tokens"]["pipedrive"]
    response = requests.request(method, url, params={"api_token": token}, json=body, timeout=10)
    response.raise_for_status()


def test_unmappable_records_stay_in_the_plan_and_report_across_incremental_runs(
    env: SandboxEnv,
) -> None:
    assert _plan_errors(env) == BAD  # first run: full pull
    _pipedrive(env, "PUT", 1, {"title": "Deal 1 renamed"})
    # The next pull reads only deal 1, yet 3, 4 and 5 are still bad in Pipedrive.
    assert _plan_errors(env) == BAD
    code, errors, breached = _report_errors(env)
    assert errors == BAD
    assert (code, breached) == (3, ["max_mapping_errors"])


def test_a_record_fixed_or_deleted_in_its_crm_leaves_the_data_gaps(env: SandboxEnv) -> None:
    assert _plan_errors(env) == BAD
    _pipedrive(env, "PUT", 3, {"expected_close_date": "2024-12-01"})
    _pipedrive(env, "DELETE", 4)
    assert _plan_errors(env) == [("5", "status")]
    assert _report_errors(env) == (3, [("5", "status")], ["max_mapping_errors"])


def test_a_full_pull_keeps_a_record_that_became_unmappable_as_a_live_gap(env: SandboxEnv) -> None:
    assert _plan_errors(env) == BAD
    # The API refuses such a write; the record in the emulator turns bad as an import might.
    env.sandbox.servers["pipedrive"].emulator.store.deals[1]["expected_close_date"] = "2024-13-01"
    # Still in Pipedrive: a data gap, never a deal crmsync reports as deleted there.
    _, plan = _crmsync(env, "reconcile", "--dry-run", "--full")
    assert [(e["id"], e["field"]) for e in plan["errors"]] == [
        ("1", "close_date"),
        ("3", "close_date"),
        ("4", "currency"),
        ("5", "status"),
    ]
    with open_runtime(str(env.config), connect=False) as rt:
        url = rt.config.store_url
    with Store.open(url) as store:
        assert store.deal_count("pipedrive") == 2
