"""A pull's run (`crmsync runs --format json`) counts both the native stages the stage map
lacks (`unmapped_stages`, as it always has) and the deals in them (`unmapped_deals`, the pull
table's `unmapped` column)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def test_a_pull_run_counts_the_deals_in_unmapped_stages_as_the_pull_table_does(
    small_world: World,
) -> None:
    config = str(small_world.config)
    document = yaml.safe_load(small_world.config.read_text())
    stages = document["systems"]["hubspot"]["stage_map"]["default"]
    del stages["qualifiedtobuy"], stages["appointmentscheduled"]
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    runner = CliRunner(env={"COLUMNS": "200"})
    pulled = runner.invoke(main, ["pull", "--system", "hubspot", "--config", config])
    assert pulled.exit_code == 0, pulled.output
    [row] = [line.split() for line in pulled.stdout.splitlines() if "hubspot" in line]
    cells = [c for c in row if c not in ("│", "┃")]
    columns = ["instance", "mode", "fetched", "saved", "deleted", "skipped", "unmapped", "calls"]
    shown = int(dict(zip(columns, cells, strict=True))["unmapped"])

    listed = runner.invoke(main, ["runs", "--format", "json", "--config", config])
    assert listed.exit_code == 0, listed.output
    [run] = [r for r in json.loads(listed.stdout) if r["kind"] == "pull"]
    counts = run["counts"]["hubspot"]
    assert counts["unmapped_deals"] == shown, (counts, pulled.stdout)
    assert counts["unmapped_stages"] == 2  # still the stages, not the deals
    assert shown > 2, "the world puts several deals in those two stages"
