"""A report of instances no pull has read says so: their rows read "n/a" and zeros, as an
empty pipeline's would, and only a "last sync: never" row hinted why."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.cli import main
from tests.integration.conftest import World

HINT = "never pulled, so the report holds none of its deals: run `crmsync pull`"


def test_a_report_names_each_instance_never_pulled_and_its_json_stays_clean(
    small_world: World,
) -> None:
    config = str(small_world.config)
    shown = CliRunner().invoke(main, ["report", "--config", config, "--format", "json"])
    assert shown.exit_code in (0, 3), shown.stderr
    json.loads(shown.stdout)
    named = sorted(line.split(":")[2].strip() for line in shown.stderr.splitlines() if HINT in line)
    assert named == ["hubspot", "pipedrive", "salesforce"], shown.stderr

    assert (
        CliRunner().invoke(main, ["pull", "--config", config, "--system", "hubspot"]).exit_code == 0
    )
    shown = CliRunner().invoke(main, ["report", "--config", config, "--format", "json"])
    named = sorted(line.split(":")[2].strip() for line in shown.stderr.splitlines() if HINT in line)
    assert named == ["pipedrive", "salesforce"], shown.stderr


def test_a_refreshed_report_or_one_after_partial_reconciles_names_no_instance_never_pulled(
    small_world: World,
) -> None:
    """The report's own pull counts, and so does a reconcile's that ended partial (a refused
    write): the instances' deals are in the store."""
    config = str(small_world.config)
    args = ["report", "--config", config, "--format", "json", "--refresh"]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code in (0, 3), shown.stderr
    assert HINT not in shown.stderr, shown.stderr

    small_world.sandbox.servers["hubspot"].faults.set(Faults(record_fail=1.0))
    done = CliRunner().invoke(main, ["reconcile", "--config", config, "--yes", "--format", "json"])
    small_world.sandbox.servers["hubspot"].faults.set(Faults())
    runs = CliRunner().invoke(main, ["runs", "--config", config, "--format", "json"])
    assert done.exit_code == 1 and json.loads(runs.stdout)[0]["status"] == "partial", done.stderr
    shown = CliRunner().invoke(main, ["report", "--config", config, "--format", "json"])
    assert HINT not in shown.stderr, shown.stderr
