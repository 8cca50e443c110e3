"""A full read of a large CRM takes long, and a page is read once: a deal edited after its page
was read is saved as it was before the edit. The cursor that read leaves must stay before that
edit, or no incremental read would ever fetch the edit. The newest modification time the read
saw is later than the edit when a deal on a later page was edited after it; with more than
OVERLAP between the two edits, the next read (from the cursor less OVERLAP) started past it."""

from __future__ import annotations

import time

import pytest

from sync.pull import OVERLAP
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World
from tests.integration.processes import (
    crm_amount,
    first_page_deal,
    full_hubspot_pull_paused,
    pull_here,
    stored,
)


@pytest.fixture
def world(paged_world: World) -> World:
    return paged_world


def test_an_edit_made_during_a_long_full_read_to_a_deal_it_had_read_is_pulled_next_time(
    world: World,
) -> None:
    hubspot = world.sandbox.servers["hubspot"].emulator.store
    ids = sorted(hubspot.live, key=int)
    first_page, last_page = ids[:100], ids[100:]
    pull_here(world)
    deal = first_page_deal(world)
    assert deal in first_page
    with full_hubspot_pull_paused(world) as read:
        bump_amounts(world, "hubspot", [deal])  # just after the read passed its page
        # The read goes on for longer than OVERLAP (here: HubSpot's clock moves on at once),
        # and a deal on its last page is edited before the read gets there.
        later = OVERLAP.total_seconds() * 1000 * 2
        with world.sandbox.servers["hubspot"].emulator.lock:
            hubspot._last_ms = int(time.time() * 1000 + later)
        bump_amounts(world, "hubspot", [last_page[-1]])
    assert read.popen.returncode == 0, read.err
    assert stored(world, deal)[0] < crm_amount(world, deal)  # as it was when its page was read

    pull_here(world, "hubspot")  # incremental
    assert stored(world, deal)[0] == crm_amount(world, deal)
