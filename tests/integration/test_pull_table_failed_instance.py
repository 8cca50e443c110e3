"""`crmsync pull --format table` names an instance it could not pull as failed: its row of
zeros is no count of its deals (it read "full, fetched 0" beside the error line)."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def test_the_pull_table_marks_an_instance_whose_token_was_rejected_as_failed(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["systems"]["hubspot"]["credentials"]["access_token"] = "not-the-sandbox-token"
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
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
