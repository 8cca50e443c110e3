"""`crmsync reconcile` whose apply leaves changes a CRM refused ends like `crmsync apply`: one
error line on stderr naming a refused record and its CRM's reason, and the run records the same
(it exited 1 silently and recorded "see `crmsync runs`", which `crmsync runs` showed as is)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.cli import main
from tests.integration.conftest import World


def test_a_reconcile_with_refused_changes_names_one_on_stderr_and_in_its_run(
    small_world: World,
) -> None:
    world = small_world
    config = ["--config", str(world.config)]
    planned = CliRunner().invoke(main, ["reconcile", "--dry-run", "--format", "json", *config])
    refused = json.loads(planned.stdout)["changes"][0]  # the CRM refuses to write this record
    server = world.sandbox.servers[refused["system"]]
    server.faults.set(Faults(fail_ids=(refused["id"],)))

    try:
        out = CliRunner().invoke(main, ["reconcile", "--yes", "--format", "json", *config])
    finally:
        server.faults.set(Faults())
    assert out.exit_code == 1, out.output
    errors = [line for line in out.stderr.splitlines() if line.startswith("crmsync: error:")]
    assert len(errors) == 1, out.stderr
    [error] = errors
    assert "change(s) not applied (e.g. " in error, error
    assert f"e.g. {refused['system']} {refused['id']} " in error, error
    assert "retried on the next run" in error, error

    runs = json.loads(CliRunner().invoke(main, ["runs", "--format", "json", *config]).stdout)
    run = next(r for r in runs if r["id"] == json.loads(out.stdout)["run_id"])
    assert run["error"] == error.removeprefix("crmsync: error: "), run["error"]
    assert "crmsync runs" not in run["error"]
