"""`crmsync pull --format table` on an 80-column terminal shows every column whole, right edge
included, whatever the length of the instance names (rich cropped the "API calls" column of a
boxed table whose minimum width just fitted)."""

from __future__ import annotations

from typing import Any

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World


def _renamed(document: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The config with instance `old` named `new` everywhere it is named."""
    systems = document["systems"]
    systems[new] = systems.pop(old)
    for system in systems.values():
        ids = system.get("external_ids") or {}
        if old in ids:
            ids[new] = ids.pop(old)
    push = document.get("push") or {}
    push["targets"] = [new if t == old else t for t in push.get("targets", [])]
    return document


def test_the_pull_table_at_80_columns_is_not_cropped_for_a_12_character_instance_name(
    small_world: World,
) -> None:
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    world.config.write_text(yaml.safe_dump(_renamed(document, "hubspot", "hubspot-emea")))
    args = ["pull", "--system", "hubspot-emea", "--format", "table", "--config", str(world.config)]
    shown = CliRunner(env={"COLUMNS": "80"}).invoke(main, args)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert max(map(len, lines)) <= 80, shown.stdout
    [row] = [line.split() for line in lines if "hubspot-emea" in line]
    cells = [c for c in row if c not in ("│", "┃")]
    assert cells[:2] == ["hubspot-emea", "full"], shown.stdout
    assert len(cells) == 8, f"a column is cut:\n{shown.stdout}"  # instance .. API calls
    assert any("calls" in line for line in lines), shown.stdout
    body = [line.rstrip() for line in lines[1:] if line.strip()]  # below the title
    boxed = [line for line in body if line[0] in "┏┃┡│└"]
    # a boxed table is whole only with its right rule on every line (rich cropped it)
    assert all(line[-1] in "┓┃┩│┘" for line in boxed), f"right edge cut:\n{shown.stdout}"
