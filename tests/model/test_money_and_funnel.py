"""The canonical model's invariants: exact money, one currency at a time, valid funnels."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapping.funnel import DEFAULT_FUNNEL, Funnel, FunnelError, FunnelStage, Phase
from mapping.model import CurrencyMismatch, Money, format_decimal, parse_money

amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=2
)


@given(amounts)
def test_money_text_round_trips_exactly(amount: Decimal) -> None:
    money = Money(amount, "EUR")
    assert parse_money(format_decimal(money.amount), "EUR").same_value(money)


@given(st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=200))
def test_sums_of_cents_never_drift(cents: list[int]) -> None:
    total = Money(Decimal(0), "USD")
    for c in cents:
        total = total + parse_money(f"{c // 100}.{c % 100:02d}", "USD")
    assert total.amount == Decimal(sum(cents)) / 100


def test_a_float_amount_goes_through_its_shortest_repr_not_binary() -> None:
    assert parse_money(0.1, "USD").amount == Decimal("0.1")
    assert parse_money(1500.55, "USD").amount == Decimal("1500.55")


def test_adding_two_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatch, match="cannot add EUR to USD"):
        Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")


def test_comparing_two_currencies_is_an_error() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(Decimal(1), "USD") < Money(Decimal(2), "EUR")


@pytest.mark.parametrize("bad", ["NaN", "inf", "-Infinity", "1e", "", "12,5", "abc"])
def test_non_finite_or_garbage_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_money(bad, "USD")


@pytest.mark.parametrize("code", ["usd", "EURO", "XXX", "", "US"])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        Money(Decimal(1), code)


def test_money_never_holds_a_float() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(Decimal(1), "USD") * 1.5  # type: ignore[operator]


def test_trailing_zeros_do_not_make_a_difference() -> None:
    assert Money(Decimal("1500"), "USD").same_value(Money(Decimal("1500.00"), "USD"))
    assert not Money(Decimal("1500"), "USD").same_value(Money(Decimal("1500"), "EUR"))


def test_the_default_funnel_is_lead_to_won_or_lost() -> None:
    assert DEFAULT_FUNNEL.keys == ("lead", "qualified", "proposal", "negotiation", "won", "lost")
    assert DEFAULT_FUNNEL.won_stage.key == "won"
    assert [s.key for s in DEFAULT_FUNNEL.lost_stages] == ["lost"]
    assert [s.phase for s in DEFAULT_FUNNEL.stages] == [
        Phase.AWARENESS, Phase.INTEREST, Phase.DECISION, Phase.DECISION, Phase.ACTION,
        Phase.ACTION,
    ]  # fmt: skip


def _stage(key: str, order: int, *, closed: bool = False, won: bool = False) -> FunnelStage:
    return FunnelStage(key, key, order, Phase.DECISION, Decimal("0.5"), closed, won)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([_stage("a", 1), _stage("a", 2), _stage("w", 3, closed=True, won=True),
          _stage("l", 4, closed=True)], "duplicate stage keys a"),
        ([_stage("a", 1), _stage("l", 2, closed=True)], "exactly one won stage, found 0"),
        ([_stage("w1", 1, closed=True, won=True), _stage("w2", 2, closed=True, won=True),
          _stage("l", 3, closed=True)], "exactly one won stage, found 2"),
        ([_stage("a", 1), _stage("w", 2, closed=True, won=True)], "at least one lost stage"),
        ([_stage("b", 2), _stage("a", 1), _stage("w", 3, closed=True, won=True),
          _stage("l", 4, closed=True)], "strictly increasing order"),
    ],
)  # fmt: skip
def test_invalid_funnels_are_refused_with_the_reason(
    stages: list[FunnelStage], message: str
) -> None:
    with pytest.raises(FunnelError, match=message):
        Funnel("custom", tuple(stages))


def test_a_won_stage_must_be_closed_and_probability_within_0_and_1() -> None:
    with pytest.raises(FunnelError, match="must be closed"):
        _stage("w", 1, won=True)
    with pytest.raises(FunnelError, match=r"within 0\.\.1"):
        FunnelStage("x", "x", 1, Phase.INTEREST, Decimal("1.5"))
