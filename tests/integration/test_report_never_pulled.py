"""A report of instances no pull has read says so: their rows read "n/a" and zeros, as an
empty pipeline's would, and only a "last sync: never" row hinted why."""

from __future__ import annotations

import json

from click.testing import CliRunner

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
