"""`crmsync report` counts the differences a read-only CRM holds (an instance `push.targets`
leaves out) in its cross-system mismatches, as it does every other: its copies get no change,
yet they disagree with the others. It used to count only the plan's changes and conflicts, so a
read-only Pipedrive's differing values (often the very CRM being migrated away from) were
missing from the mismatched deals, the mismatch table and `mismatch_rate`.

The generator's four-deal world in all three CRMs (seed 7), its planted HubSpot differences
taken back and its Ironclad deal left out; then, with Salesforce and HubSpot the push targets:
- Sterling Cooper: Pipedrive's amount is 2100, the others' 1950.73, Salesforce's copy the newest
  (`newest` decides its value): nothing is planned, Pipedrive keeps its own;
- Adventure Works: Salesforce's close date moved to 06-20, its copy the newest: HubSpot gets
  it, Pipedrive keeps 06-15;
- Monarch and Gekko: equal in every CRM.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

IRONCLAD = "Ironclad LLC"
STERLING, ADVENTURE = "0065g0000000004AAA", "0065g0000000005AAA"  # Salesforce ids
READ_ONLY = "read-only: not in push.targets"
# Only the mismatch rate decides the exit code: 2 deals of 4 breach it, 1 of 4 would not.
THRESHOLDS = {"mismatch_rate": 0.4, "stale_share": None, "min_completeness": None}


def _by_account(deals: list[dict[str, Any]], name_of: Any) -> dict[str, dict[str, Any]]:
    return {name_of(d).split(" — ")[0]: d for d in deals}


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    salesforce = _by_account(dataset["salesforce"]["Opportunity"], lambda d: d["Name"])
    hubspot = _by_account(dataset["hubspot"]["deals"], lambda d: d["properties"]["dealname"])
    pipedrive = _by_account(dataset["pipedrive"]["deals"], lambda d: d["title"])
    for deals, name_of in (
        (dataset["salesforce"]["Opportunity"], lambda d: d["Name"]),
        (dataset["hubspot"]["deals"], lambda d: d["properties"]["dealname"]),
        (dataset["pipedrive"]["deals"], lambda d: d["title"]),
    ):
        deals[:] = [d for d in deals if not name_of(d).startswith(IRONCLAD)]
    # the planted differences, taken back
    hubspot["Gekko LLC"]["properties"]["deal_currency_code"] = "USD"
    hubspot["Sterling Cooper SA"]["properties"]["closedate"] = "2026-02-08T00:00:00Z"
    hubspot["Adventure Works Holdings"]["properties"]["amount"] = "11500"
    # this test's
    pipedrive["Sterling Cooper SA"]["value"] = 2100.0
    salesforce["Adventure Works Holdings"]["CloseDate"] = "2026-06-20"
    pipedrive["Adventure Works Holdings"]["update_time"] = "2025-12-26 05:00:00"
    return dataset


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("read-only-mismatches")
    sandbox_env = make_env(
        folder,
        _dataset(),
        f"sqlite:///{folder}/store.db",
        push={"targets": ["salesforce", "hubspot"]},
        report={"thresholds": THRESHOLDS},
    )
    try:
        pulled = run_crmsync("pull", "--config", str(sandbox_env.config), "--format", "table")
        assert pulled.returncode == 0, pulled.stderr
        yield sandbox_env
    finally:
        sandbox_env.sandbox.stop()


def _report(env: SandboxEnv, fmt: str, *args: str) -> tuple[int, str]:
    done = run_crmsync("report", "--config", str(env.config), "--format", fmt, *args)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, done.stdout


@pytest.fixture(scope="module")
def report(env: SandboxEnv) -> tuple[int, dict[str, Any]]:
    code, text = _report(env, "json")
    return code, json.loads(text)


def _rows(cross: dict[str, Any]) -> set[tuple[str, str, str, str, str | None, str | None]]:
    return {
        (m["entity"], m["kind"], m["field"], m["system"], m["value_from"], m["value_to"])
        for m in cross["mismatches"]
    }


def test_a_read_only_crms_differences_are_mismatches_and_breach_the_mismatch_rate(
    report: tuple[int, dict[str, Any]],
) -> None:
    code, body = report
    cross = body["cross_system"]
    sterling, adventure = f"salesforce:{STERLING}", f"salesforce:{ADVENTURE}"
    # the two deals equal in every CRM are not counted
    assert (cross["mismatched_entities"], cross["entities"]) == (2, 4)
    assert cross["mismatches_by_field"] == {"amount": 1, "close_date": 1}
    assert _rows(cross) == {
        (sterling, "kept", "amount", "pipedrive", "2100", "1950.73"),
        (adventure, "change", "close_date", "hubspot", "2026-06-15", "2026-06-20"),
        (adventure, "kept", "close_date", "pipedrive", "2026-06-15", "2026-06-20"),
    }
    kept = {m["reason"] for m in cross["mismatches"] if m["kind"] == "kept"}
    assert kept == {READ_ONLY}
    [rate] = body["thresholds"]
    assert (rate["name"], rate["value"], rate["breached"]) == ("mismatch_rate", "0.5000", True)
    assert code == 3


def test_the_table_the_page_and_the_csv_show_the_read_only_crms_mismatches_as_the_json(
    env: SandboxEnv, tmp_path: Path
) -> None:
    _, table = _report(env, "table")
    assert re.search(r"mismatched entities\s*│?\s*2 of 4", table), table
    _report(env, "html", "--out", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert '<th>mismatched entities</th><td class="num">2 of 4</td>' in page
    assert page.count(READ_ONLY) == 2
    _, text = _report(env, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    kept = [(r["system"], r["field"], r["reason"]) for r in rows if r["kind"] == "kept"]
    assert sorted(kept) == [
        ("pipedrive", "amount", READ_ONLY),
        ("pipedrive", "close_date", READ_ONLY),
    ]
