"""Every figure here was computed by hand from the dataset in fixtures.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from fixtures import HS, NOW, PLAN, SF, deal, inputs, usd

from mapping.model import Ref, StageChange
from sync.health import UnknownThreshold, build_health
from sync.health_checks import cross_system


def sf_default():
    return build_health(inputs()).systems["sf"].funnels["default"]


def test_pipeline_by_stage_keeps_each_currency_apart_and_counts_deals_without_amount():
    stages = {s.key: s for s in sf_default().stages}
    assert (stages["proposal"].count, stages["proposal"].amount) == (1, {"USD": D("1000")})
    assert stages["proposal"].weighted == {"USD": D("500.00")}
    assert stages["negotiation"].weighted == {"EUR": D("1600.00")}  # its own p=0.8
    lost = stages["lost"]
    assert (lost.count, lost.amount, lost.without_amount) == (1, {}, 1)


def test_one_stage_holding_two_currencies_reports_two_totals():
    mixed = [SF[0], HS[3].__class__(**{**_fields(HS[3]), "stage": "proposal"})]
    report = build_health(inputs(deals={"x": mixed}, entities=[], plan=None))
    stage = {s.key: s for s in report.systems["x"].funnels["default"].stages}["proposal"]
    assert stage.amount == {"GBP": D("100"), "USD": D("1000")}


def _fields(deal):
    return {name: getattr(deal, name) for name in deal.__dataclass_fields__}


def test_conversion_mixes_history_and_current_stage_and_says_so():
    conversion = sf_default().conversion
    assert conversion.method == "current_stage_only"
    assert (conversion.deals, conversion.history_deals) == (4, 3)
    assert [(s.reached_from, s.reached_to, s.rate) for s in conversion.steps] == [
        (4, 4, D("1.0000")),
        (4, 3, D("0.7500")),
        (3, 2, D("0.6667")),
        (2, 1, D("0.5000")),
    ]
    assert conversion.lead_to_won == D("0.2500")


def test_conversion_from_history_only_is_labelled_stage_history():
    report = build_health(inputs(deals={"sf": [SF[0], SF[2], SF[3]]}, plan=None))
    conversion = report.systems["sf"].funnels["default"].conversion
    assert conversion.method == "stage_history"
    assert [s.reached_to for s in conversion.steps] == [3, 2, 1, 1]


def test_win_rate_deal_size_and_sales_cycle():
    figures = sf_default()
    assert figures.win_rate.rate == D("0.5000")
    assert [(s.currency, s.average, s.median) for s in figures.won_size] == [
        ("USD", D("3000.00"), D("3000.00"))
    ]
    cycle = figures.sales_cycle  # 2024-01-01 -> won 2024-04-10 (leap year)
    assert cycle.method == "stage_history"
    assert (cycle.median_days, cycle.p90_days) == (D("100.0"), D("100.0"))


def test_time_in_stage_uses_history_only_and_names_the_bottleneck():
    time_in_stage = sf_default().time_in_stage
    medians = {s.stage: (s.median_days, s.stints) for s in time_in_stage.stages}
    assert medians == {
        "lead": (D("31.0"), 3),  # 31, 60, 10 days
        "qualified": (D("74.5"), 2),  # 130, 19 days
        "proposal": (D("40.0"), 1),
        "negotiation": (None, 0),
    }
    assert (time_in_stage.method, time_in_stage.deals) == ("stage_history", 3)
    assert time_in_stage.bottleneck == ("qualified",)


def test_without_history_time_in_stage_and_drop_off_are_not_available_not_invented():
    hs = build_health(inputs()).systems["hs"].funnels["default"]
    assert (hs.time_in_stage.method, hs.time_in_stage.deals) == ("not_available", 0)
    assert hs.drop_off.method == "not_available"
    assert (hs.drop_off.unknown, hs.drop_off.by_stage) == (1, {})


def test_drop_off_is_the_last_open_stage_of_a_lost_deal():
    drop = sf_default().drop_off
    assert (drop.method, drop.deals, drop.by_stage) == ("stage_history", 1, {"qualified": 1})


def test_stale_and_past_due_say_which_timestamp_they_used():
    figures = sf_default()
    assert (figures.stale.count, figures.stale.by_basis) == (1, {"updated_at": 1})
    assert figures.stale.method == "current_stage_only"
    assert [(f.id, f.days) for f in figures.stale.deals] == [("2", 60)]
    assert (figures.past_due.count, figures.past_due.amount) == (1, {"EUR": D("2000")})
    assert figures.past_due.deals[0].days == 29


def _months():
    return sf_default().forecast.months


def test_forecast_by_close_month_weighted_and_committed():
    beta_in_july = dataclasses.replace(SF[1], close_date=date(2024, 7, 20))
    report = build_health(inputs(deals={"sf": [SF[0], beta_in_july, SF[2], SF[3]]}))
    forecast = report.systems["sf"].funnels["default"].forecast
    months = [(m.month, m.currency, m.deals, m.weighted, m.committed) for m in forecast.months]
    assert months == [
        ("2024-07", "EUR", 1, D("1600.00"), D("2000")),  # last open stage: committed
        ("2024-07", "USD", 1, D("500.00"), D("0")),
    ]


def test_an_overdue_open_deal_is_in_no_forecast_month_and_counted_past_due():
    # Beta (open, close 2024-06-01, now 2024-06-30) is past due: not June's forecast.
    figures = sf_default()
    assert [(m.month, m.currency) for m in _months()] == [("2024-07", "USD")]
    forecast = figures.forecast
    assert (forecast.past_due, forecast.no_close_date, forecast.without_amount) == (1, 0, 0)
    assert forecast.past_due == figures.past_due.count
    consolidated = build_health(inputs()).consolidated.forecast
    assert "2024-06" not in {m.month for m in consolidated.months}
    assert consolidated.past_due == 1


def test_an_overdue_deal_without_amount_is_counted_past_due_once():
    beta = dataclasses.replace(SF[1], value=None)
    report = build_health(inputs(deals={"sf": [beta]}, entities=[], plan=None))
    forecast = report.consolidated.forecast
    assert (forecast.past_due, forecast.without_amount) == (1, 0)


def test_open_deals_closing_today_or_later_this_month_stay_in_the_current_month():
    now = datetime(2024, 6, 15, 23, 30, tzinfo=UTC)
    deals = [
        deal(
            "x", str(day), f"Due {day}", "proposal", value=usd("100"), close_date=date(2024, 6, day)
        )
        for day in (14, 15, 28)  # yesterday, today, later this month
    ]
    report = build_health(inputs(deals={"x": deals}, entities=[], plan=None, now=now))
    forecast = report.systems["x"].funnels["default"].forecast
    assert [(m.month, m.deals) for m in forecast.months] == [("2024-06", 2)]
    assert forecast.past_due == 1


def test_matched_deals_count_once_in_consolidation():
    report = build_health(inputs())
    consolidated = report.consolidated
    assert (consolidated.deals, consolidated.copies_merged) == (7, 1)
    assert consolidated.open_amount == {"EUR": D("2000"), "GBP": D("100"), "USD": D("1000")}
    assert consolidated.won_amount == {"USD": D("8000")}
    assert consolidated.win_rate.rate == D("0.5000")
    conversion = report.funnels["default"].conversion
    assert (conversion.entered, conversion.excluded_unknown, conversion.lead_to_won) == (
        7,
        1,
        D("0.2857"),
    )
    assert report.funnels["default"].sales_cycle.median_days == D("65.0")


def test_consolidation_order_picks_which_copy_represents_the_entity():
    assert build_health(inputs()).consolidated.stale == 1  # sf:1 moved stage 20 days ago
    # hs:10 entered its stage 60 days ago: with hs first, the entity is stale.
    assert build_health(inputs(consolidation_order=["hs", "sf"])).consolidated.stale == 2


def test_converted_totals_only_with_rates_and_unconvertible_currencies_listed():
    assert build_health(inputs(report_currency="USD")).consolidated.converted is None
    converted = build_health(
        inputs(report_currency="USD", rates={"EUR": D("1.10")})
    ).consolidated.converted
    assert converted is not None
    assert converted.note == "converted with configured rates"
    assert (converted.open_amount, converted.weighted, converted.won_amount) == (
        D("3200.00"),
        D("2260.00"),
        D("8000.00"),
    )
    assert converted.not_converted == {"GBP": 1}  # Eta (hs:13, open); Zeta is lost


def test_a_lost_deal_without_a_rate_is_not_counted_as_left_out_of_the_converted_totals():
    # Converted totals are open, weighted and won: a lost 700 GBP deal is in none of them.
    deals = [
        deal("x", "1", "Lost GBP", "lost", value=usd("700", "GBP")),
        deal("x", "2", "Open GBP", "lead", value=usd("100", "GBP")),
        deal("x", "3", "Open EUR", "lead", value=usd("1000", "EUR")),
    ]
    report = build_health(
        inputs(
            deals={"x": deals},
            entities=[],
            plan=None,
            report_currency="USD",
            rates={"EUR": D("1.10")},
        )
    )
    converted = report.consolidated.converted
    assert converted is not None
    assert (converted.open_amount, converted.weighted) == (D("1100.00"), D("110.00"))
    assert converted.not_converted == {"GBP": 1}  # was 2: the lost deal counted as left out


def test_since_keeps_only_deals_created_or_updated_since():
    report = build_health(inputs(since=date(2024, 6, 1)))
    assert (report.systems["sf"].deals, report.systems["hs"].deals) == (1, 2)
    assert (report.consolidated.deals, report.consolidated.copies_merged) == (2, 1)


def test_data_quality_completeness_and_in_system_duplicates():
    quality = build_health(inputs()).data_quality.instances
    assert [(f.field, f.share) for f in quality["sf"].completeness] == [
        ("amount", D("0.7500")),
        ("close_date", D("0.7500")),
        ("owner_email", D("0.7500")),
    ]
    assert quality["hs"].duplicates == 1


def test_mismatches_count_each_entity_once_per_field():
    cross = build_health(inputs()).cross_system
    assert cross.mismatches_by_field == {"amount": 1, "stage": 1}
    assert (cross.mismatched_entities, cross.entities, cross.conflicts) == (1, 1, 1)
    assert [(p.a, p.b, p.matched, p.only_a, p.only_b) for p in cross.pairs] == [
        ("hs", "sf", 1, 3, 3)
    ]
    assert cross.deleted[0].deleted_id == "99"
    assert cross.mismatches[0].url == "https://app.hubspot.com/contacts/4242/deal/10"
    assert {s.instance: s.age_hours for s in cross.sync} == {"hs": None, "sf": D("6.0")}


def test_breached_thresholds_are_listed_first():
    report = build_health(
        inputs(
            thresholds={
                "stale_share": D("0.5"),
                "mismatch_rate": D("0.2"),
                "min_completeness": D("0.8"),
            }
        )
    )
    assert [(t.name, t.value, t.breached) for t in report.thresholds] == [
        ("min_completeness", D("0.7500"), True),
        ("mismatch_rate", D("1.0000"), True),
        ("stale_share", D("0.3333"), False),
    ]
    assert [t.name for t in report.breached] == ["min_completeness", "mismatch_rate"]


def test_unknown_threshold_is_refused_with_the_known_names():
    with pytest.raises(UnknownThreshold, match="mismatch_rate"):
        build_health(inputs(thresholds={"mismatch_ratio": D("0.1")}))


def test_weighted_amounts_are_rounded_once_per_total_so_stage_forecast_and_total_agree():
    # Two open proposal deals of 10.01 USD at the stage default 0.5: 2 x 5.005 = 10.01 exactly;
    # rounding each deal first (5.00 + 5.00) would lose the cent in some figures only.
    twins = [
        deal("x", str(i), f"Twin {i}", "proposal", value=usd("10.01"), close_date=date(2024, 7, 1))
        for i in (1, 2)
    ]
    report = build_health(inputs(deals={"x": twins}, entities=[], plan=None))
    figures = report.systems["x"].funnels["default"]
    assert {s.key: s.weighted for s in figures.stages}["proposal"] == {"USD": D("10.01")}
    assert [m.weighted for m in figures.forecast.months] == [D("10.01")]
    assert report.consolidated.weighted == {"USD": D("10.01")}


def test_stale_without_any_stage_history_is_not_labelled_stage_history_when_none_is_stale():
    # Eta (hs:13) is open, has no history and entered its stage 5 days ago: not stale, but the
    # check could only use its stage_entered_at.
    report = build_health(inputs(deals={"hs": [HS[3]]}, entities=[], plan=None))
    figures = report.systems["hs"].funnels["default"].stale
    assert (figures.open_deals, figures.count) == (1, 0)
    assert figures.method == "current_stage_only"


def test_sales_cycle_from_a_close_date_counts_whole_days_and_keeps_a_same_day_win():
    # Created 04-01 10:00; no won timestamp, only close dates: 04-01 (same day) and 04-11.
    created = datetime(2024, 4, 1, 10, 0, tzinfo=UTC)
    wins = [
        deal("x", "1", "Same day", "won", created_at=created, close_date=date(2024, 4, 1)),
        deal("x", "2", "Ten days", "won", created_at=created, close_date=date(2024, 4, 11)),
    ]
    report = build_health(inputs(deals={"x": wins}, entities=[], plan=None))
    cycle = report.systems["x"].funnels["default"].sales_cycle
    assert (cycle.deals, cycle.sources) == (2, {"close_date": 2})
    assert (cycle.median_days, cycle.p90_days) == (D("5.0"), D("10.0"))


def test_an_instance_that_never_synced_breaches_max_sync_age_hours():
    # sf synced 6 h ago; hs has no successful sync at all.
    report = build_health(inputs(thresholds={"max_sync_age_hours": D("24")}))
    [result] = report.thresholds
    assert (result.value, result.breached) == (D("Infinity"), True)
    synced = {"sf": {"last_success": NOW, "api_calls": 1}, "hs": {"last_success": NOW}}
    report = build_health(inputs(thresholds={"max_sync_age_hours": D("24")}, sync_status=synced))
    assert [(t.value, t.breached) for t in report.thresholds] == [(D("0.0"), False)]


def test_a_lost_deal_counts_up_to_the_open_stage_its_crm_kept_it_in_and_drops_off_there():
    # Pipedrive keeps a lost deal in the stage it was lost in; native stages are stage ids.
    pd = [
        deal("pd", "1", "Open", "lead", pipeline="1", native_stage="1"),
        deal("pd", "2", "Won", "won", pipeline="1", native_stage="5"),
        deal("pd", "3", "Lost at proposal", "lost", pipeline="1", native_stage="4"),
        deal("pd", "4", "Lost, stage not mapped", "lost", pipeline="1", native_stage="9"),
    ]
    maps = {
        "pd": {"1": {"1": "lead", "2": "qualified", "4": "proposal", "5": "negotiation"}},
        "hs": {"default": {"LOST": "lost"}},  # HubSpot moves a lost deal to a closed stage
    }
    report = build_health(inputs(deals={"pd": pd, "hs": HS}, plan=None, stage_maps=maps))
    figures = report.systems["pd"].funnels["default"]
    conversion = figures.conversion
    assert (conversion.method, conversion.deals, conversion.history_deals) == (
        "current_stage_only",
        3,
        0,
    )
    assert conversion.excluded_unknown == 1  # pd:4, whose native stage the map lacks
    # reached: lead 1, 2, 3; qualified 2, 3; proposal 2, 3; negotiation 2; won 2
    assert [(s.reached_from, s.reached_to, s.rate) for s in conversion.steps] == [
        (3, 2, D("0.6667")),
        (2, 2, D("1.0000")),
        (2, 1, D("0.5000")),
        (1, 1, D("1.0000")),
    ]
    drop = figures.drop_off
    assert (drop.method, drop.deals, drop.unknown, drop.by_stage) == (
        "current_stage_only",
        1,
        1,
        {"proposal": 1},
    )
    hs = report.systems["hs"].funnels["default"]
    assert (hs.drop_off.method, hs.drop_off.unknown, hs.conversion.excluded_unknown) == (
        "not_available",
        1,
        1,
    )


def test_amounts_of_many_digits_are_totalled_exactly_not_a_crash():
    """Amounts the canonical model accepts (up to 1E+100, with cents) stay exact in every
    total; the default 28-digit decimal context rounded sums and failed to round to cents."""
    huge = "99999999999999999999999999999.99"  # 31 digits, one CRM record
    deals = [
        deal("x", "1", "Huge", "proposal", value=usd(huge), probability=D("0.5")),
        deal("x", "2", "Small", "proposal", value=usd("0.01"), probability=D("0.5")),
        deal("x", "3", "Won", "won", value=usd(huge), probability=D("1")),
    ]
    report = build_health(inputs(deals={"x": deals}, entities=[], plan=None))
    stage = {s.key: s for s in report.systems["x"].funnels["default"].stages}["proposal"]
    assert stage.amount == {"USD": D("100000000000000000000000000000.00")}
    assert stage.weighted == {"USD": D("50000000000000000000000000000.00")}
    assert report.consolidated.open_amount == {"USD": D("100000000000000000000000000000.00")}


def test_conflicts_with_since_count_only_those_of_deals_in_the_window():
    # The window since 06-01 holds sf:1 and hs:10: their stage conflict counts, the amount
    # conflict of sf:3 and hs:11 (neither in the window) does not, as its rows are not listed.
    outside = {
        "field": "amount",
        "values": [
            {"system": "sf", "id": "3", "value": "1000 USD"},
            {"system": "hs", "id": "11", "value": "2000 USD"},
        ],
        "reason": "changed in both systems",
    }
    plan = {**PLAN, "conflicts": [*PLAN["conflicts"], outside]}
    assert build_health(inputs(plan=plan)).cross_system.conflicts == 2
    report = build_health(
        inputs(since=date(2024, 6, 1), plan=plan, thresholds={"max_conflicts": D("1")})
    )
    assert report.cross_system.conflicts == 1
    assert {row.kind for row in report.cross_system.mismatches if row.id == "3"} == set()
    [limit] = report.thresholds
    assert (limit.value, limit.breached) == (D("1"), False)  # was 2, breached


def test_unmatched_share_with_since_counts_only_unmatched_deals_in_the_window():
    # In the window since 06-01: sf:1, hs:10 (matched to each other) and hs:13; of the deals the
    # plan finds matched nowhere (sf:2, sf:4, hs:12, hs:13) only hs:13 is in it: 1 of 3.
    plan = {
        **PLAN,
        "unmatched": [
            {"system": s, "id": i, "name": ""} for s, i in (("sf", "2"), ("sf", "4"), ("hs", "12"))
        ]
        + [{"system": "hs", "id": "13", "name": "Eta"}],
    }
    report = build_health(
        inputs(since=date(2024, 6, 1), plan=plan, thresholds={"unmatched_share": D("0.5")})
    )
    assert report.cross_system.unmatched_by_system == {"hs": 1}
    [share] = report.thresholds
    assert (share.value, share.breached) == (D("0.3333"), False)  # was 4 / 3 = 1.3333, breached


def test_an_archived_deal_matched_with_nothing_is_not_counted_as_only_in_its_system():
    """crmsync never copies an archived deal (no live copy to follow) nor lists it as
    unmatched: the pairs count it only when matched."""
    pd = [
        deal("pd", "1", "Live", "won"),
        deal("pd", "2", "Archived alone", "won", extra={"archived": True}),
        deal("pd", "3", "Archived, matched", "lost", extra={"archived": True}),
    ]
    sf = [deal("sf", "7", "Archived, matched", "lost")]
    entities = [{"pd": Ref("pd", "3"), "sf": Ref("sf", "7")}]
    cross = cross_system({"pd": pd, "sf": sf}, entities, {}, None, {}, [], {}, NOW)
    assert [(p.a, p.b, p.matched, p.only_a, p.only_b) for p in cross.pairs] == [
        ("pd", "sf", 1, 1, 0)
    ]


def _after(start: datetime, days: str) -> datetime:
    return start + timedelta(seconds=int(D(days) * 86400))


def test_median_sales_cycle_is_rounded_once_from_the_exact_durations():
    # 1.16 and 1.88 days: the median is 1.52 days. Rounded first (1.2, 1.9), their mean 1.55
    # would round again, to 1.6.
    created = datetime(2024, 4, 1, tzinfo=UTC)
    wins = [
        deal(
            "x", str(i), f"Win {i}", "won", created_at=created,
            stage_history=(StageChange("won", "WON", _after(created, cycle)),),
        )
        for i, cycle in enumerate(["1.16", "1.88"])
    ]  # fmt: skip
    report = build_health(inputs(deals={"x": wins}, entities=[], plan=None))
    cycle = report.systems["x"].funnels["default"].sales_cycle
    assert (cycle.median_days, cycle.p90_days) == (D("1.5"), D("1.9"))


def test_median_time_in_stage_is_rounded_once_from_the_exact_stints():
    created = datetime(2024, 4, 1, tzinfo=UTC)
    moved = [
        deal(
            "x", str(i), f"Deal {i}", "qualified", created_at=created,
            stage_history=(
                StageChange("lead", "LEAD", created),
                StageChange("qualified", "QUALIFIED", _after(created, stint)),
            ),
        )
        for i, stint in enumerate(["1.16", "1.88"])
    ]  # fmt: skip
    report = build_health(inputs(deals={"x": moved}, entities=[], plan=None))
    lead = report.systems["x"].funnels["default"].time_in_stage.stages[0]
    assert (lead.stage, lead.median_days, lead.stints) == ("lead", D("1.5"), 2)
