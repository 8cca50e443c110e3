"""A deal without an amount in Salesforce whose Pipedrive copy holds 0 (Pipedrive's "no value")
agrees: the reconcile wrote Amount 0 into Salesforce. Served by the sandboxes, pulled through
the official client libraries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.sandbox.generator import generate
from tests.sandbox_env import make_env, run_crmsync


def _without_amount(dataset: dict[str, Any]) -> set[str]:
    """Empties the amount of the first deal in both CRMs (Salesforce: null, Pipedrive: 0);
    returns their ids."""
    titles = {d["title"]: d for d in dataset["pipedrive"]["deals"] if d.get("value")}
    opportunity = next(
        o for o in dataset["salesforce"]["Opportunity"] if o.get("Amount") and o["Name"] in titles
    )
    deal = titles[opportunity["Name"]]
    opportunity["Amount"], deal["value"] = None, 0
    return {opportunity["Id"], str(deal["id"])}


def test_an_empty_amount_and_pipedrives_0_agree(tmp_path: Path) -> None:
    dataset, _ = generate(40, 3)
    ids = _without_amount(dataset)
    world = {name: dataset[name] for name in ("salesforce", "pipedrive")}
    env = make_env(tmp_path, world, f"sqlite:///{tmp_path}/s.db", systems=tuple(world))
    try:
        args = ("reconcile", "--config", str(env.config), "--dry-run", "--format", "json")
        done = run_crmsync(*args)
    finally:
        env.sandbox.stop()
    assert done.returncode in (0, 3), done.stderr
    plan = json.loads(done.stdout)
    assert plan["changes"], "the generated data differs elsewhere"
    assert not [c for c in plan["changes"] if c["id"] in ids], plan["changes"]
    assert not [e for e in plan["errors"] if e["id"] in ids], plan["errors"]
