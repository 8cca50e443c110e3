"""People editing deals in the three emulated CRMs between nightly runs, at random but seeded.

Every edit goes straight into an emulator's in-memory store (under its lock), as a person using
the CRM's own screens would make it: it stamps the record's modification time, costs no API
call and shows in no request counter. `Editors.night` makes one night's worth of them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import yaml

from tests.integration.conftest import World

__all__ = ["EDITS", "SYSTEMS", "Editors"]

SYSTEMS = ("salesforce", "hubspot", "pipedrive")
CURRENCIES = ("USD", "EUR", "GBP")
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")


class Editors:
    """Seeded people editing the CRMs of `world`; `done` lists every edit made, for messages."""

    def __init__(self, world: World, seed: int) -> None:
        self.world, self.rng = world, random.Random(seed)
        document = yaml.safe_load(world.config.read_text())
        self.stage_maps: dict[str, dict[str, dict[str, str]]] = {
            s: {str(p): {str(n): c for n, c in m.items()} for p, m in sm.items()}
            for s in SYSTEMS
            for sm in [document["systems"][s]["stage_map"]]
        }
        self.owners = self._common_owners()
        self.done: list[str] = []
        self._made = 0

    def night(self, edits: int) -> None:
        """`edits` random edits, each of a kind in `EDITS`, spread over the three CRMs."""
        for _ in range(edits):
            kind = self.rng.choice(sorted(EDITS))
            EDITS[kind](self)

    # -- what people do -----------------------------------------------------------------------

    def set_field(self, system: str | None = None, deal_id: str | None = None) -> None:
        system = system or self.rng.choice(SYSTEMS)
        deal_id = deal_id or self._pick(system)
        if deal_id is None:
            return
        field = self.rng.choice(("amount", "close_date", "name", "currency", "owner_email"))
        self.set_value(system, deal_id, field, self._value(field))

    def set_stage(self) -> None:
        """An open stage, or won/lost (Pipedrive: its status), in the deal's own pipeline."""
        system = self.rng.choice(SYSTEMS)
        deal_id = self._pick(system)
        if deal_id is not None:
            stage = self.rng.choice((*OPEN_STAGES, "won", "lost"))
            self.set_value(system, deal_id, "stage", stage)

    def move_pipeline(self) -> None:
        """HubSpot or Pipedrive: the deal goes to the other pipeline, in a stage of it."""
        system = self.rng.choice(("hubspot", "pipedrive"))
        deal_id = self._pick(system)
        if deal_id is None:
            return
        em = self._em(system)
        with em.lock:
            if system == "hubspot":
                current = em.store.live[deal_id]["properties"]["pipeline"]
            else:
                current = str(em.store.deals[int(deal_id)]["pipeline_id"])
            other = next(p for p in sorted(self.stage_maps[system]) if p != current)
            stage = self.rng.choice(sorted(self.stage_maps[system][other]))
            if system == "hubspot":
                em.store.update(deal_id, {"pipeline": other, "dealstage": stage})
            else:
                em.store.update(int(deal_id), {"pipeline_id": int(other), "stage_id": int(stage)})
        self.done.append(f"{system} {deal_id}: moved to pipeline {other}, stage {stage}")

    def delete(self, system: str | None = None, deal_id: str | None = None) -> None:
        system = system or self.rng.choice(SYSTEMS)
        deal_id = deal_id or self._pick(system)
        if deal_id is None:
            return
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                em.store.delete(em.store.check_delete(deal_id))
            elif system == "hubspot":
                em.store.archive(deal_id)
            else:
                em.store.delete(int(deal_id))
        self.done.append(f"{system} {deal_id}: deleted")

    def restore(self, system: str, deal_id: str) -> None:
        """A deal deleted by mistake taken back out of its CRM's recycle bin (Salesforce's
        Undelete, HubSpot's restore of an archived deal, Pipedrive's restore of a deleted one)."""
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                em.store.undelete(deal_id)
            elif system == "hubspot":
                em.store.restore(deal_id)
            else:
                em.store.restore(int(deal_id))
        self.done.append(f"{system} {deal_id}: restored")

    def create_new(self) -> None:
        """A deal no other CRM has."""
        self._made += 1
        name = f"Nightly {self.rng.randrange(10**6)} — Deal {self._made}"
        self._create(self.rng.choice(SYSTEMS), name, self._value("owner_email"), None)

    def create_copy(self) -> None:
        """A deal named, owned and closing like another CRM's deal: it joins that deal's
        entity when the entity lacks this CRM, and duplicates a deal of it otherwise."""
        system, source = self.rng.sample(SYSTEMS, 2)
        deal_id = self._pick(source)
        if deal_id is None:
            return
        row = self._row(source, deal_id)
        self._create(system, row["name"], row["owner_email"], row["close_date"])

    def edit_in_two(self) -> None:
        """The same field of one entity edited in two CRMs (to two values, or to one)."""
        entities = [m for m in self.world.members().values() if len(m) >= 2]
        live = [m for m in entities if all(self.is_live(s, i) for s, i in m.items())]
        if not live:
            return
        members = self.rng.choice(live)
        field = self.rng.choice(("amount", "close_date", "name", "stage"))
        value = self._value(field)
        for system in self.rng.sample(sorted(members), 2):
            self.set_value(system, members[system], field, value)
            if self.rng.random() < 0.5:
                value = self._value(field)

    # -- one CRM's own fields -----------------------------------------------------------------

    def _value(self, field: str) -> Any:
        rng = self.rng
        if field == "amount":
            return Decimal(rng.randint(1000, 99999))
        if field == "close_date":
            return date(2026, 12, 1) + timedelta(days=rng.randint(0, 400))
        if field == "name":
            return f"Renamed {rng.randrange(10**6)}"
        if field == "currency":
            return rng.choice(CURRENCIES)
        if field == "stage":
            return rng.choice((*OPEN_STAGES, "won", "lost"))
        return rng.choice(sorted(self.owners))

    def set_value(self, system: str, deal_id: str, field: str, value: Any) -> None:
        """`field` of the deal set to `value` (canonical: an owner by email, a stage by key, a
        probability as a fraction of 1)."""
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                values = self._salesforce(field, value)
                em.store.apply(em.store.check_update(deal_id, values))
            elif system == "hubspot":
                pipeline = em.store.live[deal_id]["properties"]["pipeline"]
                em.store.update(deal_id, self._hubspot(pipeline, field, value))
            else:
                pipeline = str(em.store.deals[int(deal_id)]["pipeline_id"])
                em.store.update(int(deal_id), self._pipedrive(pipeline, field, value))
        self.done.append(f"{system} {deal_id}: {field} = {value}")

    def _salesforce(self, field: str, value: Any) -> dict[str, Any]:
        if field == "stage":
            return {"StageName": self._native("salesforce", "default", value)}
        if field == "owner_email":
            return {"OwnerId": self.owners[value]["salesforce"]}
        if field == "probability":
            return {"Probability": None if value is None else value * 100}
        names = {"amount": "Amount", "close_date": "CloseDate", "name": "Name"}
        name = names.get(field, "CurrencyIsoCode")
        return {name: value.isoformat() if isinstance(value, date) else value}

    def _hubspot(self, pipeline: str, field: str, value: Any) -> dict[str, Any]:
        if field == "stage":
            return {"dealstage": self._native("hubspot", pipeline, value)}
        if field == "owner_email":
            return {"hubspot_owner_id": self.owners[value]["hubspot"]}
        if field == "close_date":
            return {"closedate": f"{value.isoformat()}T00:00:00Z"}
        if field == "probability":  # the forecast a person sets (hs_deal_stage_probability is
            return {"hs_forecast_probability": "" if value is None else str(value)}  # the stage's)
        names = {"amount": "amount", "name": "dealname", "currency": "deal_currency_code"}
        return {names[field]: str(value)}

    def _pipedrive(self, pipeline: str, field: str, value: Any) -> dict[str, Any]:
        if field == "stage":
            if value in ("won", "lost"):
                return {"status": value}
            return {"stage_id": int(self._native("pipedrive", pipeline, value)), "status": "open"}
        if field == "owner_email":
            return {"user_id": int(self.owners[value]["pipedrive"])}
        if field == "close_date":
            return {"expected_close_date": value.isoformat()}
        if field == "probability":
            return {"probability": None if value is None else value * 100}
        names = {"amount": "value", "name": "title", "currency": "currency"}
        return {names[field]: value}

    def _native(self, system: str, pipeline: str, stage: str) -> str:
        natives = sorted(n for n, s in self.stage_maps[system][pipeline].items() if s == stage)
        if not natives:  # Pipedrive has no won/lost stage; _pipedrive sets its status
            natives = sorted(self.stage_maps[system][pipeline])
        return self.rng.choice(natives)

    def _create(self, system: str, name: str, owner: str | None, close: date | None) -> None:
        owner = owner if owner in self.owners else self._value("owner_email")
        assert owner is not None
        close = close or self._value("close_date")
        amount, stage = self._value("amount"), self.rng.choice(OPEN_STAGES)
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                values = {
                    "Name": name,
                    "StageName": self._native(system, "default", stage),
                    "CloseDate": close.isoformat(),
                    "Amount": amount,
                    "OwnerId": self.owners[owner][system],
                }
                made = em.store.apply(em.store.check_create(values))
            elif system == "hubspot":
                pipeline = self.rng.choice(sorted(self.stage_maps[system]))
                made = em.store.create(
                    {
                        "dealname": name,
                        "pipeline": pipeline,
                        "dealstage": self._native(system, pipeline, stage),
                        "closedate": f"{close.isoformat()}T00:00:00Z",
                        "amount": str(amount),
                        "hubspot_owner_id": self.owners[owner][system],
                    }
                )["id"]
            else:
                pipeline = self.rng.choice(sorted(self.stage_maps[system]))
                made = em.store.create(
                    {
                        "title": name,
                        "stage_id": int(self._native(system, pipeline, stage)),
                        "expected_close_date": close.isoformat(),
                        "value": amount,
                        "user_id": int(self.owners[owner][system]),
                    }
                )["id"]
        self.done.append(f"{system} {made}: created {name!r} ({owner}, {close})")

    # -- reading the emulators ----------------------------------------------------------------

    def _em(self, system: str) -> Any:
        return self.world.sandbox.servers[system].emulator

    def live_ids(self, system: str) -> list[str]:
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                table = em.store.tables["Opportunity"]
                return sorted(r["Id"] for r in table if not r.get("IsDeleted"))
            if system == "hubspot":
                return sorted(em.store.live)
            return [str(i) for i, d in sorted(em.store.deals.items()) if d["status"] != "deleted"]

    def is_live(self, system: str, deal_id: str) -> bool:
        return deal_id in self.live_ids(system)

    def _pick(self, system: str) -> str | None:
        ids = self.live_ids(system)
        return self.rng.choice(ids) if ids else None

    def _row(self, system: str, deal_id: str) -> dict[str, Any]:
        """The matching keys of a live deal, read from its CRM."""
        em = self._em(system)
        with em.lock:
            if system == "salesforce":
                r = em.store.by_id[deal_id]
                owner = next(
                    (e for e, ids in self.owners.items() if ids["salesforce"] == r["OwnerId"]), None
                )
                return {"name": r["Name"], "owner_email": owner, "close_date": _day(r["CloseDate"])}
            if system == "hubspot":
                p = em.store.live[deal_id]["properties"]
                owner = next(
                    (
                        e
                        for e, ids in self.owners.items()
                        if ids["hubspot"] == p["hubspot_owner_id"]
                    ),
                    None,
                )
                day = _day((p.get("closedate") or "")[:10])
                return {"name": p["dealname"], "owner_email": owner, "close_date": day}
            d = em.store.deals[int(deal_id)]
            user = (d.get("user_id") or {}).get("id")
            owner = next(
                (e for e, ids in self.owners.items() if ids["pipedrive"] == str(user)), None
            )
            day = _day(d.get("expected_close_date") or "")
            return {"name": d["title"], "owner_email": owner, "close_date": day}

    def _common_owners(self) -> dict[str, dict[str, str]]:
        """Owner email -> native owner id per CRM, for the people all three CRMs know."""
        found: dict[str, dict[str, str]] = {}
        for system, rows, key, email in (
            ("salesforce", self._em("salesforce").store.tables["User"], "Id", "Email"),
            ("hubspot", self._em("hubspot").store.owners, "id", "email"),
            ("pipedrive", self._em("pipedrive").store.users.values(), "id", "email"),
        ):
            for row in rows:
                if row.get(email):
                    found.setdefault(str(row[email]).lower(), {})[system] = str(row[key])
        return {e: ids for e, ids in found.items() if len(ids) == len(SYSTEMS)}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


EDITS: dict[str, Callable[[Editors], None]] = {
    "field": Editors.set_field,
    "stage": Editors.set_stage,
    "pipeline": Editors.move_pipeline,
    "delete": Editors.delete,
    "new": Editors.create_new,
    "copy": Editors.create_copy,
    "two": Editors.edit_in_two,
}
