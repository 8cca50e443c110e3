"""`crmsync rollback RUN_ID` on an 80-column terminal: the dry-run table people read before
`--apply` keeps instances, ids and field names whole (it folded "probability" into
"probabili" / "ty" and dates into "2026-10-0" / "4")."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def test_the_rollback_table_at_80_columns_never_cuts_a_field_name_an_id_or_a_date(
    small_world: World,
) -> None:
    world = small_world
    config = ["--config", str(world.config)]
    applied = CliRunner().invoke(main, ["reconcile", "--yes", "--format", "json", *config])
    assert applied.exit_code in (0, 1), applied.output  # 1: owners the sample cannot map
    run_id = json.loads(applied.stdout)["run_id"]
    shown = CliRunner().invoke(main, ["rollback", run_id, "--format", "json", *config])
    assert shown.exit_code == 0, shown.output
    changes = json.loads(shown.stdout)["changes"]
    assert {c["field"] for c in changes} >= {"probability", "close_date"}, changes

    table = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["rollback", run_id, *config])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(map(len, lines)) <= 80, table.stdout
    for c in changes:
        row = [line for line in lines if c["id"] in line.split() and c["field"] in line.split()]
        assert row, f"{c['system']} {c['id']} {c['field']} not whole on one line:\n{table.stdout}"
        for value in (c["from"], c["to"]):
            if isinstance(value, str) and DATE.match(value):
                assert value in table.stdout, f"{value} cut:\n{table.stdout}"
