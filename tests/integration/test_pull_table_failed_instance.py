"""`crmsync pull --format table` names an instance it could not pull as failed: its row of
zeros is no count of its deals (it read "full, fetched 0" beside the error line). The run's
line in the `crmsync runs` table does too (it read "hubspot: fetched 0, saved 0")."""

from __future__ import annotations

import json
import re

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _hubspot_token_rejected(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["hubspot"]["credentials"]["access_token"] = "not-the-sandbox-token"
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_pull_table_marks_an_instance_whose_token_was_rejected_as_failed(
    small_world: World,
) -> None:
    world = small_world
    _hubspot_token_rejected(world)
    args = ["pull", "--format", "table", "--config", str(world.config)]
    shown = CliRunner(env={"COLUMNS": "200"}).invoke(main, args)
    assert shown.exit_code == 2, shown.output  # rejected credentials
    assert "HubSpot rejected the access token" in shown.stderr
    rows = {
        cells[0]: cells[1]
        for line in shown.stdout.splitlines()
        if (cells := [c for c in line.split() if c not in "│┃"])
        and cells[0] in ("salesforce", "hubspot", "pipedrive")
    }
    assert rows == {"salesforce": "full", "hubspot": "failed", "pipedrive": "full"}, shown.stdout


def test_the_runs_table_marks_a_pulls_instance_that_could_not_be_pulled_as_failed(
    small_world: World,
) -> None:
    _hubspot_token_rejected(small_world)
    config = str(small_world.config)
    assert CliRunner().invoke(main, ["pull", "--config", config]).exit_code == 2
    for columns in ("400", "80"):
        shown = CliRunner(env={"COLUMNS": columns}).invoke(main, ["runs", "--config", config])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.stdout.replace("│", " ").split())
        assert re.search(r"hubspot: failed, fetched 0, saved 0[;\s]", text), (columns, text)
        assert re.search(r"salesforce: fetched [1-9]\d*, saved", text), (columns, text)
        assert text.count("failed, fetched") == 1, (columns, text)


def test_a_pull_that_saved_some_instances_is_recorded_partial_and_one_that_saved_none_failed(
    small_world: World,
) -> None:
    """Two of three instances pulled and saved: the run is no failure of the whole pull."""
    _hubspot_token_rejected(small_world)
    config = str(small_world.config)
    assert CliRunner().invoke(main, ["pull", "--config", config]).exit_code == 2
    only = ["pull", "--config", config, "--system", "hubspot"]
    assert CliRunner().invoke(main, only).exit_code == 2
    shown = CliRunner().invoke(main, ["runs", "--config", config, "--format", "json"])
    statuses = [(r["status"], len(r["counts"])) for r in json.loads(shown.stdout)]
    assert statuses == [("failed", 1), ("partial", 3)], shown.stdout
