"""Native stages of the copies in a sandbox world: a person moving a deal in a CRM's own screens,
what each CRM holds, and crmsync run through its CLI with JSON output."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World

__all__ = ["cli_json", "set_stage", "stages"]


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
