"""A full pull takes a stored deal its read did not list for deleted only once a read by id
says so: a CRM or a proxy that loses pages of a list must not turn the deals on them into
deletions (reported by every plan and report until a later full read lists them again)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from connectors.sandbox.faults import Faults
from sync.cli import main
from sync.runtime import open_runtime
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import SYSTEMS, Editors


@pytest.fixture
def two_page_world(tmp_path: Path) -> Iterator[World]:
    """Over 500 Pipedrive deals: a full read of /api/v2/deals takes two pages."""
    yield from build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=600, seed=3)


def _pull(world: World, system: str) -> Result:
    args = ["pull", "--full", "--system", system, "--config", str(world.config)]
    return CliRunner().invoke(main, args)


def _live(world: World, system: str) -> set[str]:
    with open_runtime(str(world.config), connect=False) as rt:
        return rt.store.live_ids(system)


def _last_pull_counts(world: World, system: str) -> dict[str, int]:
    shown = CliRunner().invoke(main, ["runs", "--config", str(world.config), "--format", "json"])
    counts: dict[str, int] = json.loads(shown.stdout)[0]["counts"][system]
    return counts


def test_a_full_pull_whose_list_lost_its_second_page_marks_only_the_deleted_deal_deleted(
    two_page_world: World,
) -> None:
    world = two_page_world
    assert _pull(world, "pipedrive").exit_code == 0
    before = _live(world, "pipedrive")
    assert len(before) > 500  # two pages
    deleted = min(before, key=int)  # on the first page
    Editors(world, 1).delete("pipedrive", deleted)
    world.sandbox.servers["pipedrive"].faults.set(Faults(pages_past_first_empty=True))

    pulled = _pull(world, "pipedrive")

    assert pulled.exit_code == 0, pulled.output
    assert _live(world, "pipedrive") == before - {deleted}
    counts = _last_pull_counts(world, "pipedrive")
    assert counts["deleted"] == 1
    assert counts["unlisted"] == len(before) - 1 - counts["fetched"] > 0
    warning = f"the full read did not list {counts['unlisted']} deals that a read by id finds ("
    assert warning in pulled.stderr


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_deal_deleted_in_its_crm_is_marked_deleted_by_the_next_full_pull(
    small_world: World, system: str
) -> None:
    world = small_world
    assert _pull(world, system).exit_code == 0
    before = _live(world, system)
    deleted = sorted(before)[len(before) // 2]
    Editors(world, 1).delete(system, deleted)

    pulled = _pull(world, system)

    assert pulled.exit_code == 0, pulled.output
    assert _live(world, system) == before - {deleted}
    assert _last_pull_counts(world, system)["unlisted"] == 0
    assert pulled.stderr == ""


def test_a_full_pull_that_cannot_read_an_unlisted_deal_by_id_marks_it_deleted_and_goes_on(
    small_world: World,
) -> None:
    """A deal the API user may no longer see (Pipedrive's visibility groups: lists leave it
    out, a read by id answers 403) is marked deleted, as before the check; the pull does not
    fail on it."""
    world = small_world
    assert _pull(world, "pipedrive").exit_code == 0
    before = _live(world, "pipedrive")
    hidden = min(before, key=int)
    world.sandbox.servers["pipedrive"].faults.set(Faults(hidden_deals=(hidden,)))

    pulled = _pull(world, "pipedrive")

    assert pulled.exit_code == 0, pulled.output
    assert _live(world, "pipedrive") == before - {hidden}
    assert "the full read did not list 1 stored deal, and reading them by id failed" in (
        pulled.stderr
    )


def test_a_remapping_pull_that_kept_unlisted_deals_leaves_the_next_pull_to_map_all_again(
    two_page_world: World,
) -> None:
    """The kept deals hold what the old mapping made of them: the new one is not recorded."""
    world = two_page_world
    assert _pull(world, "pipedrive").exit_code == 0
    document = yaml.safe_load(world.config.read_text())
    stages = document["systems"]["pipedrive"]["stage_map"]
    del stages[next(iter(stages))][next(iter(stages[next(iter(stages))]))]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    world.sandbox.servers["pipedrive"].faults.set(Faults(pages_past_first_empty=True))
    incremental = ["pull", "--system", "pipedrive", "--config", str(world.config)]

    remapped = CliRunner().invoke(main, incremental)
    assert remapped.exit_code == 0, remapped.output
    assert _last_pull_counts(world, "pipedrive")["unlisted"] > 0

    world.sandbox.servers["pipedrive"].faults.set(Faults())
    again = CliRunner().invoke(main, incremental)
    assert again.exit_code == 0, again.output
    counts = _last_pull_counts(world, "pipedrive")
    assert counts["full"] is True and "its mapping changed" in counts["full_reason"]
    assert counts["unlisted"] == 0
    third = CliRunner().invoke(main, incremental)
    assert third.exit_code == 0 and _last_pull_counts(world, "pipedrive")["full"] is False
