"""A stage mapping changed in the config takes effect at the next run: the deals a pull stored
under the old mapping keep its canonical values (a stage mapped since stays `null`), so a pull
whose instance's mapping changed reads everything again instead of only what changed."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import yaml

from mapping.versions import MAPPER_VERSIONS
from sync import connect
from sync.connect import kind_mapping
from sync.plan import Plan
from tests.integration.conftest import World
from tests.integration.test_partial_targets import _reconcile


def _unmapped(plan: Plan, system: str) -> set[str]:
    return {e["id"] for e in plan.errors if e["system"] == system and e["field"] == "stage"}


def test_a_stage_mapped_since_the_last_pull_is_mapped_at_the_next_run(
    small_world: World, caplog: Any
) -> None:
    config = small_world.config
    mapped = config.read_text()
    assert not _unmapped(_reconcile(small_world, dry_run=True), "pipedrive")
    document = yaml.safe_load(mapped)
    stages = document["systems"]["pipedrive"]["stage_map"]
    pipeline = next(iter(stages))
    native = next(iter(stages[pipeline]))
    del stages[pipeline][native]  # someone narrows the map...
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    left_out = _unmapped(_reconcile(small_world, dry_run=True), "pipedrive")
    assert left_out, f"the deals in pipedrive stage {native} should be unmapped now"

    config.write_text(mapped)  # ...and maps the stage again: its deals are mapped at once
    with caplog.at_level("WARNING"):
        again = _reconcile(small_world, dry_run=True)
    assert not _unmapped(again, "pipedrive") & left_out
    assert "pipedrive: reading everything: its mapping changed since the last pull" in caplog.text


def test_a_stage_mapped_in_a_store_an_older_crmsync_pulled_is_mapped_at_the_next_run(
    small_world: World, caplog: Any
) -> None:
    """A store an older crmsync pulled into holds cursors but no mapping fingerprints (they came
    with 2d29b82): which mapping its deals were read under is unknown, so the first pull after
    the upgrade reads everything, as after a mapping change. Taken for unchanged, the deals of
    a stage mapped at the upgrade (`crmsync init`, or by hand) stayed unmapped for good."""
    config = small_world.config
    mapped = config.read_text()
    document = yaml.safe_load(mapped)
    stages = document["systems"]["pipedrive"]["stage_map"]
    pipeline = next(iter(stages))
    native = next(iter(stages[pipeline]))
    del stages[pipeline][native]
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    left_out = _unmapped(_reconcile(small_world, dry_run=True), "pipedrive")
    assert left_out, f"the deals in pipedrive stage {native} should be unmapped now"
    with sqlite3.connect(small_world.config.parent / "crmsync.db") as db:
        # The store as crmsync left it before it recorded mappings (meta had no such keys).
        assert db.execute("DELETE FROM meta WHERE key LIKE 'mapping@%'").rowcount == 3

    config.write_text(mapped)  # upgraded, the user maps the stage
    with caplog.at_level("WARNING"):
        again = _reconcile(small_world, dry_run=True)
    assert not _unmapped(again, "pipedrive") & left_out
    assert "pipedrive: reading everything: its deals were stored by an older crmsync" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _reconcile(small_world, dry_run=True)
    assert "reading everything" not in caplog.text  # once: the mapping is recorded now


def test_a_pull_after_an_upgrade_that_maps_a_kind_otherwise_says_so(
    small_world: World, caplog: Any, monkeypatch: Any
) -> None:
    """After an upgrade raising a kind's mapper version, the first pull reads everything, and
    said 'its mapping changed (stage map, funnels, currency, ...)': the user, who changed no
    config, looked for what changed in it. The recorded mapping is the config's under an older
    mapper, so the line says that."""
    current = MAPPER_VERSIONS["pipedrive"]
    mapping = kind_mapping("pipedrive")
    assert mapping.version == current
    with monkeypatch.context() as older:  # the crmsync before the upgrade
        older.setitem(connect._MAPPINGS, "pipedrive", replace(mapping, version=current - 1))
        _reconcile(small_world, dry_run=True)
    with caplog.at_level("WARNING"):
        _reconcile(small_world, dry_run=True)
    assert (
        f"pipedrive: reading everything: crmsync maps pipedrive deals otherwise since the last "
        f"pull (mapper version {current - 1} to {current}: crmsync was upgraded): every deal is "
        "mapped again, once"
    ) in caplog.text
    assert "salesforce: reading everything" not in caplog.text
