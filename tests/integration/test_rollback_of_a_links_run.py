"""`crmsync rollback` of a `crmsync links` run says what undoes it: the run changed links, not
CRM records (it said "wrote nothing: nothing to undo" to whoever split the wrong entity)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def test_rollback_of_a_links_split_points_to_links_join(small_world: World) -> None:
    world = small_world
    config = ["--config", str(world.config)]
    planned = CliRunner().invoke(main, ["reconcile", "--dry-run", *config])
    assert planned.exit_code == 0, planned.output
    shown = CliRunner().invoke(main, ["links", "show", "--format", "json", *config])
    entity = json.loads(shown.stdout)[0]["entity"]
    split = CliRunner().invoke(main, ["links", "split", entity, *config])
    assert split.exit_code == 0, split.output
    runs = json.loads(CliRunner().invoke(main, ["runs", "--format", "json", *config]).stdout)
    run_id = next(r["id"] for r in runs if r["kind"] == "links")

    for extra in ([], ["--apply"]):
        out = CliRunner().invoke(main, ["rollback", run_id, *extra, *config])
        assert out.exit_code == 0, out.output
        assert "wrote nothing" not in out.stdout, out.stdout
        assert "`crmsync links join` pairs split deals again" in out.stdout, out.stdout
