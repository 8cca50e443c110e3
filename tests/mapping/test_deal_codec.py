"""The state store / plan file codec is lossless, and the fingerprint sees only real changes."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mapping import (
    Deal,
    DealStatus,
    Money,
    Ref,
    StageChange,
    deal_fingerprint,
    deal_from_json,
    deal_to_json,
)

texts = st.text(max_size=30)
ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=18)
aware = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=None, max_value=10**15, min_value=-(10**15)
)
money = st.builds(Money, decimals, st.sampled_from(["USD", "EUR", "JPY", "BHD"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

deals = st.builds(
    Deal,
    ref=st.builds(Ref, st.sampled_from(["salesforce", "hubspot", "eu-pipedrive"]), ids),
    name=texts,
    pipeline=ids,
    stage=st.none() | st.sampled_from(["lead", "won", "lost"]),
    native_stage=texts,
    status=st.sampled_from(list(DealStatus)),
    value=st.none() | money,
    close_date=st.none() | st.dates(),
    owner_email=st.none() | st.emails(),
    probability=st.none() | st.decimals(min_value=0, max_value=1, allow_nan=False, places=4),
    created_at=aware,
    updated_at=aware,
    stage_entered_at=st.none() | aware,
    funnel=st.sampled_from(["default", "renewals"]),
    external_ids=st.dictionaries(st.sampled_from(["salesforce", "hubspot"]), ids, max_size=2),
    link_id=st.none() | ids,
    stage_history=st.lists(
        st.builds(StageChange, st.none() | st.just("lead"), texts, aware), max_size=3
    ).map(tuple),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)


@given(deals)
def test_deal_round_trips_through_json_text(deal: Deal) -> None:
    text = json.dumps(deal_to_json(deal))
    back = deal_from_json(json.loads(text))
    assert back == deal
    # Decimal equality ignores exponent; the codec must keep the exact digits too.
    if deal.value is not None:
        assert back.value is not None and str(back.value.amount) == str(deal.value.amount)


@given(deals)
def test_fingerprint_is_stable_across_the_codec(deal: Deal) -> None:
    assert deal_fingerprint(deal_from_json(deal_to_json(deal))) == deal_fingerprint(deal)


def _deal() -> Deal:
    stamp = datetime(2024, 6, 1, 12, tzinfo=UTC)
    return Deal(
        Ref("hubspot", "1"),
        "Acme",
        "default",
        "proposal",
        "presentationscheduled",
        DealStatus.OPEN,
        Money(Decimal("1500.50"), "USD"),
        None,
        "ada@example.com",
        Decimal("0.6"),
        stamp,
        stamp,
    )


def test_fingerprint_ignores_number_spelling_and_timestamps() -> None:
    deal = _deal()
    same = dataclasses.replace(
        deal,
        value=Money(Decimal("1500.5"), "USD"),
        updated_at=deal.updated_at + timedelta(days=1),
        extra={"x": 1},
    )
    assert deal_fingerprint(same) == deal_fingerprint(deal)


def test_fingerprint_changes_with_each_canonical_field() -> None:
    deal = _deal()
    variants = [
        dataclasses.replace(deal, name="Acme 2"),
        dataclasses.replace(deal, stage="negotiation"),
        dataclasses.replace(deal, status=DealStatus.WON),
        dataclasses.replace(deal, value=Money(Decimal("1500.51"), "USD")),
        dataclasses.replace(deal, value=Money(Decimal("1500.50"), "EUR")),
        dataclasses.replace(deal, value=None),
        dataclasses.replace(deal, owner_email=None),
        dataclasses.replace(deal, probability=Decimal("0.7")),
        dataclasses.replace(deal, external_ids={"salesforce": "006"}),
        dataclasses.replace(deal, link_id="ent-1"),
    ]
    prints = {deal_fingerprint(v) for v in variants} | {deal_fingerprint(deal)}
    assert len(prints) == len(variants) + 1


def test_deals_decoded_from_the_store_share_their_repeated_values() -> None:
    """A million stored deals repeat a few owners, stages, dates and amounts: decoded once."""
    first, second = (
        json.loads(json.dumps(deal_to_json(dataclasses.replace(_deal(), ref=Ref("hubspot", i)))))
        for i in ("1", "2")
    )
    a, b = deal_from_json(first), deal_from_json(second)
    for name in ("pipeline", "stage", "native_stage", "value", "close_date", "owner_email"):
        assert getattr(a, name) is getattr(b, name), name
    assert a.probability is b.probability and a.ref.system is b.ref.system
    assert a.name == b.name and a.ref != b.ref


def test_a_shared_amount_keeps_its_own_spelling() -> None:
    spelled = [dict(deal_to_json(_deal()), amount=text) for text in ("1500.50", "1500.5", "1500.5")]
    values = [deal_from_json(p).value for p in spelled]
    assert [str(v.amount) for v in values if v] == ["1500.50", "1500.5", "1500.5"]
    assert values[1] is values[2] and values[0] is not values[1]
