"""Seeded generator of realistic three-CRM sandbox datasets with planted discrepancies.

Each real deal (an *entity*) lives in one, two or three systems; copies that agree map to the
same canonical values. A few percent of entities get exactly one planted problem, recorded in
the planted list so tests and benchmarks can measure recall and precision:

- field kinds (`stage amount currency close_date owner status`): one system's copy differs in
  that field, the other two agree. `status` also moves the stage to won/lost (as the CRMs do);
  `stage` moves the native probability with it. The differing copy is the newest for half of
  them (`"newest": true`) and the oldest for the others.
- `missing_in`: a deal of all three systems whose copy in `system` is absent (when that system
  is Salesforce, the other two carry no link ids and must be matched by key).
- `duplicate`: a second copy of the deal in `system` (same values and links, its id in `ids`).
- `deleted`: the copy in `system` is deleted (SF IsDeleted, HubSpot archived, Pipedrive status
  deleted), live in the others.
- `ambiguous`: a HubSpot+Pipedrive deal (no link ids) with a second deal in `system` whose name
  differs only in case/punctuation/company suffix, same owner and close month (`ids`).

Deterministic for (deals, seed, now): all randomness comes from one `random.Random(seed)` and
all times from `now` (the fixed `BASE_TIME` unless given).
"""

from __future__ import annotations

import math
import os
import random
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.sandbox import dataset_records as rec
from connectors.sandbox.dataset import planted_path_for, save_dataset, save_planted
from connectors.sandbox.dataset_catalog import (
    COMPANIES,
    COMPANY_SUFFIXES,
    FIRST_NAMES,
    LAST_NAMES,
    PRODUCTS,
)
from connectors.sandbox.dataset_records import Copy, Person

__all__ = [
    "BASE_TIME",
    "KINDS",
    "SYSTEMS",
    "Generated",
    "generate",
    "generate_full",
    "normalised_name",
    "write_generated",
]

BASE_TIME = datetime(2026, 1, 1)  # "now" of every generated dataset (naive = UTC)
SYSTEMS = ("salesforce", "hubspot", "pipedrive")
FIELD_KINDS = ("stage", "amount", "currency", "close_date", "owner", "status")
KINDS = (*FIELD_KINDS, "missing_in", "duplicate", "deleted", "ambiguous")
PLANT_RATE = 0.004  # per kind, of entities: ten kinds make ~4 % of entities planted
_FIELD_OF = {"owner": "owner_email"}
_OPEN = ("lead", "qualified", "proposal", "negotiation")
_STATUS_WEIGHTS = (("lead", 22), ("qualified", 17), ("proposal", 13), ("negotiation", 8),
                   ("won", 17), ("lost", 23))  # fmt: skip
_CURRENCIES = (("USD", 60), ("EUR", 28), ("GBP", 12))
# median days in each open stage: a won deal takes about two months from lead to won (p90 about
# four), as B2B sales cycles run; later stages take longer, the proposal most (the buyer reviews)
_STINT_DAYS = {"lead": 10.0, "qualified": 14.0, "proposal": 21.0, "negotiation": 16.0}
_STALLED = 0.2  # share of open deals stuck in their stage for longer than a month
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_SUFFIX_WORDS = frozenset(s.lower() for s in COMPANY_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Generated:
    seed: int
    deals: int
    dataset: dict[str, Any]
    planted: list[dict[str, Any]]
    entity_refs: dict[str, dict[str, str]]  # entity id -> {system: native id}, every entity

    def planted_document(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "deals": self.deals,
            "entities": len(self.entity_refs),
            "planted": self.planted,
            "entity_refs": self.entity_refs,
        }


@dataclass(frozen=True, slots=True)
class _Entity:
    base: Copy  # the truth; copies start from it
    systems: tuple[str, ...]
    plant: tuple[str, str, bool] | None = None  # (kind, system, newest)


def normalised_name(name: str) -> str:
    """The name part of the match key: case, punctuation, spacing and company suffix ignored."""
    words = re.sub(r"[^0-9a-z]+", " ", name.lower()).split()
    return " ".join(w for w in words if w not in _SUFFIX_WORDS)


def generate(
    deals: int, seed: int, now: datetime = BASE_TIME
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`(dataset, planted)` for about `deals` deals per system, as of `now` (naive UTC)."""
    result = generate_full(deals, seed, now)
    return result.dataset, result.planted


def write_generated(out: str | os.PathLike[str], result: Generated) -> tuple[Path, Path]:
    """Write the dataset to `out` and the planted document beside it; returns both paths."""
    planted_path = planted_path_for(out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_dataset(out, result.dataset)
    save_planted(planted_path, result.planted_document())
    return Path(out), planted_path


def generate_full(deals: int, seed: int, now: datetime = BASE_TIME) -> Generated:
    if deals < 0:
        raise ValueError(f"deals must be 0 or more, not {deals}")
    rng = random.Random(seed)
    people, specials = _people(rng, deals)
    entities = _entities(rng, round(deals / 0.75), people, specials, now)
    entities = _plant(rng, entities)
    return _Builder(rng, seed, deals, people, specials, now).build(entities)


def _people(rng: random.Random, deals: int) -> tuple[list[Person], dict[str, Person]]:
    """Owners present everywhere (a few with differently-cased emails) plus two specials."""
    count = min(40, 8 + deals // 250)
    pairs = rng.sample(range(len(FIRST_NAMES) * len(LAST_NAMES)), count + 2)
    people = []
    for i, pair in enumerate(pairs):
        first, last = FIRST_NAMES[pair % len(FIRST_NAMES)], LAST_NAMES[pair // len(FIRST_NAMES)]
        email = f"{first}.{last}@example.com".lower()
        emails: dict[str, str | None] = dict.fromkeys(SYSTEMS, email)
        if i in (1, 2, 3):  # the same person, typed differently in one system
            emails[SYSTEMS[i - 1]] = f"{first}.{last}@Example.com"
        people.append(
            Person(first, last, emails, rec.salesforce_id("005", 100 + i),
                   str(41629779 + 1031 * i), 12001 + i)
        )  # fmt: skip
    sf_only, queue = people.pop(), people.pop()
    specials = {
        "salesforce": replace(sf_only, emails={"salesforce": sf_only.emails["salesforce"]}),
        "hubspot": replace(queue, first="Inbound", last="Queue", emails={"hubspot": None}),
    }
    return people, specials


def _entities(
    rng: random.Random,
    count: int,
    people: list[Person],
    specials: dict[str, Person],
    now: datetime,
) -> list[_Entity]:
    taken: dict[str, int] = {}
    companies: dict[str, int] = {}
    accounts: dict[int, str] = {}
    stages, stage_weights = [s for s, _ in _STATUS_WEIGHTS], [w for _, w in _STATUS_WEIGHTS]
    currencies, currency_weights = [c for c, _ in _CURRENCIES], [w for _, w in _CURRENCIES]
    memberships = [SYSTEMS, (SYSTEMS[0], SYSTEMS[1]), (SYSTEMS[0], SYSTEMS[2]), SYSTEMS[1:]]
    out = []
    for _ in range(count):
        r = rng.random()
        systems = (
            memberships[0] if r < 0.5
            else memberships[1 + int((r - 0.5) * 12)] if r < 0.75
            else (SYSTEMS[int((r - 0.75) * 12)],)
        )  # fmt: skip
        line = "renewals" if rng.random() < 0.25 else "sales"
        company = rng.choice(COMPANIES)
        if rng.random() < 0.7:
            company += " " + rng.choice(COMPANY_SUFFIXES)
        final = rng.choices(stages, stage_weights)[0]
        history = _history(rng, final, now)
        created, last = history[0][1], history[-1][1]
        room = (now - 2 * _DAY - last).total_seconds()
        updated = last + timedelta(seconds=rng.randrange(3600, int(min(room, 10 * 86400))))
        if final in ("won", "lost"):
            close = last.date()
        elif rng.random() < 0.15:  # overdue
            close = max(created.date(), now.date() - timedelta(days=rng.randint(1, 60)))
        else:
            close = now.date() + timedelta(days=rng.randint(7, 270))
        name = f"{company} — {rng.choice(PRODUCTS[line])} {close.year}"
        key = normalised_name(name)
        if key in taken:  # keep match keys unique so only planted ambiguity exists
            taken[key] += 1
            name = f"{name} (Phase {taken[key]})"
        taken.setdefault(normalised_name(name), 1)
        owner = rng.choice(people)
        if len(systems) == 1 and systems[0] in specials and rng.random() < 0.1:
            owner = specials[systems[0]]
        company_no = companies.setdefault(company, len(companies) + 1)
        if company_no not in accounts:
            accounts[company_no] = rec.salesforce_id("001", company_no)
        base = Copy(
            entity="", line=line, name=name, company=company,
            account_id=accounts[company_no], org_id=company_no,
            history=history, status=final if final in ("won", "lost") else "open",
            amount=_amount(rng, line), currency=rng.choices(currencies, currency_weights)[0],
            close_date=close, owner=owner, created_at=created, updated_at=updated,
        )  # fmt: skip
        out.append(_Entity(base, systems))
    out.sort(key=lambda e: e.base.created_at)
    return [replace(e, base=replace(e.base, entity=f"E{i + 1:06d}")) for i, e in enumerate(out)]


def _history(rng: random.Random, final: str, now: datetime) -> tuple[tuple[str, datetime], ...]:
    """Stages entered up to `final`, funnel order, each stint a few weeks long. A closed deal
    was created 20-540 days ago and moved on from there; an open one is dated back from when
    it entered its current stage: lately for most, long ago for the stalled few."""
    start = 0 if rng.random() < 0.8 else 1
    if final == "won":
        keys = [*_OPEN[start:], "won"]
    elif final == "lost":
        keys = [*_OPEN[start : rng.randint(start, 3) + 1], "lost"]
    else:
        keys = list(_OPEN[min(start, _OPEN.index(final)) : _OPEN.index(final) + 1])
    stints = [_stint(rng, key) for key in keys[:-1]]
    if final in _OPEN:
        entered = now - (_stalled_for(rng) if rng.random() < _STALLED else _moving_for(rng))
        times = [entered - sum(stints[i:], timedelta()) for i in range(len(stints))]
        return tuple(zip(keys, [*times, entered], strict=True))
    created = now - timedelta(seconds=rng.randrange(20 * 86400, 540 * 86400))
    span, total = now - 3 * _DAY - created, sum(stints, timedelta())
    if total > span * 0.9:  # a young deal closed fast: its stints shrink to fit before now
        share = span * 0.9 / total
        stints = [_whole(stint.total_seconds() * share) for stint in stints]
    times = [created]
    for stint in stints:  # strictly increasing, even when a shrunk stint rounds to nothing
        times.append(max(times[-1] + stint, times[-1] + timedelta(minutes=1)))
    return tuple(zip(keys, times, strict=True))


def _stint(rng: random.Random, stage: str) -> timedelta:
    """Time spent in an open stage: log-normal around the stage's median, an hour at least."""
    days = _STINT_DAYS[stage] * math.exp(rng.gauss(0, 0.8))
    return _whole(max(3600.0, days * 86400))


def _moving_for(rng: random.Random) -> timedelta:
    """How long ago a moving open deal entered its current stage: inside 30 stale days."""
    return timedelta(seconds=rng.randrange(3 * 86400, 28 * 86400))


def _stalled_for(rng: random.Random) -> timedelta:
    return timedelta(seconds=rng.randrange(31 * 86400, 200 * 86400))


def _amount(rng: random.Random, line: str) -> Decimal:
    top = 120_000 if line == "renewals" else 300_000
    value = math.exp(rng.uniform(math.log(1500), math.log(top)))
    if rng.random() < 0.55:
        return Decimal(int(value * 100)) / 100  # with cents
    return Decimal(int(value / 100) * 100)


def _plant(rng: random.Random, entities: list[_Entity]) -> list[_Entity]:
    """Give a few entities one problem each; force the membership each kind needs."""
    per_kind = max(1, round(len(entities) * PLANT_RATE))
    order = list(range(len(entities)))
    rng.shuffle(order)
    cursor, newest_toggle = 0, True
    out = list(entities)
    for kind in KINDS:
        systems = list(SYSTEMS[1:] if kind == "ambiguous" else SYSTEMS)
        rng.shuffle(systems)
        placed = 0
        while placed < per_kind and cursor < len(order):
            i = order[cursor]
            cursor += 1
            base = out[i].base
            if base.owner.email is None or len(base.owner.emails) < 3:
                continue  # special owners cannot own a multi-system deal
            if kind in ("stage", "status") and base.status != "open":
                continue
            system = systems[placed % len(systems)]
            newest = True
            if kind in FIELD_KINDS:
                newest, newest_toggle = newest_toggle, not newest_toggle
            members: tuple[str, ...] = SYSTEMS[1:] if kind == "ambiguous" else SYSTEMS
            if kind == "missing_in":
                members = tuple(s for s in SYSTEMS if s != system)
            out[i] = _Entity(base, members, (kind, system, newest))
            placed += 1
    return out


class _Builder:
    """Turns entities into native records, assigning ids in creation order."""

    def __init__(
        self,
        rng: random.Random,
        seed: int,
        deals: int,
        people: list[Person],
        specials: dict[str, Person],
        now: datetime = BASE_TIME,
    ) -> None:
        self.rng, self.seed, self.deals = rng, seed, deals
        self.people, self.specials = people, specials
        self.next_id = dict.fromkeys(SYSTEMS, 0)
        self.history_id = self.flow_id = 0
        self.planted: list[dict[str, Any]] = []
        self.lookalike_of: dict[str, dict[str, Any]] = {}  # look-alike entity -> its plant
        self.refs: dict[str, dict[str, str]] = {}
        self.accounts: set[str] = set()  # the Salesforce Accounts emitted
        self.hs_companies: set[str] = set()  # the HubSpot companies emitted
        # Pipedrive organizations, one per company of any CRM: id -> (name, owner, created)
        self.orgs: dict[int, tuple[str, Person, datetime]] = {}
        catalog = now - timedelta(days=3 * 365)
        pd_pipelines, pd_stages = rec.pd_pipelines_and_stages(catalog)
        everyone = [*people, *specials.values()]
        self.pd_people = {p.pd_id: p for p in everyone if "pipedrive" in p.emails}
        self.ds: dict[str, Any] = {
            "salesforce": {
                "OpportunityStage": rec.sf_stages(),
                "User": [rec.sf_user(p, catalog) for p in everyone if "salesforce" in p.emails],
                "Account": [],
                "Opportunity": [],
                "OpportunityHistory": [],
            },
            "hubspot": {
                "pipelines": rec.hs_pipelines(catalog),
                "owners": [
                    rec.hs_owner(p, catalog, "QUEUE" if p is specials["hubspot"] else "PERSON")
                    for p in everyone
                    if "hubspot" in p.emails
                ],
                "deals": [],
                "companies": [],
            },
            "pipedrive": {
                "pipelines": pd_pipelines,
                "stages": pd_stages,
                "users": [
                    rec.pd_user(p, catalog, i == 0)
                    for i, p in enumerate(p for p in everyone if "pipedrive" in p.emails)
                ],
                "organizations": [],
                "deals": [],
                "deal_flows": {},
            },
        }

    def new_id(self, system: str) -> str:
        self.next_id[system] += 1
        n = self.next_id[system]
        if system == "salesforce":
            return rec.salesforce_id("006", n)
        return str(9_100_000_000 + n * 7) if system == "hubspot" else str(n)

    def build(self, entities: list[_Entity]) -> Generated:
        extras: list[_Entity] = []
        for entity in entities:
            extras += self.add(entity)
        for n, extra in enumerate(extras, start=len(entities) + 1):
            # second candidates of ambiguous plants: created last, so numbered last
            item = self.lookalike_of.pop(extra.base.entity)
            self.add(replace(extra, base=replace(extra.base, entity=f"E{n:06d}")))
            item["other_entity"] = f"E{n:06d}"
            item["ids"].append(self.refs[f"E{n:06d}"][item["system"]])
        self.ds["pipedrive"]["organizations"] = [
            rec.pd_organization(org_id, *org) for org_id, org in sorted(self.orgs.items())
        ]
        return Generated(self.seed, self.deals, self.ds, self.planted, self.refs)

    def add(self, entity: _Entity) -> list[_Entity]:
        base, plant = entity.base, entity.plant
        ids = {s: self.new_id(s) for s in entity.systems}
        self.refs[base.entity] = ids
        copies = dict.fromkeys(ids, base)
        stamps = {s: self.jitter(base.updated_at) for s in ids}
        item: dict[str, Any] = {}
        extra: list[_Entity] = []
        if plant is not None:
            kind, system, newest = plant
            item = {"kind": kind, "entity": base.entity, "refs": dict(ids),
                    "field": _FIELD_OF.get(kind, kind) if kind in FIELD_KINDS else None,
                    "system": system, "newest": newest}  # fmt: skip
            if kind in FIELD_KINDS:
                copies[system], item["expected"], item["actual"] = self.differ(kind, base, newest)
                stamps[system] = copies[system].updated_at
            elif kind == "missing_in":
                item |= {"expected": "present", "actual": "absent"}
            elif kind == "deleted":
                copies[system] = replace(base, deleted=True, updated_at=base.updated_at + _DAY)
                stamps[system] = copies[system].updated_at
                item |= {"expected": "live", "actual": "deleted"}
            elif kind == "ambiguous":
                extra = [self.lookalike(base, system)]
                self.lookalike_of[extra[0].base.entity] = item
                item["ids"] = [ids[system]]
            self.planted.append(item)
        links = self.links(ids)
        for system, copy in copies.items():
            self.emit(system, copy, ids[system], links[system], stamps[system])
        if plant is not None and plant[0] == "duplicate":
            system = plant[1]
            dup_id = self.new_id(system)
            twin = self.duplicate(copies[system], stamps[system])
            self.emit(system, twin, dup_id, links[system], twin.updated_at)
            item["ids"] = [ids[system], dup_id]
        return extra

    def jitter(self, t: datetime) -> datetime:
        return t + timedelta(seconds=self.rng.randrange(0, 3 * 3600))

    def links(self, ids: dict[str, str]) -> dict[str, dict[str, str | None]]:
        """Which link fields each copy carries: HubSpot and Pipedrive always point at the
        Salesforce copy; the other directions are filled in about half the time."""
        sf, hs, pd = (ids.get(s) for s in SYSTEMS)
        half = self.rng.random
        return {
            "salesforce": {"hubspot": hs if half() < 0.5 else None,
                           "pipedrive": pd if half() < 0.5 else None},
            "hubspot": {"salesforce": sf, "pipedrive": pd if sf and half() < 0.5 else None},
            "pipedrive": {"salesforce": sf, "hubspot": hs if sf and half() < 0.5 else None},
        }  # fmt: skip

    def differ(self, kind: str, base: Copy, newest: bool) -> tuple[Copy, Any, Any]:
        """The differing copy of a field plant, with the canonical expected/actual values."""
        rng = self.rng
        # other copies are stamped within 3 h after base.updated_at (see `jitter`)
        updated = base.updated_at + _DAY if newest else base.updated_at - _HOUR / 2
        copy = replace(base, updated_at=updated)
        if kind == "stage":
            new = rng.choice([k for k in _OPEN if k != base.stage])
            return replace(copy, history=_moved(base, new, updated)), base.stage, new
        if kind == "status":
            new = rng.choice(("won", "lost"))
            return replace(copy, status=new, history=_moved(base, new, updated)), "open", new
        if kind == "amount":
            new_amount = (base.amount * rng.choice((Decimal("0.8"), Decimal("1.25")))).quantize(
                Decimal("0.01")
            )
            if new_amount == new_amount.to_integral_value():  # spelt as whole amounts are
                new_amount = new_amount.quantize(Decimal(1))
            return replace(copy, amount=new_amount), _dec(base.amount), _dec(new_amount)
        if kind == "currency":
            new = rng.choice([c for c, _ in _CURRENCIES if c != base.currency])
            return replace(copy, currency=new), base.currency, new
        if kind == "close_date":
            new_date = base.close_date + timedelta(days=rng.choice((-1, 1)) * rng.randint(5, 60))
            return replace(copy, close_date=new_date), str(base.close_date), str(new_date)
        owner = rng.choice([p for p in self.people if p is not base.owner])
        return replace(copy, owner=owner), base.owner.email, owner.email

    def duplicate(self, copy: Copy, stamped: datetime) -> Copy:
        """The same deal entered a second time (an import run twice), a day later."""
        created = stamped + _DAY
        history: tuple[tuple[str, datetime], ...] = ((copy.stage, created),)
        if copy.status != "open":
            last_open = [k for k, _ in copy.history if k in _OPEN][-1]
            history = ((last_open, created), (copy.stage, created + _HOUR))
        return replace(copy, history=history, created_at=created, updated_at=created + 2 * _HOUR)

    def lookalike(self, base: Copy, system: str) -> _Entity:
        """A different deal whose match key equals `base`'s: name differs only cosmetically."""
        created = base.updated_at + _DAY
        day = base.close_date.replace(day=1 + (base.close_date.day + 9) % 28)
        copy = replace(
            base,
            entity=f"lookalike-of-{base.entity}",
            name=base.name.upper().replace(" — ", " - "),
            history=(("lead", created),),
            status="open",
            amount=(base.amount / 3).quantize(Decimal("0.01")),
            close_date=day,
            created_at=created,
            updated_at=created + _HOUR,
        )
        return _Entity(copy, (system,))

    def emit(
        self,
        system: str,
        copy: Copy,
        native_id: str,
        links: dict[str, str | None],
        updated: datetime,
    ) -> None:
        variant = self.rng.randrange(2)
        data = self.ds[system]
        # The company's organization, owned by its first Pipedrive deal's owner (else by the
        # API user), so that every deal's `org_id` object names the same owner.
        you = self.ds["pipedrive"]["users"][0]["id"]
        mine = system == "pipedrive" and copy.owner.pd_id in self.pd_people
        owner = copy.owner if mine else self.pd_people[you]
        self.orgs.setdefault(copy.org_id, (copy.company, owner, copy.created_at))
        if system == "salesforce":
            if copy.account_id not in self.accounts:  # each once, as its first deal names it
                self.accounts.add(copy.account_id)
                data["Account"].append(rec.sf_account(copy))
            data["Opportunity"].append(rec.sf_opportunity(copy, native_id, links, variant, updated))
            data["OpportunityHistory"] += rec.sf_history(
                copy, native_id, self.history_id + 1, variant
            )
            self.history_id += len(copy.history)
        elif system == "hubspot":
            deal = rec.hs_deal(copy, native_id, links, variant, updated)
            company = rec.hs_company_id(copy.org_id)
            if company not in self.hs_companies:  # each once, as its first deal names it
                self.hs_companies.add(company)
                data["companies"].append(rec.hs_company(copy, company))
            data["deals"].append({**deal, "associations": rec.hs_deal_companies(company)})
        else:
            deal_id = int(native_id)
            org_owner = self.orgs[copy.org_id][1]
            data["deals"].append(rec.pd_deal(copy, deal_id, links, variant, updated, org_owner))
            flow = rec.pd_flow(copy, deal_id, self.flow_id + 1, variant)
            self.flow_id += len(flow)
            data["deal_flows"][native_id] = flow


def _moved(base: Copy, new: str, updated: datetime) -> tuple[tuple[str, datetime], ...]:
    """`base`'s history as it looks after the deal moved to `new` by `updated`."""
    keys = [k for k, _ in base.history]
    if new in keys:  # went back: the history ends where that stage was entered
        return base.history[: keys.index(new) + 1]
    last = base.history[-1][1]
    return (*base.history, (new, last + _whole((updated - last).total_seconds() / 2)))


def _whole(seconds: float) -> timedelta:
    """A duration in whole seconds: the CRMs' timestamps carry none smaller (Pipedrive's
    "YYYY-MM-DD HH:MM:SS" cannot even say them)."""
    return timedelta(seconds=round(seconds))


def _dec(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
