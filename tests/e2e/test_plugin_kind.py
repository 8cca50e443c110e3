"""A third-party connector kind, installed as its own distribution with a `crmsync.connectors`
entry point and its own mapping (tests/e2e/toycrm_plugin.py), reconciles with the HubSpot
sandbox through the CLI: `check` finds it connected and mapped, its deals are matched, a
difference is planned and written to each side and rolled back, and its secret stays out of
the output and the store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from connectors.sandbox.generator import generate
from tests.plugins import install_plugin
from tests.sandbox_env import CRMSYNC, ROOT, crmsync_env, make_env

SECRET = "toy-canary-7f3e9a1c"
FUNNEL = ("lead", "qualified", "proposal", "negotiation", "won", "lost")


def _hubspot_deals(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """Two open deals of the default pipeline, each last changed on a day of its own."""
    deals = [
        d
        for d in dataset["hubspot"]["deals"]
        if d["properties"]["pipeline"] == "default"
        and d["properties"]["hs_is_closed"] == "false"
        and d["properties"].get("amount")
    ][:2]
    for deal, day in zip(deals, ("2026-01-10", "2026-03-10"), strict=True):
        deal["properties"]["hs_lastmodifieddate"] = deal["updatedAt"] = f"{day}T09:00:00.000Z"
        deal["properties"]["hs_forecast_probability"] = "0.5"
    dataset["hubspot"]["deals"] = deals
    return deals


def _toy_crm(
    hubspot: list[dict[str, Any]], stage_map: dict[str, str], owners: list[dict[str, Any]]
) -> dict[str, Any]:
    """The toy CRM's copies of the HubSpot deals: the first one's amount changed there since
    (newer), the second one's close date older than HubSpot's change of it."""
    deals = []
    for n, (deal, modified) in enumerate(zip(hubspot, ("2026-02-10", "2026-01-01"), strict=True)):
        props = deal["properties"]
        deals.append(
            {
                "id": f"T{n + 1}",
                "title": props["dealname"],
                "pipeline": "main",
                "stage": stage_map[props["dealstage"]],
                "amount": props["amount"],
                "currency": props["deal_currency_code"],
                "close": props["closedate"][:10],
                "owner": props["hubspot_owner_id"],
                "probability": "0.5",
                "created": "2025-01-01T00:00:00Z",
                "modified": f"{modified}T00:00:00Z",
                "hubspot_id": deal["id"],
            }
        )
    deals[0]["amount"] = "4321.5"
    deals[1]["close"] = "2030-06-30"
    return {
        "api_key": SECRET,
        "pipelines": [{"id": "main", "label": "Main", "stages": list(FUNNEL)}],
        "owners": [{"id": o["id"], "email": o["email"]} for o in owners if o.get("email")],
        "deals": deals,
    }


def test_a_plugin_kind_is_reconciled_with_hubspot_through_the_cli(tmp_path: Path) -> None:
    site = tmp_path / "site"
    source = (Path(__file__).parent / "toycrm_plugin.py").read_text()
    install_plugin(site, "crmsync-toycrm", {"toycrm": "crmsync_toycrm:ToyCrm"},
                   {"crmsync_toycrm": source})  # fmt: skip
    dataset, _ = generate(20, 5)
    hubspot = _hubspot_deals(dataset)
    store = tmp_path / "store.db"
    env = make_env(tmp_path, {"hubspot": dataset["hubspot"]}, f"sqlite:///{store}",
                   systems=("hubspot",))  # fmt: skip
    try:
        config = yaml.safe_load(env.config.read_text())
        stage_map = config["systems"]["hubspot"]["stage_map"]["default"]
        config["systems"]["toy"] = {
            "kind": "toycrm",
            "credentials": {"api_key": "${TOYCRM_KEY}"},
            "stage_map": {"main": {key: key for key in FUNNEL}},
            "external_ids": {"hubspot": "hubspot_id"},
            "link_field": "crmsync_id",
        }
        config["push"]["targets"] = ["hubspot", "toy"]
        env.config.write_text(yaml.safe_dump(config, sort_keys=False))
        toy_file = tmp_path / "toycrm.json"
        toy = _toy_crm(hubspot, stage_map, dataset["hubspot"]["owners"])
        toy_file.write_text(json.dumps(toy))
        run_env = {
            **crmsync_env(),
            "PYTHONPATH": f"{site}:{ROOT}",
            "TOYCRM_FILE": str(toy_file),
            "TOYCRM_KEY": SECRET,
        }

        def crmsync(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*CRMSYNC, *args, "--config", str(env.config)], env=run_env,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip

        checked = crmsync("check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "ok: toy: connected, deals readable, 1 pipeline(s)" in checked.stdout

        planned = crmsync("reconcile", "--dry-run", "--format", "json")
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        changes = {(c["system"], c["id"], c["field"], c["to"]) for c in plan["changes"]}
        assert changes == {
            ("hubspot", hubspot[0]["id"], "amount", "4321.5"),
            ("toy", "T2", "close_date", hubspot[1]["properties"]["closedate"][:10]),
        }, plan
        assert not plan["unmatched"] and not plan["errors"] and not plan["conflicts"], plan

        applied = crmsync("reconcile", "--yes", "--format", "json")
        assert applied.returncode == 0, applied.stderr
        written = {d["id"]: d for d in env.sandbox.servers["hubspot"].emulator.dump()["deals"]}
        assert written[hubspot[0]["id"]]["properties"]["amount"] == "4321.5"
        held = {d["id"]: d for d in json.loads(toy_file.read_text())["deals"]}
        assert held["T2"]["close"] == hubspot[1]["properties"]["closedate"][:10]

        again = crmsync("reconcile", "--dry-run", "--format", "json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["changes"] == []

        runs = crmsync("runs", "--format", "json")
        [run] = [r["id"] for r in json.loads(runs.stdout) if r["kind"] == "reconcile"]
        undone = crmsync("rollback", run, "--apply", "--yes")
        assert undone.returncode == 0, undone.stderr
        back = {d["id"]: d for d in env.sandbox.servers["hubspot"].emulator.dump()["deals"]}
        assert back[hubspot[0]["id"]]["properties"]["amount"] == hubspot[0]["properties"]["amount"]
        assert {d["id"]: d for d in json.loads(toy_file.read_text())["deals"]}["T2"]["close"] == (
            toy["deals"][1]["close"]
        )
    finally:
        env.sandbox.stop()
    for done in (checked, planned, applied, again, runs, undone):
        assert SECRET not in done.stdout + done.stderr
    assert SECRET.encode() not in store.read_bytes()
