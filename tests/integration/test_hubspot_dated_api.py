"""crmsync speaks HubSpot's date-versioned API 2026-09 only: a check, a full pull, an
incremental pull and an apply, through the CLI against the sandbox, request no v3 or v4 path
(HubSpot ends its support of v1-v3 in September 2027, of v4 on 2027-03-30)."""

from __future__ import annotations

from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync

VERSION = "2026-09"


def _run(world: World, *args: str) -> dict[str, int]:
    """The HubSpot requests of one command (stats keys "METHOD /path/template")."""
    server = world.sandbox.servers["hubspot"]
    server.stats.clear()
    done = run_crmsync(*args, "--config", str(world.config))
    assert done.returncode == 0, done.stderr
    requests: dict[str, int] = server.stats.snapshot()["requests"]
    return requests


def _undated(requests: dict[str, int]) -> list[str]:
    return [key for key in requests if "/v3/" in key or "/v4/" in key]


def test_a_check_a_full_pull_an_incremental_pull_and_an_apply_request_no_v3_or_v4_path(
    small_world: World,
) -> None:
    world = small_world
    checked = _run(world, "check")
    assert _undated(checked) == [] and checked[f"GET /account-info/{VERSION}/details"] == 1
    full = _run(world, "pull")
    assert _undated(full) == [] and full[f"GET /crm/objects/{VERSION}/deals"] >= 1
    emulator = world.sandbox.servers["hubspot"].emulator
    with emulator.lock:
        emulator.store.update(str(emulator.store.order[0]), {"dealname": "Edited in HubSpot"})
    incremental = _run(world, "pull")
    assert _undated(incremental) == [] and incremental[f"POST /crm/objects/{VERSION}/deals/search"]
    applied = _run(world, "reconcile", "--yes")
    assert _undated(applied) == []
    writes = [key for key in applied if "/deals/batch/" in key and not key.endswith("/read")]
    assert writes and all(f"/crm/objects/{VERSION}/" in key for key in writes), applied
