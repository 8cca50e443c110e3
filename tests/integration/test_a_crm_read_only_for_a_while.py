"""A CRM made read-only for a while (left out of `push.targets`), as a user's walkthrough did:
what the report, the plan and the next runs say about it.

The generator's four-deal world in all three CRMs (seed 7), Ironclad in Salesforce only. Every
CRM a target, a reconcile makes the copies agree; then HubSpot is left out of `push.targets`,
Monarch's amount is edited in Salesforce (54300 -> 17777) and a reconcile copies it to
Pipedrive, HubSpot keeping 54300.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

MONARCH, IRONCLAD = "Monarch Ltd", "Ironclad LLC"
READ_ONLY = ["salesforce", "pipedrive"]  # HubSpot left out


def _dataset() -> dict[str, Any]:
    dataset = generate(4, 7)[0]
    hubspot, pipedrive = dataset["hubspot"], dataset["pipedrive"]
    hubspot["deals"] = [
        d for d in hubspot["deals"] if not d["properties"]["dealname"].startswith(IRONCLAD)
    ]
    pipedrive["deals"] = [d for d in pipedrive["deals"] if not d["title"].startswith(IRONCLAD)]
    for opportunity in dataset["salesforce"]["Opportunity"]:
        if opportunity["Name"].startswith(IRONCLAD):  # links to none: in Salesforce only
            opportunity.update(dict.fromkeys(("HubSpot_Deal_Id__c", "Pipedrive_Deal_Id__c"), None))
    return dataset


def _config(env: SandboxEnv, name: str, **push: Any) -> Path:
    """A config of the same CRMs and store, with `push` set over its push section."""
    document = yaml.safe_load(env.config.read_text())
    document["push"].update(push)
    path = env.config.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _crmsync(*args: str) -> str:
    done = run_crmsync(*args)
    assert done.returncode in (0, 3), done.stderr
    return done.stdout


def _set_amount(env: SandboxEnv, prefix: str, amount: int) -> str:
    """A person's edit of a Salesforce Opportunity's amount; its id."""
    emulator = env.sandbox.servers["salesforce"].emulator
    with emulator.lock:
        table = emulator.store.tables["Opportunity"]
        row = next(r for r in table if r["Name"].startswith(prefix))
        emulator.store.apply(emulator.store.check_update(row["Id"], {"Amount": amount}))
        return str(row["Id"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("read-only-for-a-while")
    sandbox_env = make_env(folder, _dataset(), f"sqlite:///{folder}/store.db")
    try:
        _crmsync("reconcile", "--config", str(sandbox_env.config), "--yes")
        read_only = _config(sandbox_env, "read-only", targets=READ_ONLY)
        _set_amount(sandbox_env, MONARCH, 17777)
        plan = json.loads(
            _crmsync("reconcile", "--config", str(read_only), "--yes", "--format", "json")
        )
        assert [(c["system"], c["to"]) for c in plan["changes"]] == [("pipedrive", "17777")]
        yield sandbox_env
    finally:
        sandbox_env.sandbox.stop()


def _hubspot_id(env: SandboxEnv, prefix: str) -> str:
    emulator = env.sandbox.servers["hubspot"].emulator
    with emulator.lock:
        live = emulator.store.live
        return next(i for i, d in live.items() if d["properties"]["dealname"].startswith(prefix))


def test_the_report_shows_a_read_only_copy_the_value_the_others_agreed_on(
    env: SandboxEnv,
) -> None:
    read_only = env.config.with_name("read-only.yaml")
    body = json.loads(_crmsync("report", "--config", str(read_only), "--format", "json"))
    rows = [
        (m["kind"], m["field"], m["system"], m["id"], m["value_from"], m["value_to"], m["reason"])
        for m in body["cross_system"]["mismatches"]
    ]
    hubspot = _hubspot_id(env, MONARCH)
    assert rows == [
        ("kept", "amount", "hubspot", hubspot, "54300", "17777", "read-only: not in push.targets")
    ]


def test_back_in_push_targets_the_crm_takes_the_value_saying_it_was_not_a_target(
    env: SandboxEnv,
) -> None:
    plan = json.loads(
        _crmsync("reconcile", "--config", str(env.config), "--dry-run", "--format", "json")
    )
    changes = [(c["system"], c["field"], c["from"], c["to"], c["reason"]) for c in plan["changes"]]
    assert changes == [
        (
            "hubspot",
            "amount",
            "54300",
            "17777",
            "hubspot was not in push.targets when salesforce changed it: back to the value the "
            "others agreed on",
        )
    ]


def _on_apply(config: Path) -> str:
    """The dry run's "on apply" cell of its one unmatched deal (wrapped over lines)."""
    table = _crmsync("reconcile", "--config", str(config), "--dry-run", "--format", "table")
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Unmatched"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("└"))
    assert IRONCLAD in "".join(lines[start + 4 : end]), lines[start:end]
    return " ".join(filter(None, (line.split("│")[4].strip() for line in lines[start + 4 : end])))


def test_an_unmatched_deal_says_which_rule_keeps_it_uncopied_first_in_a_fixed_order(
    env: SandboxEnv,
) -> None:
    read_only = env.config.with_name("read-only.yaml")
    assert _on_apply(read_only) == "not copied: push.create_missing is off"
    copying = _config(
        env, "copying", targets=READ_ONLY, create_missing=True, create_from=["hubspot"]
    )
    assert _on_apply(copying) == "not copied: push.create_from leaves salesforce out"
    only_salesforce = _config(env, "only-salesforce", targets=["salesforce"], create_missing=True)
    assert _on_apply(only_salesforce) == ("not copied: hubspot, pipedrive are not in push.targets")
