"""HubSpot keeps a close date as an instant and shows its day in the portal's time zone
(`systems.<hubspot>.timezone`). A day picked there reaches Salesforce and Pipedrive as the day
HubSpot's users see, a day written there is midnight of that day in the portal, and setting the
zone moves none of the close dates crmsync wrote before (midnight UTC). West of UTC (Los
Angeles) a day picked late reads a day later in UTC; east of it (Sydney) a day stored as local
midnight reads a day earlier."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from sync.plan import Plan
from tests.integration.conftest import World
from tests.integration.crm_users import SYSTEMS
from tests.integration.test_fields_round_trip import _stored, converged
from tests.integration.test_partial_targets import _reconcile

# portal zone -> (closedate as HubSpot stores a day picked in its UI, the day its users see)
PICKED = {
    # 31 March picked at 17:09 in Los Angeles (PDT): 1 April in UTC.
    "America/Los_Angeles": ("2027-04-01T00:09:44.000Z", date(2027, 3, 31)),
    # 15 March at midnight in Sydney (AEDT): 14 March in UTC.
    "Australia/Sydney": ("2027-03-14T13:00:00.000Z", date(2027, 3, 15)),
}


@dataclass
class Portal:
    world: World
    zone: str
    before: Plan  # the dry run before the zone was set
    after: Plan  # and right after
    entities: Iterator[dict[str, str]]


def _close_dates(plan: Plan) -> list[tuple[str, str, str]]:
    changes = [(c.system, c.id, str(c.to_value)) for c in plan.changes if c.field == "close_date"]
    conflicts = [("conflict", str(c.values), "") for c in plan.conflicts if c.field == "close_date"]
    return sorted(changes + conflicts)


@pytest.fixture(scope="module", params=sorted(PICKED))
def portal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """A three-CRM world that agreed with HubSpot's zone unset (UTC), then given `zone`."""
    zone = request.param
    for world in converged(tmp_path_factory, f"portal-{zone.split('/')[1]}", deals=60):
        before = _reconcile(world, dry_run=True)
        document = yaml.safe_load(world.config.read_text())
        document["systems"]["hubspot"]["timezone"] = zone
        world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        after = _reconcile(world, dry_run=True)
        found = [
            ids
            for ids in world.members().values()
            if len(ids) == len(SYSTEMS)
            and all(_stored(world, s, ids[s]).status.value == "open" for s in SYSTEMS)
        ]
        assert len(found) >= 2, "too few open three-CRM entities"
        yield Portal(world, zone, before, after, iter(found))


def _planned_close_dates(plan: Plan, ids: dict[str, str]) -> list[str]:
    refs = set(ids.items())
    return [
        f"{c.system} -> {c.to_value}"
        for c in plan.changes
        if (c.system, c.id) in refs and c.field == "close_date"
    ] + [
        "conflict"
        for c in plan.conflicts
        if c.field == "close_date" and any((s, i) in refs for s, i, _ in c.values)
    ]


def test_setting_the_portal_zone_moves_no_close_date_crmsync_wrote(portal: Portal) -> None:
    assert _close_dates(portal.after) == _close_dates(portal.before)


def test_a_day_picked_in_the_portal_reaches_the_other_crms_as_its_users_see_it(
    portal: Portal,
) -> None:
    world, ids = portal.world, next(portal.entities)
    raw, day = PICKED[portal.zone]
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        hubspot.store.update(ids["hubspot"], {"closedate": raw})

    _reconcile(world, dry_run=False)
    after = _reconcile(world, dry_run=True)
    assert {s: _stored(world, s, i).close_date for s, i in ids.items()} == dict.fromkeys(
        SYSTEMS, day
    )
    assert not _planned_close_dates(after, ids), "planned again"


def test_a_day_written_to_hubspot_is_its_midnight_in_the_portal(portal: Portal) -> None:
    world, ids = portal.world, next(portal.entities)
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        store = salesforce.store
        store.apply(store.check_update(ids["salesforce"], {"CloseDate": "2027-05-20"}))

    _reconcile(world, dry_run=False)
    after = _reconcile(world, dry_run=True)
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    raw = hubspot.store.live[ids["hubspot"]]["properties"]["closedate"]
    moment = datetime.fromisoformat(raw).astimezone(ZoneInfo(portal.zone))
    assert (moment.date(), moment.time().isoformat()) == (date(2027, 5, 20), "00:00:00"), raw
    assert _stored(world, "hubspot", ids["hubspot"]).close_date == date(2027, 5, 20)
    assert not _planned_close_dates(after, ids), "planned again"
