"""A saved plan's amount and currency of one deal are one value: when a newer edit of the
source makes one of them outdated, neither is written (half of it would change the money's
meaning: 100 USD becoming 100 EUR)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from connectors.base import NativeUpdate
from mapping.codec import deal_from_json
from sync.cli import main
from sync.plan_json import plan_to_json
from sync.runtime import open_runtime
from tests.apply.conftest import Env


def _cli(env: Env, *args: str) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(env.config)])
    assert out.exit_code in (0, 1), out.output  # 1: what the generated data cannot map
    return out


def _edit_salesforce(env: Env, deal_id: str, values: dict[str, Any]) -> None:
    with open_runtime(str(env.config)) as rt:
        (pushed,) = rt.connectors["salesforce"].update_deals([NativeUpdate(deal_id, values)])
        assert pushed.ok, pushed


def _hubspot_money(env: Env, deal_id: str) -> tuple[str | None, str | None]:
    with open_runtime(str(env.config)) as rt:
        (record,) = rt.connectors["hubspot"].read_deals([deal_id])
    props = record["properties"]
    return props.get("amount"), props.get("deal_currency_code")


def test_a_saved_plan_writes_no_currency_without_its_outdated_amount(
    env: Env, tmp_path: Path
) -> None:
    _cli(env, "reconcile", "--yes")
    with open_runtime(str(env.config), connect=False) as rt:
        links = rt.store.links()
        ids = [d for (instance, d) in links if instance == "salesforce"]
        salesforce = {
            i: deal_from_json(p) for i, p in rt.store.get_deals("salesforce", ids).items()
        }
    members: dict[str, dict[str, str]] = {}
    for (instance, deal_id), entity in links.items():
        members.setdefault(entity, {})[instance] = deal_id
    pair = next(
        m
        for m in members.values()
        if set(m) == {"salesforce", "hubspot"}
        and (value := salesforce[m["salesforce"]].value) is not None
        and value.currency != "EUR"
        and salesforce[m["salesforce"]].status.value == "open"
    )
    before = _hubspot_money(env, pair["hubspot"])
    _edit_salesforce(env, pair["salesforce"], {"Amount": 4321.0, "CurrencyIsoCode": "EUR"})
    _cli(env, "pull")
    plan = plan_to_json(env.plan("plan-money").plan)
    mine = {c["field"]: c for c in plan["changes"] if c["id"] == pair["hubspot"]}
    assert set(mine) >= {"amount", "currency"}, plan["changes"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    time.sleep(1.1)
    _edit_salesforce(env, pair["salesforce"], {"Amount": 9876.0})  # a newer amount, still EUR
    _cli(env, "pull")

    out = _cli(env, "apply", str(path), "--yes", "--format", "json")

    results = {
        r["field"]: r for r in json.loads(out.stdout)["results"] if r["id"] == pair["hubspot"]
    }
    assert results["amount"]["outcome"] == "drifted", results
    assert results["currency"]["outcome"] == "drifted", results
    assert _hubspot_money(env, pair["hubspot"]) == before
