"""A delete that `reconcile --yes` propagated (push.propagate_deletes) and left in doubt (the
call failed part-way: Pipedrive deletes one call per deal) is settled by the next reconcile
that applies, as it settles other plans' writes and creates: a deal the CRM holds deleted is
audited under the run that sent the delete, one it still holds is marked not deleted (free to be
planned again), and a line says so, whether or not the new plan writes to that CRM."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from sync.cli import main
from sync.runtime import open_runtime
from tests.integration.conftest import World, refusing_after
from tests.integration.test_rollback_deletes_creates import _live


def _push(world: World, **options: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(options)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _reconcile(world: World, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[Any, Result]:
    out = CliRunner().invoke(
        main, ["reconcile", *args, "--config", str(world.config), "--format", "json"]
    )
    assert out.exit_code in ok, out.output
    return json.loads(out.stdout), out


def _deleted_audit(world: World) -> Counter[tuple[str, str]]:
    """(run, Pipedrive deal) -> audited deletes."""
    with open_runtime(str(world.config), connect=False) as rt:
        return Counter(
            (e.run_id, str(e.deal_id))
            for e in rt.store.audit.entries(instance="pipedrive")
            if e.field is None and isinstance(e.after, dict) and e.after.get("deleted")
        )


@pytest.mark.slow  # default suite time: in `pytest -m slow`
@pytest.mark.parametrize("next_run", ["propagating", "not-writing-to-pipedrive"])
def test_the_next_reconcile_settles_pipedrive_deletes_a_stopped_reconcile_left_in_doubt(
    small_world: World, next_run: str
) -> None:
    world = small_world
    _push(world, propagate_deletes=True)
    _reconcile(world, "--yes", ok=(0, 1))  # converged: every member holds the agreed values
    shared = [m for m in world.members().values() if {"hubspot", "pipedrive"} <= m.keys()][:6]
    assert len(shared) == 6
    with open_runtime(str(world.config)) as rt:  # people delete the HubSpot copies
        connector: Any = rt.connectors["hubspot"]
        assert all(r.ok for r in connector.delete_deals([m["hubspot"] for m in shared]))
    wanted = {m["pipedrive"] for m in shared}

    with refusing_after(world, "pipedrive", "DELETE /api/v2/deals/{id}", 2):
        stopped, out = _reconcile(world, "--yes", ok=(1,))
    assert "in doubt" in out.output, out.output
    landed = {i for i in wanted if not _live(world, "pipedrive", i)}
    assert 0 < len(landed) < len(wanted), landed  # stopped part-way
    assert not _deleted_audit(world)  # sent, the answer lost: nothing audited yet

    if next_run == "not-writing-to-pipedrive":
        _push(world, propagate_deletes=False)
    settled, out = _reconcile(world, "--yes", ok=(0, 1))

    first, second = stopped["run_id"], settled["run_id"]
    audited = _deleted_audit(world)
    if next_run == "propagating":  # the rest is planned and deleted anew, by the new run
        anew = {(second, i): 1 for i in wanted - landed}
        assert audited == {(first, i): 1 for i in landed} | anew
        assert not any(_live(world, "pipedrive", i) for i in wanted)
    else:
        assert audited == {(first, i): 1 for i in landed}
        assert all(_live(world, "pipedrive", i) for i in wanted - landed)
        assert not any(c["system"] == "pipedrive" for c in settled["changes"])
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.journal.deletes_in_doubt() == {}
        assert rt.store.journal.in_doubt_elsewhere("any other plan") == []
    line = (
        f"pipedrive: settled 6 deletes left in doubt by run {first}: {len(landed)} deleted "
        f"(audited under that run), {6 - len(landed)} not deleted (free to be planned again)"
    )
    assert line in out.output, out.output
    runs = CliRunner().invoke(main, ["runs", "--format", "json", "--config", str(world.config)])
    [run] = [r for r in json.loads(runs.stdout) if r["id"] == second]
    assert run["counts"]["settled"] == [
        {"system": "pipedrive", "run_id": first, "op": "delete", "done": len(landed),
         "not_done": 6 - len(landed)}
    ]  # fmt: skip
