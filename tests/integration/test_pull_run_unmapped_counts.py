"""A pull's run (`crmsync runs --format json`) counts both the native stages the stage map
lacks (`unmapped_stages`, as it always has) and the deals in them (`unmapped_deals`, the pull
table's `unmapped` column); the `crmsync runs` table shows those deals too."""

from __future__ import annotations

import json
import re

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _two_hubspot_stages_unmapped(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    stages = document["systems"]["hubspot"]["stage_map"]["default"]
    del stages["qualifiedtobuy"], stages["appointmentscheduled"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def test_a_pull_run_counts_the_deals_in_unmapped_stages_as_the_pull_table_does(
    small_world: World,
) -> None:
    config = str(small_world.config)
    _two_hubspot_stages_unmapped(small_world)

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


def test_the_runs_table_shows_a_pulls_unmapped_deals_per_instance_as_its_json_counts_them(
    small_world: World,
) -> None:
    """Wide (a table) and narrow (two lines per run) alike; an instance with none says none."""
    config = str(small_world.config)
    _two_hubspot_stages_unmapped(small_world)
    pulled = CliRunner().invoke(main, ["pull", "--config", config])
    assert pulled.exit_code == 0, pulled.output
    listed = CliRunner().invoke(main, ["runs", "--format", "json", "--config", config])
    [run] = [r for r in json.loads(listed.stdout) if r["kind"] == "pull"]
    unmapped = run["counts"]["hubspot"]["unmapped_deals"]
    assert unmapped > 0
    assert all(c["unmapped_deals"] == 0 for n, c in run["counts"].items() if n != "hubspot")

    for columns in ("400", "80"):
        shown = CliRunner(env={"COLUMNS": columns}).invoke(main, ["runs", "--config", config])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.stdout.replace("│", " ").split())
        hubspot = re.search(r"hubspot: fetched \d+, saved \d+[^;]*", text)
        assert hubspot is not None, (columns, shown.stdout)
        assert hubspot.group().endswith(f", unmapped {unmapped}"), (columns, shown.stdout)
        assert text.count("unmapped") == 1, (columns, shown.stdout)
