"""The diff records every field on which an entity's copies disagree, whether or not the plan
writes the difference (`DiffResult.mismatched`), with the copies it plans no change into and
why: the health report's mismatches come from these. A copy in an instance `push.targets`
leaves out used to be missing from them: a read-only CRM's differences went unreported.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine_deals import T0, deal

from mapping.model import Deal
from sync.diff import Unwritten, base_values, diff
from sync.mismatch import READ_ONLY
from sync.policy import Policy, PolicyRule

SF, HS, PD = "salesforce", "hubspot", "pipedrive"
NEWEST = {"amount": Policy(PolicyRule.NEWEST)}


def _run(*deals: Deal, targets: set[str], base: Deal | None = None, **kw: Any):
    entities = {"E1": {d.system: d.ref for d in deals}}
    bases = {"E1": base_values(base)} if base is not None else {}
    return diff(entities, {d.ref: d for d in deals}, bases, kw.pop("policies", {}), targets, **kw)


def test_a_difference_only_a_read_only_copy_holds_is_a_mismatch_the_plan_does_not_write() -> None:
    sf = deal(SF, "1", updated=T0 + timedelta(days=2))  # the newest: its 1000 is decided
    hs = deal(HS, "2")
    pd = deal(PD, "3", amount="1200")
    result = _run(sf, hs, pd, targets={SF, HS}, policies=NEWEST)
    assert result.changes == ()
    [mismatch] = result.mismatched
    assert (mismatch.entity, mismatch.field) == ("E1", "amount")
    assert set(mismatch.refs) == {sf.ref, hs.ref, pd.ref}
    assert mismatch.unwritten == (Unwritten(pd.ref, Decimal("1200"), Decimal("1000"), READ_ONLY),)
    assert result.mismatches == {"amount": 1}


def test_a_difference_planned_into_one_copy_and_kept_by_a_read_only_one_is_one_mismatch() -> None:
    base = deal(SF, "1")
    sf = deal(SF, "1", amount="1500", updated=T0 + timedelta(days=1))
    result = _run(sf, deal(HS, "2"), deal(PD, "3"), targets={SF, HS}, base=base)
    assert [(c.target.system, c.field, c.to_value) for c in result.changes] == [
        (HS, "amount", Decimal("1500"))
    ]
    [mismatch] = result.mismatched
    assert mismatch.field == "amount"
    assert [(u.ref.system, u.value, u.to, u.reason) for u in mismatch.unwritten] == [
        (PD, Decimal("1000"), Decimal("1500"), READ_ONLY)
    ]
    assert result.mismatches == {"amount": 1}


def test_a_currency_kept_by_a_read_only_copy_is_a_currency_mismatch_not_an_amount_one() -> None:
    sf = deal(SF, "1", updated=T0 + timedelta(days=2))
    pd = deal(PD, "3", currency="EUR")
    result = _run(sf, deal(HS, "2"), pd, targets={SF, HS}, policies=NEWEST)
    [mismatch] = result.mismatched
    assert mismatch.field == "currency"
    assert [(u.ref, u.value, u.to) for u in mismatch.unwritten] == [(pd.ref, "EUR", "USD")]
    assert result.mismatches == {"amount": 1}  # the plan's summary counts by diff field


def test_a_field_under_never_is_a_mismatch_of_every_copy_that_left_the_agreed_value() -> None:
    base = deal(SF, "1", name="Old")
    a, b = deal(SF, "1", name="SF name"), deal(HS, "2", name="HS name")
    result = _run(a, b, deal(PD, "3", name="Old"), targets={SF, HS, PD}, base=base,
                  policies={"name": Policy(PolicyRule.NEVER)})  # fmt: skip
    [mismatch] = result.mismatched
    assert [(u.ref, u.value, u.to) for u in mismatch.unwritten] == [
        (a.ref, "SF name", None),
        (b.ref, "HS name", None),
    ]
    assert {u.reason for u in mismatch.unwritten} == {
        "policy never: the field is left as it is everywhere"
    }


def test_a_read_only_copy_with_nothing_decided_shows_the_value_the_others_agree_on() -> None:
    """No value is decided (`never`, no base): a read-only copy still shows what every other
    copy holds, or, where they disagree too, says so; a target's copy shows none."""
    sf, hs, pd = deal(SF, "1", name="A"), deal(HS, "2", name="B"), deal(PD, "3", name="A")
    result = _run(sf, hs, pd, targets={SF}, policies={"name": Policy(PolicyRule.NEVER)})
    [mismatch] = result.mismatched
    assert [(u.ref, u.value, u.to, u.reason) for u in mismatch.unwritten] == [
        (sf.ref, "A", None, "policy never: the field is left as it is everywhere"),
        (hs.ref, "B", "A", READ_ONLY),
        (pd.ref, "A", None, f"{READ_ONLY}; the other copies disagree too"),
    ]


def test_copies_equal_in_every_field_are_no_mismatch_read_only_or_not() -> None:
    result = _run(deal(SF, "1"), deal(HS, "2"), deal(PD, "3"), targets={SF})
    assert result.mismatched == () and result.mismatches == {}


def test_a_value_a_target_cannot_hold_is_a_mismatch_giving_the_reason_the_plan_reports() -> None:
    def can_express(ref: Any, field: str, value: Any) -> str | None:
        return "no such stage in pipedrive" if ref.system == PD and field == "stage" else None

    sf = deal(SF, "1", stage="negotiation", updated=T0 + timedelta(days=1))
    pd = deal(PD, "3")
    result = _run(sf, pd, targets={SF, PD}, base=deal(SF, "1"), can_express=can_express)
    [error] = [e for e in result.errors if e.field == "stage"]
    [mismatch] = [m for m in result.mismatched if m.field == "stage"]
    assert [(u.ref, u.value, u.to, u.reason) for u in mismatch.unwritten] == [
        (pd.ref, "proposal", "negotiation", error.reason)
    ]
