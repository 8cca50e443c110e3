"""Nights of a sales team across the three CRMs, with today's behaviours together.

A HubSpot portal away from UTC (`systems.hubspot.timezone`), a Salesforce stage an admin
relabelled, `push.create_missing` with Pipedrive's `create_org_id`, deals archived and brought
back in Pipedrive. Between nights people edit deals: close dates at month ends and near
midnight in the portal, stage moves into the relabelled stage, new deals; one night's apply is
cut (HubSpot drops answers while its search lags, Salesforce rows locked) and run again. After
each night a full read of the CRMs into a fresh store shows every edit in every copy, no deal
twice in a CRM, no deal lost, every deal a person made copied to the other CRMs (but one they
archived in Pipedrive first, which is no longer worked on), and the next
dry run plans nothing; after every run, cut ones too, no edit taken back. At the end the
report's forecast months are the portal's and the same in the three CRMs.

It found a run right after a cut apply, while HubSpot's search did not show what that apply
wrote, carrying the HubSpot copies' values from before the write back over a person's edit
(tests/integration/test_writes_not_yet_searchable.py holds that case on its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from connectors.sandbox.faults import Faults
from sync.plan import Plan
from sync.reconcile_run import run_reconcile
from sync.runtime import open_runtime
from sync.store_records import RunStatus
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import SYSTEMS
from tests.integration.test_edits_win_over_nights import _read_crms as read_crms
from tests.sandbox_env import run_crmsync

Held = dict[tuple[str, str], dict[str, Any]]  # (instance, id) -> canonical fields
RELABELLED = ("Closed Won", "Won - signed")  # (API name, the label an admin gave it)


@dataclass
class Journey:
    world: World
    zone: ZoneInfo
    nights: int = 0
    made: list[tuple[str, str]] = field(default_factory=list)  # deals people created
    # deals a person made and archived in Pipedrive before any copy: never copied
    archived_only: list[tuple[str, str]] = field(default_factory=list)
    # copies archived in Pipedrive that an edit elsewhere cannot reach (its API edits no
    # archived deal): each run reports them instead
    shelved: set[tuple[str, str]] = field(default_factory=set)
    wanted: dict[tuple[str, str], Any] = field(default_factory=dict)  # (ref, field) -> value
    named: dict[str, int] = field(default_factory=dict)  # name -> most deals of it in a CRM
    reached: set[tuple[tuple[str, str], str]] = field(default_factory=set)  # copies edited

    def em(self, system: str) -> Any:
        return self.world.sandbox.servers[system].emulator


# Los Angeles (west of UTC) in `pytest -m slow`: default suite time
@pytest.fixture(
    params=[pytest.param("America/Los_Angeles", marks=pytest.mark.slow), "Australia/Sydney"]
)
def journey(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journey]:
    for world in build_world(tmp_path, f"sqlite:///{tmp_path / 'crmsync.db'}", deals=60, seed=3):
        zone = str(request.param)
        world.sandbox.servers["hubspot"].emulator.time_zone = zone
        document = yaml.safe_load(world.config.read_text())
        document["systems"]["hubspot"]["timezone"] = zone
        document["push"]["create_missing"] = True
        world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        salesforce: Any = world.sandbox.servers["salesforce"].emulator
        with salesforce.lock:
            for row in salesforce.store.tables["OpportunityStage"]:
                if row["ApiName"] == RELABELLED[0]:
                    row["MasterLabel"] = RELABELLED[1]
        yield Journey(world, ZoneInfo(zone))


def _options(later: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"backoff_base": 0.01}
    if later:
        options["lookup_lag_s"] = 0
    return options


def _night(journey: Journey, *, later: bool = True) -> Plan:
    """The nightly `reconcile` that applies; `later`: once HubSpot's search shows what an
    earlier apply created (past its lookup lag)."""
    journey.nights += 1
    with open_runtime(str(journey.world.config), connector_options=_options(later)) as rt:
        return run_reconcile(rt, dry_run=False, yes=True).result.plan


def _dry_run(journey: Journey) -> Plan:
    with open_runtime(str(journey.world.config), connector_options=_options(True)) as rt:
        outcome = run_reconcile(rt, dry_run=True, yes=True)
    assert outcome.status is RunStatus.OK, outcome.detail
    return outcome.result.plan


def _read_crms(journey: Journey, tag: str) -> Held:
    """A full pull of every CRM into a fresh store of its own."""
    return read_crms(journey.world, tag)


def _entities(journey: Journey) -> dict[str, dict[str, str]]:
    return journey.world.members()


def _three_crm_open(journey: Journey, held: Held) -> list[dict[str, str]]:
    return [
        ids
        for ids in _entities(journey).values()
        if len(ids) == len(SYSTEMS)
        and all(held.get((s, i), {}).get("status") == "open" for s, i in ids.items())
    ]


# -- what people do in the CRMs ---------------------------------------------------------------


def _hubspot_close(journey: Journey, deal_id: str, local: datetime) -> date:
    """A close day picked in HubSpot's screens at `local` wall-clock time in the portal."""
    moment = local.replace(tzinfo=journey.zone).astimezone(ZoneInfo("UTC"))
    em = journey.em("hubspot")
    with em.lock:
        em.store.update(deal_id, {"closedate": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    return local.date()


def _salesforce(journey: Journey, deal_id: str, values: dict[str, Any]) -> None:
    em = journey.em("salesforce")
    with em.lock:
        em.store.apply(em.store.check_update(deal_id, values))


def _pipedrive(journey: Journey, deal_id: str, values: dict[str, Any]) -> None:
    em = journey.em("pipedrive")
    with em.lock:
        em.store.update(int(deal_id), values)


def _salesforce_create(journey: Journey, name: str, close: str) -> str:
    em = journey.em("salesforce")
    with em.lock:
        owner = em.store.tables["User"][0]["Id"]
        values = {
            "Name": name,
            "StageName": "Prospecting",
            "CloseDate": close,
            "Amount": Decimal(4321),
            "OwnerId": owner,
        }
        return str(em.store.apply(em.store.check_create(values)))


def _owner(journey: Journey) -> dict[str, str]:
    """Native ids of a person every CRM knows."""
    from tests.integration.crm_users import Editors

    owners = Editors(journey.world, 0).owners
    return owners[sorted(owners)[0]]


def _utc(journey: Journey, local: datetime) -> str:
    moment = local.replace(tzinfo=journey.zone).astimezone(ZoneInfo("UTC"))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _taken_back(journey: Journey) -> list[str]:
    """Edits undone: a person's deal no longer holding the edit, or a copy that held it once
    holding something else (checked after every run, cut ones too)."""
    held = _read_crms(journey, f"kept-{journey.nights}")
    entities = _entities(journey)
    of_entity = {(s, i): e for e, ids in entities.items() for s, i in ids.items()}
    out = []
    for (ref, name), value in journey.wanted.items():
        if held[ref][name] != value:
            out.append(f"{ref} {name}: a person's {value!r} became {held[ref][name]!r}")
        for copy in entities[of_entity[ref]].items():
            if held[copy][name] == value:
                journey.reached.add((copy, name))
            elif (copy, name) in journey.reached:
                out.append(f"{copy} {name}: held {value!r}, now {held[copy][name]!r}")
    return out


# -- what a night must leave -------------------------------------------------------------------


def _problems(journey: Journey, applied: Plan, after: Plan) -> list[str]:
    held = _read_crms(journey, f"after-{journey.nights}")
    problems = _taken_back(journey)
    entities = _entities(journey)
    of_entity = {(s, i): e for e, ids in entities.items() for s, i in ids.items()}
    cannot = {(str(e["system"]), str(e["id"])) for e in applied.errors} | journey.shelved
    for (ref, name), value in journey.wanted.items():
        entity = of_entity.get(ref)
        if entity is None:
            problems.append(f"{ref}: in no entity")
            continue
        for system, deal_id in entities[entity].items():
            got = held.get((system, deal_id), {}).get(name, "<missing>")
            if got != value and (system, deal_id) not in cannot:
                problems.append(f"{system} {deal_id} {name}: {got!r}, edited to {value!r} in {ref}")
    for entity, ids in entities.items():
        for system, deal_id in ids.items():
            if (system, deal_id) not in held:
                problems.append(f"{system} {deal_id} of {entity}: lost")
    for system in SYSTEMS:  # more deals of a name than the CRM holding most had before
        names = [v["name"] for (s, _), v in held.items() if s == system]
        twice = sorted({n for n in names if names.count(n) > max(journey.named.get(n, 1), 1)})
        if twice:
            problems.append(f"{system}: more deals named {twice} than before")
    for ref in journey.made:
        entity = of_entity.get(ref)
        if entity is None or len(entities[entity]) != len(SYSTEMS):
            problems.append(f"{ref}: created by a person, copies {entities.get(entity or '')}")
    for ref in journey.archived_only:
        entity = of_entity.get(ref)
        if entity is not None and len(entities[entity]) > 1:
            problems.append(f"{ref}: archived before any copy, copies {entities[entity]}")
    problems += [
        f"planned again: {c.system} {c.id} {c.field} -> {c.to_value!r} ({c.reason})"
        for c in after.changes
        if c.field != "probability"
    ]
    problems += [f"planned again: create {c}" for c in after.creates]
    problems += [
        f"plan error: {e}"
        for e in after.errors
        if (str(e["system"]), str(e["id"])) not in journey.shelved or "archived" not in e["reason"]
    ]
    problems += [
        f"{ref}: archived, yet not reported"
        for ref in journey.shelved
        if not any((str(e["system"]), str(e["id"])) == ref for e in after.errors)
    ]
    return problems


def test_a_team_s_nights_across_three_crms_converge_with_todays_behaviours(
    journey: Journey,
) -> None:
    world = journey.world
    pipedrive = journey.em("pipedrive")
    with pipedrive.lock:
        archived = sorted(i for i, d in pipedrive.store.deals.items() if d["status"] == "open")[:2]
    for deal_id in archived:
        _pipedrive(journey, str(deal_id), {"is_archived": True})

    for system in SYSTEMS:
        names = [v["name"] for (s, _), v in _read_crms(journey, "first").items() if s == system]
        for name in names:
            journey.named[name] = max(journey.named.get(name, 0), names.count(name))
    first = _night(journey)
    assert not first.errors, first.errors
    assert _problems(journey, first, _dry_run(journey)) == []

    # night 2: close days at month ends and late in the portal, a move into the relabelled
    # stage, an archived deal edited, a new deal in Salesforce
    before = _read_crms(journey, "before-2")
    picks = _three_crm_open(journey, before)
    assert len(picks) >= 8
    a, b, c, d = picks[:4]
    day = _hubspot_close(journey, a["hubspot"], datetime(2027, 3, 31, 23, 30))
    journey.wanted[("hubspot", a["hubspot"]), "close_date"] = day
    _salesforce(journey, b["salesforce"], {"CloseDate": "2027-01-31"})
    journey.wanted[("salesforce", b["salesforce"]), "close_date"] = date(2027, 1, 31)
    _salesforce(journey, c["salesforce"], {"StageName": RELABELLED[0]})
    journey.wanted[("salesforce", c["salesforce"]), "stage"] = "won"
    _pipedrive(journey, d["pipedrive"], {"expected_close_date": "2027-02-28"})
    journey.wanted[("pipedrive", d["pipedrive"]), "close_date"] = date(2027, 2, 28)
    journey.made.append(("salesforce", _salesforce_create(journey, "Journey Alpha", "2027-06-30")))
    applied = _night(journey)
    assert _problems(journey, applied, _dry_run(journey)) == []

    # night 3: cut apply, run again at once, then a later night settles it
    e, f = picks[4:6]
    day = _hubspot_close(journey, e["hubspot"], datetime(2027, 5, 1, 0, 5))
    journey.wanted[("hubspot", e["hubspot"]), "close_date"] = day
    _salesforce(journey, f["salesforce"], {"CloseDate": "2027-07-31", "StageName": RELABELLED[0]})
    journey.wanted[("salesforce", f["salesforce"]), "close_date"] = date(2027, 7, 31)
    journey.wanted[("salesforce", f["salesforce"]), "stage"] = "won"
    journey.made.append(("salesforce", _salesforce_create(journey, "Journey Beta", "2027-08-31")))
    journey.made.append(("salesforce", _salesforce_create(journey, "Journey Gamma", "2027-09-30")))
    for deal_id in archived:
        _pipedrive(journey, str(deal_id), {"is_archived": False})
    hubspot_faults = world.sandbox.servers["hubspot"].faults
    world.sandbox.servers["salesforce"].faults.set(
        Faults(locked_ids=(f["salesforce"],), locked_writes=5)
    )
    try:
        hubspot_faults.set(Faults(drop=0.5, search_lag=600, seed=5))
        _night(journey, later=False)
        hubspot_faults.set(Faults(search_lag=600))  # a full read lists: search not needed
        assert _taken_back(journey) == []
        _night(journey, later=False)
        assert _taken_back(journey) == []
    finally:
        hubspot_faults.set(Faults())
        world.sandbox.servers["salesforce"].faults.set(Faults())
    applied = _night(journey)
    assert _problems(journey, applied, _dry_run(journey)) == []

    # night 4: deals made in HubSpot and Pipedrive (one won, one archived), an archived deal
    # edited, HubSpot refusing a batch whole for one invalid deal and leaving one unanswered
    g, h = picks[6:8]
    hubspot = journey.em("hubspot")
    owner = _owner(journey)
    with hubspot.lock:
        made = hubspot.store.create(
            {
                "dealname": "Journey Delta",
                "pipeline": "default",
                "dealstage": "appointmentscheduled",
                "closedate": _utc(journey, datetime(2027, 10, 31, 22, 45)),
                "amount": "777",
                "hubspot_owner_id": owner["hubspot"],
            }
        )["id"]
    journey.made.append(("hubspot", str(made)))
    with pipedrive.lock:
        won = pipedrive.store.create(
            {
                "title": "Journey Epsilon",
                "stage_id": 2,
                "status": "won",
                "expected_close_date": "2027-11-30",
                "value": Decimal(888),
                "user_id": int(owner["pipedrive"]),
            }
        )["id"]
        hidden = pipedrive.store.create(
            {
                "title": "Journey Zeta",
                "stage_id": 1,
                "expected_close_date": "2027-12-31",
                "value": Decimal(999),
                "user_id": int(owner["pipedrive"]),
            }
        )["id"]
    _pipedrive(journey, str(hidden), {"is_archived": True})
    journey.made.append(("pipedrive", str(won)))
    journey.archived_only.append(("pipedrive", str(hidden)))
    # one deal entered by two people, in HubSpot late (LA) or early (Sydney) in the portal's
    # day, whose UTC day is another, and in Pipedrive on the day they saw: one entity
    west = (journey.zone.utcoffset(datetime(2027, 4, 1)) or timedelta(0)) < timedelta(0)
    local = datetime(2027, 3, 31, 23, 10) if west else datetime(2027, 4, 1, 0, 30)
    with hubspot.lock:
        twice = hubspot.store.create(
            {
                "dealname": "Journey Eta 2027",
                "pipeline": "default",
                "dealstage": "appointmentscheduled",
                "closedate": _utc(journey, local),
                "amount": "555",
                "hubspot_owner_id": owner["hubspot"],
            }
        )["id"]
    with pipedrive.lock:
        pipedrive.store.create(
            {
                "title": "Journey Eta 2027",
                "stage_id": 2,
                "expected_close_date": local.date().isoformat(),
                "value": Decimal(555),
                "user_id": int(owner["pipedrive"]),
            }
        )
    journey.made.append(("hubspot", str(twice)))
    _pipedrive(journey, str(archived[0]), {"is_archived": True})
    _pipedrive(journey, str(archived[0]), {"value": Decimal(12345)})
    journey.wanted[("pipedrive", str(archived[0])), "amount"] = Decimal(12345)
    # an edit in Salesforce that reaches HubSpot, not the deal archived in Pipedrive (its API
    # edits no archived deal): each night reports that copy instead
    other = next(
        ids for ids in _entities(journey).values() if ("pipedrive", str(archived[1])) in ids.items()
    )
    _pipedrive(journey, str(archived[1]), {"is_archived": True})
    _salesforce(journey, other["salesforce"], {"Name": "Journey Archived Renamed"})
    journey.wanted[("salesforce", other["salesforce"]), "name"] = "Journey Archived Renamed"
    journey.shelved.add(("pipedrive", str(archived[1])))
    _salesforce(journey, g["salesforce"], {"Amount": Decimal(2222)})
    journey.wanted[("salesforce", g["salesforce"]), "amount"] = Decimal(2222)
    _salesforce(journey, h["salesforce"], {"Amount": Decimal(3333)})
    journey.wanted[("salesforce", h["salesforce"]), "amount"] = Decimal(3333)
    world.sandbox.servers["hubspot"].faults.set(
        Faults(batch_refused_whole=True, fail_ids=(h["hubspot"],), unanswered_ids=(g["hubspot"],))
    )
    try:
        _night(journey)
    finally:
        world.sandbox.servers["hubspot"].faults.set(Faults())
    applied = _night(journey)
    assert _problems(journey, applied, _dry_run(journey)) == []
    with pipedrive.lock:  # crmsync writes nothing into a deal archived in Pipedrive
        assert pipedrive.store.deals[archived[1]]["is_archived"] is True
        assert pipedrive.store.deals[archived[1]]["title"] != "Journey Archived Renamed"

    # the report's forecast months are the portal's: 31 March and 31 October picked late in
    # Los Angeles are April and November in UTC (and the 1 May picked at 00:05 in Sydney is
    # 30 April there)
    done = run_crmsync("report", "--config", str(world.config), "--format", "json")
    report = json.loads(done.stdout)
    months = {
        system: [
            (m["month"], m["deals"], m["weighted"])
            for m in report["systems"][system]["funnels"]["default"]["forecast"]["months"]
        ]
        for system in SYSTEMS
    }
    assert months["hubspot"] == months["salesforce"] == months["pipedrive"], months
    shown = {month for month, *_ in months["hubspot"]}
    assert {"2027-03", "2027-05", "2027-10"} <= shown, shown
