"""Messy values people keep in real CRMs, set in one CRM's emulator and walked through a
reconcile with apply and the next dry-run: each reaches the other CRMs whole, or is a one-line
error of the plan naming the CRM, the record, the field and why, while the rest of the run goes
on. Never a failed write retried every night, a value cut short, or a change planned again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from mapping.model import Deal
from sync.plan import Plan
from tests.integration.conftest import World
from tests.integration.crm_users import SYSTEMS, Editors
from tests.integration.test_fields_round_trip import _canonical, _stored, converged
from tests.integration.test_partial_targets import _reconcile

LONG_NAME = "Global rollout — " + "phase two and three, EMEA and APAC, " * 6  # 233 characters

# (CRM a person edits, canonical field, value): each reaches the other two CRMs as it is.
TRAVELS: list[tuple[str, str, Any]] = [
    ("pipedrive", "name", "  padded on both sides  "),
    ("salesforce", "name", "Emoji 🚀 and 𝔘 outside the BMP"),
    ("hubspot", "name", "שלום עולם — مرحبا"),
    ("hubspot", "name", "first line\nsecond line"),
    ("pipedrive", "name", 'O\'Brien "quoted" back\\slash 100% a_b'),
    ("salesforce", "name", "<script>alert(1)</script> & <b>bold</b>"),
    ("pipedrive", "amount", Decimal("-500")),
    ("salesforce", "amount", Decimal("1000000000000.5")),
    ("hubspot", "amount", Decimal("12.3456")),
    ("salesforce", "close_date", date(1900, 1, 1)),
    ("hubspot", "close_date", date(2199, 12, 31)),
    ("pipedrive", "close_date", date(2028, 2, 29)),
    ("hubspot", "probability", Decimal("0")),
    ("salesforce", "probability", Decimal("1")),
    ("pipedrive", "probability", Decimal("0.123456")),
]
# (CRM, its own fields as a person sets them, canonical field, value the others get).
NATIVE: list[tuple[str, dict[str, Any], str, Any]] = [
    ("pipedrive", {"value": Decimal("1000.5"), "currency": "JPY"}, "amount", "1000.5 JPY"),
    ("salesforce", {"Amount": Decimal("12.345"), "CurrencyIsoCode": "BHD"}, "amount", "12.345 BHD"),
    ("salesforce", {"Amount": Decimal("7.125"), "CurrencyIsoCode": "KWD"}, "amount", "7.125 KWD"),
    # An amount of 0 is no amount: the others get none (Pipedrive a 0 of its own).
    ("hubspot", {"amount": "0"}, "amount", None),
    # An amount without a currency is in the instance's configured one.
    ("hubspot", {"amount": "777", "deal_currency_code": ""}, "amount", "777 USD"),
    # HubSpot's closedate is a datetime: a time of day, an offset, read as its day in the
    # portal's zone, UTC here (the default); test_hubspot_close_dates.py has other zones.
    ("hubspot", {"closedate": "2027-03-15T14:30:00.000Z"}, "close_date", date(2027, 3, 15)),
    ("hubspot", {"closedate": "2027-03-15T22:00:00-05:00"}, "close_date", date(2027, 3, 16)),
]
# Fields written, and so read back, together.
TOGETHER = {"amount": ("amount", "currency"), "stage": ("stage", "status")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small three-CRM world whose CRMs agree."""
    yield from converged(tmp_path_factory, "odd-values", deals=80)


@pytest.fixture(scope="module")
def entities(world: World) -> Iterator[dict[str, str]]:
    """The entities open in all three CRMs once they agree; each test takes its own."""
    found = [
        ids
        for ids in world.members().values()
        if len(ids) == len(SYSTEMS)
        and all(_stored(world, s, ids[s]).status.value == "open" for s in SYSTEMS)
    ]
    assert len(found) >= len(TRAVELS) + len(NATIVE) + 5, "too few open three-CRM entities"
    return iter(found)


def _planned(plan: Plan, ids: dict[str, str], fields: tuple[str, ...]) -> list[str]:
    refs = set(ids.items())
    return [
        f"{c.system} {c.field} -> {c.to_value!r}"
        for c in plan.changes
        if (c.system, c.id) in refs and c.field in fields
    ] + [
        f"conflict {c.field}" for c in plan.conflicts if any((s, i) in refs for s, i, _ in c.values)
    ]


def _errors(plan: Plan, ids: dict[str, str]) -> list[tuple[str, str, str, str]]:
    refs = set(ids.items())
    return [
        (e["system"], e["id"], e["field"], e["reason"])
        for e in plan.errors
        if (e["system"], e["id"]) in refs
    ]


@pytest.mark.parametrize(("system", "field", "value"), TRAVELS)
def test_an_odd_value_reaches_the_other_crms_whole_and_settles(
    world: World, entities: Iterator[dict[str, str]], system: str, field: str, value: Any
) -> None:
    ids = next(entities)
    Editors(world, seed=1).set_value(system, ids[system], field, value)

    applied = _reconcile(world, dry_run=False)
    assert not _errors(applied, ids)
    after = _reconcile(world, dry_run=True)
    read_back = {s: _canonical(_stored(world, s, i), field) for s, i in ids.items()}
    assert read_back == dict.fromkeys(SYSTEMS, value), f"{field} {value!r} arrived otherwise"
    assert not _planned(after, ids, TOGETHER.get(field, (field,))), "planned again"
    assert not _errors(after, ids)


@pytest.mark.parametrize(("system", "native", "field", "value"), NATIVE)
def test_an_odd_native_value_reaches_the_other_crms_as_read_and_settles(
    world: World,
    entities: Iterator[dict[str, str]],
    system: str,
    native: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    ids = next(entities)
    emulator: Any = world.sandbox.servers[system].emulator
    with emulator.lock:
        if system == "salesforce":
            emulator.store.apply(emulator.store.check_update(ids[system], native))
        elif system == "hubspot":
            emulator.store.update(ids[system], native)
        else:
            emulator.store.update(int(ids[system]), native)

    applied = _reconcile(world, dry_run=False)
    assert not _errors(applied, ids)
    after = _reconcile(world, dry_run=True)
    deals = {s: _stored(world, s, i) for s, i in ids.items()}
    read_back = {s: _shown(d, field) for s, d in deals.items()}
    assert read_back == dict.fromkeys(SYSTEMS, value)
    assert not _planned(after, ids, TOGETHER.get(field, (field,))), "planned again"


def _shown(deal: Deal, field: str) -> Any:
    if field == "amount":
        return None if deal.value is None else str(deal.value)
    return deal.close_date


def _another_salesforce_user(
    world: World, ids: dict[str, str], editors: Editors
) -> tuple[str, dict[str, Any], Any]:
    """An owner other than the entity's Salesforce one: (email, its Salesforce User record,
    the Salesforce emulator, whose lock guards the record)."""
    current = _stored(world, "salesforce", ids["salesforce"]).owner_email
    email = next(e for e in sorted(editors.owners) if e != current)
    salesforce: Any = world.sandbox.servers["salesforce"].emulator
    user = next(u for u in salesforce.store.tables["User"] if u["Email"].lower() == email)
    return email, user, salesforce


def test_an_owner_email_in_another_case_is_the_same_person(
    world: World, entities: Iterator[dict[str, str]]
) -> None:
    ids = next(entities)
    editors = Editors(world, seed=4)
    email, user, salesforce = _another_salesforce_user(world, ids, editors)
    with salesforce.lock:  # Bob@X.com in Salesforce, bob@x.com in the others
        user["Email"] = email.upper()
    editors.set_value("hubspot", ids["hubspot"], "owner_email", email)

    applied = _reconcile(world, dry_run=False)
    assert not _errors(applied, ids)
    assert salesforce.store.by_id[ids["salesforce"]]["OwnerId"] == user["Id"]
    after = _reconcile(world, dry_run=True)
    assert {s: _stored(world, s, i).owner_email for s, i in ids.items()} == dict.fromkeys(
        SYSTEMS, email
    )
    assert not _planned(after, ids, ("owner_email",))


def test_a_name_longer_than_salesforce_keeps_is_a_plan_error_not_a_write_failing_nightly(
    world: World, entities: Iterator[dict[str, str]]
) -> None:
    ids = next(entities)
    held = _stored(world, "salesforce", ids["salesforce"]).name
    Editors(world, seed=2).set_value("hubspot", ids["hubspot"], "name", LONG_NAME)

    applied = _reconcile(world, dry_run=False)  # asserts the run is OK: no write failed
    why = f"Name: {len(LONG_NAME)} characters, Salesforce keeps at most 120"
    assert _errors(applied, ids) == [("salesforce", ids["salesforce"], "name", why)]
    assert _planned(applied, ids, ("name",)) == [f"pipedrive name -> {LONG_NAME!r}"]

    after = _reconcile(world, dry_run=True)
    assert not _planned(after, ids, ("name",)), "the name is planned again every night"
    ((_, _, field, reason),) = _errors(after, ids)
    assert (field, reason.startswith(why), "\n" in reason) == ("name", True, False)
    names = {s: _stored(world, s, i).name for s, i in ids.items()}
    assert names == {"hubspot": LONG_NAME, "pipedrive": LONG_NAME, "salesforce": held}


def test_a_deal_given_to_someone_deactivated_in_salesforce_is_a_plan_error_there(
    world: World, entities: Iterator[dict[str, str]]
) -> None:
    ids = next(entities)
    editors = Editors(world, seed=3)
    current = _stored(world, "salesforce", ids["salesforce"]).owner_email
    email, user, salesforce = _another_salesforce_user(world, ids, editors)
    with salesforce.lock:  # an admin deactivates the user who left; HubSpot still has them
        user["IsActive"] = False
    try:
        editors.set_value("hubspot", ids["hubspot"], "owner_email", email)

        applied = _reconcile(world, dry_run=False)  # asserts the run is OK: no write failed
        ((system, deal_id, field, reason),) = _errors(applied, ids)
        assert (system, deal_id, field) == ("salesforce", ids["salesforce"], "owner_email")
        assert "deactivated" in reason and email in reason
        assert _planned(applied, ids, ("owner_email",)) == [f"pipedrive owner_email -> {email!r}"]

        after = _reconcile(world, dry_run=True)
        assert not _planned(after, ids, ("owner_email",)), "planned again every night"
        owners = {s: _stored(world, s, i).owner_email for s, i in ids.items()}
        assert owners == {"hubspot": email, "pipedrive": email, "salesforce": current}
    finally:
        with salesforce.lock:
            user["IsActive"] = True


@pytest.mark.parametrize(
    ("amount", "salesforce_why", "pipedrive_why"),
    [
        (
            "1234567890123.4567",
            "Amount: 1234567890123.4567 has more significant digits than Salesforce reads back",
            "value: 1234567890123.4567 has more significant digits than Pipedrive reads back",
        ),
        (
            "120000000000000000",
            "Amount: 18 digits before the decimal point, Salesforce keeps at most 16",
            "value: 120000000000000000 has more significant digits than Pipedrive reads back",
        ),
    ],
)
def test_an_amount_a_crm_cannot_read_back_whole_is_a_plan_error_there(
    world: World,
    entities: Iterator[dict[str, str]],
    amount: str,
    salesforce_why: str,
    pipedrive_why: str,
) -> None:
    ids = next(entities)
    held = {s: _stored(world, s, ids[s]).value for s in ("salesforce", "pipedrive")}
    Editors(world, seed=5).set_value("hubspot", ids["hubspot"], "amount", Decimal(amount))

    applied = _reconcile(world, dry_run=False)  # asserts the run is OK: no write failed
    errors = {(s, f): why for s, _, f, why in _errors(applied, ids)}
    assert set(errors) == {("salesforce", "amount"), ("pipedrive", "amount")}
    assert errors["salesforce", "amount"].startswith(salesforce_why)
    assert errors["pipedrive", "amount"].startswith(pipedrive_why)
    assert not _planned(applied, ids, ("amount", "currency"))

    after = _reconcile(world, dry_run=True)
    assert not _planned(after, ids, ("amount", "currency")), "planned again every night"
    assert {s: _stored(world, s, ids[s]).value for s in held} == held
    assert str(_stored(world, "hubspot", ids["hubspot"]).value.amount) == amount  # type: ignore[union-attr]
