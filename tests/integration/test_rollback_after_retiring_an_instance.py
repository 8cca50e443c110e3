"""A migration retires the CRM it moved off (README "Retiring an instance"). A run that wrote
to it cannot be undone without it: the rollback is refused before any write, and the refusal
says which instance and how to get the run undone (it said only "plan writes to 'pipedrive',
which is not in crmsync.yaml", as if the plan were at fault)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World, retire
from tests.sandbox_env import count_writes


def test_the_rollback_of_a_run_that_wrote_to_a_retired_instance_says_to_add_it_back(
    small_world: World,
) -> None:
    world = small_world
    cli = CliRunner()
    applied = cli.invoke(main, ["reconcile", "--yes", "--config", str(world.config)])
    assert applied.exit_code == 0, applied.output
    runs = cli.invoke(main, ["runs", "--format", "json", "--config", str(world.config)])
    run = json.loads(runs.stdout)[0]
    assert run["kind"] == "reconcile" and run["counts"]["applied"]["applied"], run
    with_pipedrive = [s.stats.snapshot() for s in world.sandbox.servers.values()]
    retire(world, "pipedrive")

    undo = cli.invoke(
        main, ["rollback", run["id"], "--apply", "--yes", "--config", str(world.config)]
    )

    assert undo.exit_code == 2, undo.output
    assert undo.stderr.strip() == (
        f"crmsync: error: run {run['id']} wrote to pipedrive, which is not in crmsync.yaml "
        "any more; nothing written: add systems.pipedrive back to undo the run"
    )
    after = [s.stats.snapshot() for s in world.sandbox.servers.values()]
    assert sum(map(count_writes, after)) == sum(map(count_writes, with_pipedrive))


def test_the_dry_rollback_says_its_apply_is_refused_while_the_instance_is_retired(
    small_world: World,
) -> None:
    world = small_world
    cli = CliRunner()
    assert cli.invoke(main, ["reconcile", "--yes", "--config", str(world.config)]).exit_code == 0
    runs = cli.invoke(main, ["runs", "--format", "json", "--config", str(world.config)])
    run = json.loads(runs.stdout)[0]
    retire(world, "pipedrive")

    dry = cli.invoke(main, ["rollback", run["id"], "--config", str(world.config)])

    assert dry.exit_code == 0, dry.output
    said = " ".join(dry.stdout[dry.stdout.rindex("dry run: nothing") :].split())  # as wrapped
    assert said == (
        "dry run: nothing written; --apply refuses it while pipedrive, which the run wrote to, "
        "is not in crmsync.yaml: add systems.pipedrive back to undo the run"
    ), dry.stdout
    shown = cli.invoke(
        main, ["rollback", run["id"], "--format", "json", "--config", str(world.config)]
    )
    assert json.loads(shown.stdout)["refused"] == said, shown.stdout
