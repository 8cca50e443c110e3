"""A third-party connector kind, installed as its own distribution with a `crmsync.connectors`
entry point and its own mapping (tests/e2e/toycrm_plugin.py), reconciles with the HubSpot
sandbox through the CLI: `check` finds it connected and mapped, its deals are matched, a
difference is planned and written to each side and rolled back, a deal only one side holds is
copied to the other, and its secret stays out of the output and the store."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.plugins import install_plugin
from tests.sandbox_env import CRMSYNC, ROOT, SandboxEnv, crmsync_env, make_env

SECRET = "toy-canary-7f3e9a1c"
FUNNEL = ("lead", "qualified", "proposal", "negotiation", "won", "lost")


def _hubspot_deals(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """Three open deals of the default pipeline, each last changed on a day of its own."""
    deals = [
        d
        for d in dataset["hubspot"]["deals"]
        if d["properties"]["pipeline"] == "default"
        and d["properties"]["hs_is_closed"] == "false"
        and d["properties"].get("amount")
    ][:3]
    for deal, day in zip(deals, ("2026-01-10", "2026-03-10", "2026-03-11"), strict=True):
        deal["properties"]["hs_lastmodifieddate"] = deal["updatedAt"] = f"{day}T09:00:00.000Z"
        deal["properties"]["hs_forecast_probability"] = "0.5"
    dataset["hubspot"]["deals"] = deals
    return deals


def _toy_crm(
    hubspot: list[dict[str, Any]], stage_map: dict[str, str], owners: list[dict[str, Any]]
) -> dict[str, Any]:
    """The toy CRM's copies of the first two HubSpot deals: the first one's amount changed there
    since (newer), the second one's close date older than HubSpot's change of it; and T3, a
    deal HubSpot does not hold."""
    deals = []
    for n, (deal, modified) in enumerate(
        zip(hubspot[:2], ("2026-02-10", "2026-01-01"), strict=True)
    ):
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
    only = {**deals[0], "id": "T3", "title": "Toy-only deal", "stage": "qualified"}
    deals.append({**only, "amount": "99", "close": "2031-01-31", "hubspot_id": None})
    return {
        "api_key": SECRET,
        "pipelines": [{"id": "main", "label": "Main", "stages": list(FUNNEL)}],
        "owners": [{"id": o["id"], "email": o["email"]} for o in owners if o.get("email")],
        "deals": deals,
    }


@dataclass
class ToyWorld:
    """The HubSpot sandbox, the installed toy CRM plugin and a config naming both."""

    env: SandboxEnv
    hubspot: list[dict[str, Any]]  # its deals as seeded
    toy: dict[str, Any]  # the toy CRM as seeded
    toy_file: Path
    store: Path
    run_env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    def crmsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CRMSYNC, *args, "--config", str(self.env.config)],
                              env=self.run_env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        self.outputs.append(done.stdout + done.stderr)
        return done

    def configure(self, **push: Any) -> None:
        config = yaml.safe_load(self.env.config.read_text())
        config["push"].update(push)
        self.env.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def hubspot_now(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.env.sandbox.servers["hubspot"].emulator.dump()["deals"]}

    def toy_now(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in json.loads(self.toy_file.read_text())["deals"]}

    def assert_secret_kept(self) -> None:
        assert not [out for out in self.outputs if SECRET in out]
        assert SECRET.encode() not in self.store.read_bytes()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ToyWorld]:
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
        yield ToyWorld(env, hubspot, toy, toy_file, store, run_env)
    finally:
        env.sandbox.stop()


def test_a_plugin_kind_is_reconciled_with_hubspot_through_the_cli(world: ToyWorld) -> None:
    hubspot = world.hubspot
    checked = world.crmsync("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok: toy: connected, deals readable, 1 pipeline(s)" in checked.stdout

    planned = world.crmsync("reconcile", "--dry-run", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    changes = {(c["system"], c["id"], c["field"], c["to"]) for c in plan["changes"]}
    assert changes == {
        ("hubspot", hubspot[0]["id"], "amount", "4321.5"),
        ("toy", "T2", "close_date", hubspot[1]["properties"]["closedate"][:10]),
    }, plan
    unmatched = {(u["system"], u["id"]) for u in plan["unmatched"]}
    assert unmatched == {("hubspot", hubspot[2]["id"]), ("toy", "T3")}, plan
    assert not plan["errors"] and not plan["conflicts"], plan

    applied = world.crmsync("reconcile", "--yes", "--format", "json")
    assert applied.returncode == 0, applied.stderr
    assert world.hubspot_now()[hubspot[0]["id"]]["properties"]["amount"] == "4321.5"
    assert world.toy_now()["T2"]["close"] == hubspot[1]["properties"]["closedate"][:10]

    again = world.crmsync("reconcile", "--dry-run", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changes"] == []

    runs = world.crmsync("runs", "--format", "json")
    [run] = [r["id"] for r in json.loads(runs.stdout) if r["kind"] == "reconcile"]
    undone = world.crmsync("rollback", run, "--apply", "--yes")
    assert undone.returncode == 0, undone.stderr
    back = world.hubspot_now()[hubspot[0]["id"]]["properties"]
    assert back["amount"] == hubspot[0]["properties"]["amount"]
    assert world.toy_now()["T2"]["close"] == world.toy["deals"][1]["close"]
    world.assert_secret_kept()


def test_a_deal_one_side_lacks_is_copied_to_and_from_the_plugin_kind(world: ToyWorld) -> None:
    world.configure(create_missing=True)
    missing = world.hubspot[2]
    planned = world.crmsync("reconcile", "--dry-run", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    creates = {(c["system"], c["source"]["id"]) for c in plan["creates"]}
    assert creates == {("toy", missing["id"]), ("hubspot", "T3")}, plan
    assert not plan["errors"], plan

    applied = world.crmsync("reconcile", "--yes", "--format", "json")
    assert applied.returncode == 0, applied.stderr
    [copy] = [d for d in world.toy_now().values() if d.get("hubspot_id") == missing["id"]]
    assert (copy["title"], copy["amount"]) == (
        missing["properties"]["dealname"],
        missing["properties"]["amount"],
    )
    assert copy["crmsync_id"]  # the link marker a retried create is found by
    names = [d["properties"]["dealname"] for d in world.hubspot_now().values()]
    assert names.count("Toy-only deal") == 1

    again = world.crmsync("reconcile", "--dry-run", "--format", "json")
    assert again.returncode == 0, again.stderr
    plan = json.loads(again.stdout)
    assert (plan["creates"], plan["changes"], plan["unmatched"]) == ([], [], []), plan
    world.assert_secret_kept()


def test_a_plugin_mapper_version_bump_reads_its_deals_again(world: ToyWorld) -> None:
    assert world.crmsync("pull").returncode == 0
    site = Path(world.run_env["PYTHONPATH"].split(":")[0])
    module = site / "crmsync_toycrm.py"
    source = module.read_text()
    declared = "        status_in_stage=True,\n    )"  # the end of its KindMapping(...)
    assert source.count(declared) == 1
    module.write_text(
        source.replace(declared, "        status_in_stage=True,\n        version=2,\n    )")
    )

    pulled = world.crmsync("pull")

    assert pulled.returncode == 0, pulled.stderr
    assert (
        "toy: reading everything: crmsync maps toycrm deals otherwise since the last pull "
        "(mapper version 1 to 2: the toycrm plugin was upgraded)"
    ) in pulled.stderr, pulled.stderr
    assert "hubspot: reading everything" not in pulled.stderr


def test_a_report_over_a_plugin_that_no_longer_imports_names_its_instance(
    world: ToyWorld,
) -> None:
    assert world.crmsync("pull").returncode == 0
    site = Path(world.run_env["PYTHONPATH"].split(":")[0])
    (site / "crmsync_toycrm.py").write_text("import toycrm_sdk_not_installed  # noqa: F401\n")

    reported = world.crmsync("report", "--format", "json")

    assert (reported.returncode, reported.stdout) == (2, ""), reported.stderr
    assert reported.stderr == (
        "crmsync: error: systems.toy: the connector of kind 'toycrm' (crmsync_toycrm:ToyCrm) "
        "could not be loaded: ModuleNotFoundError: No module named 'toycrm_sdk_not_installed'\n"
    )
