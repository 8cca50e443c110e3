"""Native stages of the copies in a sandbox world: a person moving a deal in a CRM's own screens,
what each CRM holds, a stage map leaving stages out, and crmsync run through its CLI with JSON
output."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World

__all__ = [
    "QUALIFIED",
    "cli_json",
    "held_back_for_two_nights",
    "mine",
    "moved_to_proposal_made",
    "qualified_everywhere",
    "salesforce_probability_held_back",
    "salesforce_stage",
    "set_stage",
    "stages",
    "unmap",
    "with_instance",
]

# A native stage standing for the funnel's `qualified` in each CRM's default pipeline.
QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
_PROPOSAL_MADE = 4  # Pipedrive's


def cli_json(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code in (0, 1), out.output  # 1: owners the generated data cannot map
    return json.loads(out.stdout)


def set_stage(world: World, system: str, deal_id: str, stage: str, pipeline: str = "") -> None:
    """A person moves the deal in the CRM's own screens (no API call)."""
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "salesforce":
            em.store.apply(em.store.check_update(deal_id, {"StageName": stage}))
        elif system == "hubspot":
            em.store.update(deal_id, {"pipeline": pipeline or "default", "dealstage": stage})
        else:
            body = {"pipeline_id": int(pipeline or "1"), "stage_id": int(stage), "status": "open"}
            em.store.update(int(deal_id), body)


def stages(world: World, ids: dict[str, str]) -> dict[str, tuple[str, str]]:
    """(pipeline, native stage) of each copy, as the CRMs hold them."""
    found = {}
    for system, deal_id in ids.items():
        em: Any = world.sandbox.servers[system].emulator
        with em.lock:
            if system == "salesforce":
                found[system] = ("default", em.store.by_id[deal_id]["StageName"])
            elif system == "hubspot":
                props = em.store.live[deal_id]["properties"]
                found[system] = (props["pipeline"], props["dealstage"])
            else:
                deal = em.store.deals[int(deal_id)]
                found[system] = (str(deal["pipeline_id"]), str(deal["stage_id"]))
    return found


def unmap(world: World, system: str, drop: Callable[[str, str], bool]) -> dict[str, Any]:
    """`system`'s default stage map leaves out each native stage for which `drop(native stage,
    funnel stage)` holds, and its `stage_write` goes; its instance config as it was."""
    document = yaml.safe_load(world.config.read_text())
    instance = document["systems"][system]
    was = copy.deepcopy(instance)
    mapped = instance["stage_map"]["default"]
    instance["stage_map"]["default"] = {k: v for k, v in mapped.items() if not drop(k, v)}
    instance.pop("stage_write", None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    return was


def with_instance(world: World, system: str, config: dict[str, Any]) -> None:
    """`system`'s instance config is `config` again (as `unmap` returned it)."""
    document = yaml.safe_load(world.config.read_text())
    document["systems"][system] = config
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def salesforce_stage(world: World, deal_id: str) -> tuple[str, Any]:
    """The Opportunity's stage name and probability, as Salesforce holds them."""
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[deal_id]
        return record["StageName"], record["Probability"]


def mine(items: list[dict[str, Any]], ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    """A plan's changes or errors about the copies `ids`, by (system, field)."""
    return {(i["system"], i["field"]): i for i in items if i["id"] in ids.values()}


def qualified_everywhere(world: World) -> dict[str, str]:
    """After a first sync, a person moves all three copies of a deal to `QUALIFIED` and a run
    agrees on it; the copies' ids, by system."""
    cli_json(world, "reconcile", "--yes")  # the first sync: bases are stored
    ids: dict[str, str] = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        set_stage(world, system, ids[system], stage)
    cli_json(world, "reconcile", "--yes")  # all three moved alike: agreed
    return ids


def moved_to_proposal_made(world: World, ids: dict[str, str], probability: int) -> None:
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:  # a person moves the deal to "Proposal Made" and sets its probability
        em.store.update(
            int(ids["pipedrive"]), {"stage_id": _PROPOSAL_MADE, "probability": probability}
        )


def salesforce_probability_held_back(world: World, ids: dict[str, str]) -> str:
    """A dry run's plan, once the Pipedrive copy moved with a probability that Salesforce's
    cannot take with its stage: HubSpot's copy gets both, Salesforce's neither (its stage is an
    error); why its probability is held back."""
    plan = cli_json(world, "reconcile", "--dry-run")
    changes, errors = mine(plan["changes"], ids), mine(plan["errors"], ids)
    assert ("hubspot", "stage") in changes and ("hubspot", "probability") in changes, changes
    assert ("salesforce", "stage") not in changes and ("salesforce", "stage") in errors, errors
    assert ("salesforce", "probability") not in changes, changes
    return str(errors["salesforce", "probability"]["reason"])


def held_back_for_two_nights(world: World, ids: dict[str, str], held: tuple[str, Any]) -> None:
    """Applied, and the night after: Salesforce's probability still held back, and its copy
    still `held` (stage name, probability): nothing half-written."""
    for _night in range(2):
        applied = cli_json(world, "reconcile", "--yes")
        assert ("salesforce", "probability") not in mine(applied["changes"], ids)
        assert ("salesforce", "probability") in mine(applied["errors"], ids)
        assert salesforce_stage(world, ids["salesforce"]) == held
