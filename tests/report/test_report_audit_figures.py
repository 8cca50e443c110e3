"""An independent audit: a hand-made pipeline over three CRMs, and every figure of the report's
JSON computed by hand (the arithmetic is in the comments).

now = 2025-03-15 10:00 UTC (today 2025-03-15), stale_days = 30, default funnel (lead 0.1,
qualified 0.25, proposal 0.5, negotiation 0.75, won, lost), report currency USD, EUR = 1.10 USD,
no GBP rate. Matched: Orion = sf:1 + hs:11, Vega = sf:2 + hs:12, Draco = sf:4 + pd:21 (the
copies disagree on the amount only: 8000 vs 7500 EUR; default policy `conflict`, so config
order counts sf's).

sf:1  Orion   open proposal      10000 USD  close 04-10, hist lead 01-01, qualified 01-21,
                                            proposal 02-20
sf:2  Vega    won                20000 USD  close 02-28, created 2024-12-01, hist lead 12-01,
                                            qualified 12-15, proposal 01-10, negotiation 02-01,
                                            won 02-28
sf:3  Lyra    lost               5000 USD   close 02-15, hist lead 01-05, qualified 01-25,
                                            lost 02-15
sf:4  Draco   open negotiation   8000 EUR   p=0.9, close 03-10 (past due), no owner,
                                            hist lead 2024-11-01, negotiation 2024-12-01
sf:5  Cygnus  open lead          no amount, no close date, hist lead 03-14
hs:11 Orion   open proposal      10000 USD  close 04-10, hist lead 01-02, proposal 02-21
hs:12 Vega    won                20000 USD  close 02-28, hist lead 12-01, won 02-28
hs:13 Pollux  won                3000 EUR   created 01-15, entered won 03-01, no history
hs:14 Castor  lost               no amount, no close date, no history
hs:15 Rigel   open qualified     4000 USD   close 03-15 (today), entered 02-10, no history
pd:21 Draco   open negotiation   7500 EUR   close 03-10 (past due), entered 2024-12-02
pd:22 Sirius  lost in proposal   6000 USD   (Pipedrive keeps native stage 3 = proposal)
pd:23 Altair  won                12000 EUR  created 01-05, won 03-05
pd:24 Deneb   open lead          2000 GBP   close 05-20, entered 03-01, no owner
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from mapping.funnel import DEFAULT_FUNNEL
from mapping.model import Deal, DealStatus, Money, Ref, StageChange
from sync.health import build_health
from sync.health_model import HealthInputs
from sync.report_render import to_json

NOW = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hist(*entries: tuple[str, datetime]) -> tuple[StageChange, ...]:
    return tuple(StageChange(stage, stage, when) for stage, when in entries)


def make(
    system: str, id: str, name: str, stage: str, native: str, created: datetime, **kw: Any
) -> Deal:
    status = {"won": DealStatus.WON, "lost": DealStatus.LOST}.get(stage, DealStatus.OPEN)
    values: dict[str, Any] = {
        "value": None,
        "close_date": None,
        "owner_email": None,
        "probability": None,
        "updated_at": created,
    }
    values.update(kw)
    return Deal(
        ref=Ref(system, id),
        name=name,
        pipeline="default",
        stage=stage,
        native_stage=native,
        status=status,
        created_at=created,
        **values,
    )


def money(amount: str, currency: str) -> Money:
    return Money(D(amount), currency)


SF = [
    make(
        "sf",
        "1",
        "Orion",
        "proposal",
        "Proposal",
        at(2025, 1, 1),
        value=money("10000", "USD"),
        close_date=date(2025, 4, 10),
        owner_email="o1@x.test",
        updated_at=at(2025, 3, 1),
        stage_entered_at=at(2025, 2, 20),
        stage_history=hist(
            ("lead", at(2025, 1, 1)), ("qualified", at(2025, 1, 21)), ("proposal", at(2025, 2, 20))
        ),
    ),
    make(
        "sf",
        "2",
        "Vega",
        "won",
        "Closed Won",
        at(2024, 12, 1),
        value=money("20000", "USD"),
        close_date=date(2025, 2, 28),
        owner_email="o2@x.test",
        updated_at=at(2025, 2, 28),
        stage_entered_at=at(2025, 2, 28),
        stage_history=hist(
            ("lead", at(2024, 12, 1)),
            ("qualified", at(2024, 12, 15)),
            ("proposal", at(2025, 1, 10)),
            ("negotiation", at(2025, 2, 1)),
            ("won", at(2025, 2, 28)),
        ),
    ),
    make(
        "sf",
        "3",
        "Lyra",
        "lost",
        "Closed Lost",
        at(2025, 1, 5),
        value=money("5000", "USD"),
        close_date=date(2025, 2, 15),
        owner_email="o1@x.test",
        updated_at=at(2025, 2, 15),
        stage_entered_at=at(2025, 2, 15),
        stage_history=hist(
            ("lead", at(2025, 1, 5)), ("qualified", at(2025, 1, 25)), ("lost", at(2025, 2, 15))
        ),
    ),
    make(
        "sf",
        "4",
        "Draco",
        "negotiation",
        "Negotiation",
        at(2024, 11, 1),
        value=money("8000", "EUR"),
        probability=D("0.9"),
        close_date=date(2025, 3, 10),
        updated_at=at(2025, 3, 1),
        stage_entered_at=at(2024, 12, 1),
        stage_history=hist(("lead", at(2024, 11, 1)), ("negotiation", at(2024, 12, 1))),
    ),
    make(
        "sf",
        "5",
        "Cygnus",
        "lead",
        "Prospecting",
        at(2025, 3, 14),
        owner_email="o2@x.test",
        stage_entered_at=at(2025, 3, 14),
        stage_history=hist(("lead", at(2025, 3, 14))),
    ),
]
HS = [
    make("hs", "11", "Orion", "proposal", "presentationscheduled", at(2025, 1, 2),
         value=money("10000", "USD"), close_date=date(2025, 4, 10), owner_email="o1@x.test",
         updated_at=at(2025, 3, 10), stage_entered_at=at(2025, 2, 21),
         stage_history=hist(("lead", at(2025, 1, 2)), ("proposal", at(2025, 2, 21)))),
    make("hs", "12", "Vega", "won", "closedwon", at(2024, 12, 1),
         value=money("20000", "USD"), close_date=date(2025, 2, 28), owner_email="o2@x.test",
         updated_at=at(2025, 2, 28), stage_entered_at=at(2025, 2, 28),
         stage_history=hist(("lead", at(2024, 12, 1)), ("won", at(2025, 2, 28)))),
    make("hs", "13", "Pollux", "won", "closedwon", at(2025, 1, 15),
         value=money("3000", "EUR"), close_date=date(2025, 3, 1), owner_email="o3@x.test",
         updated_at=at(2025, 3, 1), stage_entered_at=at(2025, 3, 1)),
    make("hs", "14", "Castor", "lost", "closedlost", at(2025, 1, 20),
         owner_email="o3@x.test", updated_at=at(2025, 2, 1)),
    make("hs", "15", "Rigel", "qualified", "qualifiedtobuy", at(2025, 2, 1),
         value=money("4000", "USD"), close_date=date(2025, 3, 15), owner_email="o1@x.test",
         updated_at=at(2025, 2, 10), stage_entered_at=at(2025, 2, 10)),
]  # fmt: skip
PD = [
    make("pd", "21", "Draco", "negotiation", "4", at(2024, 11, 2),
         value=money("7500", "EUR"), close_date=date(2025, 3, 10), owner_email="o4@x.test",
         updated_at=at(2025, 3, 12), stage_entered_at=at(2024, 12, 2)),
    make("pd", "22", "Sirius", "lost", "3", at(2024, 12, 10),
         value=money("6000", "USD"), close_date=date(2025, 1, 20), owner_email="o4@x.test",
         updated_at=at(2025, 1, 20), stage_entered_at=at(2025, 1, 20)),
    make("pd", "23", "Altair", "won", "5", at(2025, 1, 5),
         value=money("12000", "EUR"), close_date=date(2025, 3, 5), owner_email="o4@x.test",
         updated_at=at(2025, 3, 5), stage_entered_at=at(2025, 3, 5)),
    make("pd", "24", "Deneb", "lead", "1", at(2025, 3, 1),
         value=money("2000", "GBP"), close_date=date(2025, 5, 20), stage_entered_at=at(2025, 3, 1)),
]  # fmt: skip

STAGE_MAPS = {
    "sf": {"default": {"Prospecting": "lead", "Qualification": "qualified",
                       "Proposal": "proposal", "Negotiation": "negotiation",
                       "Closed Won": "won", "Closed Lost": "lost"}},
    "hs": {"default": {"appointmentscheduled": "lead", "qualifiedtobuy": "qualified",
                       "presentationscheduled": "proposal", "contractsent": "negotiation",
                       "closedwon": "won", "closedlost": "lost"}},
    "pd": {"default": {"1": "lead", "2": "qualified", "3": "proposal", "4": "negotiation"}},
}  # fmt: skip

ENTITIES = [
    {"sf": Ref("sf", "1"), "hs": Ref("hs", "11")},
    {"sf": Ref("sf", "2"), "hs": Ref("hs", "12")},
    {"sf": Ref("sf", "4"), "pd": Ref("pd", "21")},
]


def report(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "deals": {"sf": SF, "hs": HS, "pd": PD},
        "funnels": {"default": DEFAULT_FUNNEL},
        "now": NOW,
        "entities": ENTITIES,
        "stale_days": 30,
        "report_currency": "USD",
        "rates": {"EUR": D("1.10")},
        "thresholds": {
            "min_completeness": D("0.8"),
            "stale_share": D("0.3"),
            "past_due_share": D("0.25"),
            "min_win_rate": D("0.5"),
        },
        "consolidation_order": ["sf", "hs", "pd"],
        "stage_maps": STAGE_MAPS,
    }
    values.update(overrides)
    return to_json(build_health(HealthInputs(**values)))


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return report()


def funnel(data: dict[str, Any], instance: str | None) -> dict[str, Any]:
    if instance is None:
        return data["funnels"]["default"]
    return data["systems"][instance]["funnels"]["default"]


def stages(figures: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        s["key"]: (s["count"], s["amount"], s["weighted"], s["without_amount"])
        for s in figures["stages"]
    }


def steps(figures: dict[str, Any]) -> list[tuple[int, int, str | None]]:
    return [(s["reached_from"], s["reached_to"], s["rate"]) for s in figures["conversion"]["steps"]]


# --- counts and pipeline by stage ---------------------------------------------------------


def test_deal_counts_per_instance_and_consolidated_count_a_matched_deal_once(data):
    counts = {i: funnel(data, i)["deals"] for i in ("sf", "hs", "pd")}
    assert counts == {"sf": 5, "hs": 5, "pd": 4}
    assert [(funnel(data, i)["open"], funnel(data, i)["won"], funnel(data, i)["lost"])
            for i in ("sf", "hs", "pd")] == [(3, 1, 1), (2, 2, 1), (2, 1, 1)]  # fmt: skip
    consolidated = data["consolidated"]
    # 14 copies - 3 matched copies (hs:11, hs:12, pd:21) = 11 deals
    assert (consolidated["deals"], consolidated["copies_merged"]) == (11, 3)
    # open sf:1 sf:4 sf:5 hs:15 pd:24; won sf:2 hs:13 pd:23; lost sf:3 hs:14 pd:22
    assert (consolidated["open"], consolidated["won"], consolidated["lost"]) == (5, 3, 3)
    assert funnel(data, None)["deals"] == 11


def test_pipeline_by_stage_per_currency_with_weighted_amounts(data):
    assert stages(funnel(data, "sf")) == {
        "lead": (1, {}, {}, 1),  # sf:5 without amount
        "qualified": (0, {}, {}, 0),
        "proposal": (1, {"USD": "10000"}, {"USD": "5000.00"}, 0),  # 10000 x 0.5 (stage)
        "negotiation": (1, {"EUR": "8000"}, {"EUR": "7200.00"}, 0),  # 8000 x 0.9 (own)
        "won": (1, {"USD": "20000"}, {"USD": "20000.00"}, 0),  # won: whole amount
        "lost": (1, {"USD": "5000"}, {"USD": "0.00"}, 0),  # lost: nothing
    }
    assert stages(funnel(data, "hs")) == {
        "lead": (0, {}, {}, 0),
        "qualified": (1, {"USD": "4000"}, {"USD": "1000.00"}, 0),  # 4000 x 0.25
        "proposal": (1, {"USD": "10000"}, {"USD": "5000.00"}, 0),
        "negotiation": (0, {}, {}, 0),
        "won": (2, {"EUR": "3000", "USD": "20000"}, {"EUR": "3000.00", "USD": "20000.00"}, 0),
        "lost": (1, {}, {}, 1),
    }
    assert stages(funnel(data, "pd")) == {
        "lead": (1, {"GBP": "2000"}, {"GBP": "200.00"}, 0),  # 2000 x 0.1
        "qualified": (0, {}, {}, 0),
        "proposal": (0, {}, {}, 0),  # Sirius is lost: counted in `lost`, not here
        "negotiation": (1, {"EUR": "7500"}, {"EUR": "5625.00"}, 0),  # 7500 x 0.75
        "won": (1, {"EUR": "12000"}, {"EUR": "12000.00"}, 0),
        "lost": (1, {"USD": "6000"}, {"USD": "0.00"}, 0),
    }
    assert stages(funnel(data, None)) == {
        "lead": (2, {"GBP": "2000"}, {"GBP": "200.00"}, 1),  # sf:5 (no amount), pd:24
        "qualified": (1, {"USD": "4000"}, {"USD": "1000.00"}, 0),  # hs:15
        "proposal": (1, {"USD": "10000"}, {"USD": "5000.00"}, 0),  # Orion once (sf:1)
        "negotiation": (1, {"EUR": "8000"}, {"EUR": "7200.00"}, 0),  # Draco once, sf's 8000
        # sf:2 20000 USD; hs:13 3000 + pd:23 12000 = 15000 EUR
        "won": (3, {"EUR": "15000", "USD": "20000"}, {"EUR": "15000.00", "USD": "20000.00"}, 0),
        # sf:3 5000 + pd:22 6000 = 11000 USD; hs:14 without amount
        "lost": (3, {"USD": "11000"}, {"USD": "0.00"}, 1),
    }


def test_consolidated_totals_never_add_currencies_and_convert_only_with_rates(data):
    c = data["consolidated"]
    # open: sf:1 10000 + hs:15 4000 = 14000 USD; sf:4 8000 EUR; pd:24 2000 GBP
    assert c["open_amount"] == {"EUR": "8000", "GBP": "2000", "USD": "14000"}
    # weighted: 5000 + 1000 = 6000 USD; 8000 x 0.9 = 7200 EUR; 2000 x 0.1 = 200 GBP
    assert c["weighted"] == {"EUR": "7200.00", "GBP": "200.00", "USD": "6000.00"}
    assert c["won_amount"] == {"EUR": "15000", "USD": "20000"}
    converted = c["converted"]
    # open: 10000 + 4000 + 8000 x 1.10 = 22800; GBP has no rate (pd:24 left out)
    # weighted: 5000 + 1000 + 8800 x 0.9 = 7920 -> 13920
    # won: 20000 + (3000 + 12000) x 1.10 = 20000 + 16500 = 36500
    assert (converted["open_amount"], converted["weighted"], converted["won_amount"]) == (
        "22800.00",
        "13920.00",
        "36500.00",
    )
    assert converted["rates_used"] == {"EUR": "1.10", "USD": "1"}
    assert converted["not_converted"] == {"GBP": 1}
    assert converted["note"] == "converted with configured rates"


def test_copies_counted_says_the_draco_amount_came_from_config_order(data):
    fields = {f["field"]: f for f in data["consolidated"]["copies_counted"]["fields"]}
    assert (fields["amount"]["disagreed"], fields["amount"]["by_order"]) == (1, 1)
    assert fields["stage"]["disagreed"] == fields["close_date"]["disagreed"] == 0


# --- funnel and time ------------------------------------------------------------------------


def test_step_conversion_is_stage_to_next_stage_and_lead_to_won_over_every_mapped_deal(data):
    sf = funnel(data, "sf")
    # reached lead: all 5; qualified: sf:1,2,3,4 (sf:4 skipped it: reaching negotiation passes
    # it); proposal: sf:1,2,4; negotiation: sf:2,4; won: sf:2
    assert steps(sf) == [(5, 4, "0.8000"), (4, 3, "0.7500"), (3, 2, "0.6667"), (2, 1, "0.5000")]
    assert (sf["conversion"]["method"], sf["conversion"]["history_deals"]) == ("stage_history", 5)
    assert (sf["conversion"]["entered"], sf["conversion"]["lead_to_won"]) == (5, "0.2000")  # 1/5
    hs = funnel(data, "hs")
    # hs:14 lost without history: unknown, out of the steps; hs:13 won reached all
    # lead 4; qualified hs:11,12,13,15 = 4; proposal hs:11,12,13 = 3; negotiation hs:12,13 = 2
    assert steps(hs) == [(4, 4, "1.0000"), (4, 3, "0.7500"), (3, 2, "0.6667"), (2, 2, "1.0000")]
    assert (hs["conversion"]["method"], hs["conversion"]["excluded_unknown"]) == (
        "current_stage_only",
        1,
    )
    assert (hs["conversion"]["entered"], hs["conversion"]["lead_to_won"]) == (5, "0.4000")  # 2/5
    pd = funnel(data, "pd")
    # pd:22 lost in proposal: reached lead..proposal. lead 4; qualified 21,22,23 = 3;
    # proposal 3; negotiation 21,23 = 2; won 23
    assert steps(pd) == [(4, 3, "0.7500"), (3, 3, "1.0000"), (3, 2, "0.6667"), (2, 1, "0.5000")]
    assert pd["conversion"]["lead_to_won"] == "0.2500"  # 1/4
    consolidated = funnel(data, None)
    # 10 known (hs:14 unknown): lead 10; qualified all but sf:5, pd:24 = 8;
    # proposal sf:1,2,4 hs:13 pd:22,23 = 6; negotiation sf:2,4 hs:13 pd:23 = 4; won 3
    assert steps(consolidated) == [
        (10, 8, "0.8000"),
        (8, 6, "0.7500"),
        (6, 4, "0.6667"),
        (4, 3, "0.7500"),
    ]
    assert (consolidated["conversion"]["entered"], consolidated["conversion"]["won"]) == (11, 3)
    assert consolidated["conversion"]["lead_to_won"] == "0.2727"  # 3/11 = 0.27272...


def test_win_rate_is_won_over_closed_and_deal_size_is_over_won_deals(data):
    rates = {i: funnel(data, i)["win_rate"] for i in ("sf", "hs", "pd", None)}
    assert rates["sf"] == {"won": 1, "lost": 1, "rate": "0.5000"}
    assert rates["hs"] == {"won": 2, "lost": 1, "rate": "0.6667"}  # 2/3, not 2/5
    assert rates["pd"] == {"won": 1, "lost": 1, "rate": "0.5000"}
    assert rates[None] == {"won": 3, "lost": 3, "rate": "0.5000"}  # 3/6, Vega once
    assert data["consolidated"]["win_rate"] == rates[None]
    assert funnel(data, None)["won_size"] == [
        # hs:13 3000 and pd:23 12000: (3000 + 12000) / 2 = 7500, median 7500
        {"currency": "EUR", "count": 2, "average": "7500.00", "median": "7500.00"},
        {"currency": "USD", "count": 1, "average": "20000.00", "median": "20000.00"},
    ]
    assert funnel(data, "hs")["won_size"] == [
        {"currency": "EUR", "count": 1, "average": "3000.00", "median": "3000.00"},
        {"currency": "USD", "count": 1, "average": "20000.00", "median": "20000.00"},
    ]


def test_sales_cycle_is_days_from_creation_to_won(data):
    cycles = {i: funnel(data, i)["sales_cycle"] for i in ("sf", "hs", "pd", None)}
    # sf:2 2024-12-01 -> won 2025-02-28 (history): 31 + 31 + 27 = 89 days
    assert cycles["sf"] == {
        "method": "stage_history",
        "deals": 1,
        "median_days": "89.0",
        "p90_days": "89.0",
        "sources": {"stage_history": 1},
        "mean_days": "89.0",
    }
    # hs:12 89 days; hs:13 2025-01-15 -> entered won 03-01: 16 + 28 + 1 = 45 days
    # median and mean (45 + 89) / 2 = 67; p90 nearest rank ceil(0.9 x 2) = 2nd = 89
    assert cycles["hs"] == {
        "method": "current_stage_only",
        "deals": 2,
        "median_days": "67.0",
        "p90_days": "89.0",
        "sources": {"stage_entered_at": 1, "stage_history": 1},
        "mean_days": "67.0",
    }
    # pd:23 2025-01-05 -> 03-05: 26 + 28 + 5 = 59
    assert cycles["pd"]["median_days"] == "59.0"
    # consolidated: 45, 59, 89: median 59, p90 rank ceil(2.7) = 3rd = 89, mean 193 / 3 = 64.3
    assert (cycles[None]["median_days"], cycles[None]["p90_days"], cycles[None]["deals"]) == (
        "59.0",
        "89.0",
        3,
    )
    assert cycles[None]["mean_days"] == "64.3"


def test_time_in_stage_bottleneck_and_stalled_deals_from_history_only(data):
    sf = funnel(data, "sf")["time_in_stage"]
    # lead stints: sf:1 20, sf:2 14, sf:3 20, sf:4 30 -> median (20 + 20) / 2 = 20
    # qualified: sf:1 30, sf:2 26, sf:3 21 -> 26; proposal: sf:2 22; negotiation: sf:2 27
    # sf:4 in negotiation since 2024-12-01: 104 days > 30, stalled
    assert [(s["stage"], s["median_days"], s["stints"], s["stalled"]) for s in sf["stages"]] == [
        ("lead", "20.0", 4, 0),
        ("qualified", "26.0", 3, 0),
        ("proposal", "22.0", 1, 0),
        ("negotiation", "27.0", 1, 1),
    ]
    assert (sf["bottleneck"], sf["most_stalled"]) == (["negotiation"], ["negotiation"])
    hs = funnel(data, "hs")["time_in_stage"]
    # hs:11 lead 01-02 -> 02-21 = 50; hs:12 lead 12-01 -> won 02-28 = 89: median 69.5
    assert (hs["method"], hs["deals"], hs["stages"][0]["median_days"]) == (
        "stage_history",
        2,
        "69.5",
    )
    assert (hs["bottleneck"], hs["most_stalled"]) == (["lead"], [])
    pd = funnel(data, "pd")["time_in_stage"]
    assert (pd["method"], pd["deals"], pd["bottleneck"]) == ("not_available", 0, [])


def test_drop_off_is_where_lost_deals_left_the_funnel(data):
    assert funnel(data, "sf")["drop_off"] == {
        "method": "stage_history",
        "deals": 1,
        "unknown": 0,
        "by_stage": {"qualified": 1},  # sf:3's last open stage
    }
    assert funnel(data, "hs")["drop_off"] == {
        "method": "not_available",
        "deals": 0,
        "unknown": 1,  # hs:14: no history, closedlost maps to no open stage
        "by_stage": {},
    }
    assert funnel(data, "pd")["drop_off"] == {
        "method": "current_stage_only",
        "deals": 1,
        "unknown": 0,
        "by_stage": {"proposal": 1},  # Pipedrive kept pd:22 in stage 3
    }
    assert funnel(data, None)["drop_off"]["by_stage"] == {"qualified": 1, "proposal": 1}


def test_stale_and_past_due_deals(data):
    sf = funnel(data, "sf")
    # sf:4 last stage change 2024-12-01: 104 days; sf:1 23 days, sf:5 1 day
    assert (sf["stale"]["count"], sf["stale"]["by_basis"], sf["stale"]["method"]) == (
        1,
        {"stage_history": 1},
        "stage_history",
    )
    assert [(d["id"], d["days"]) for d in sf["stale"]["deals"]] == [("4", 104)]
    # sf:4 close 03-10, today 03-15: 5 days overdue
    assert (sf["past_due"]["count"], sf["past_due"]["amount"]) == (1, {"EUR": "8000"})
    assert sf["past_due"]["deals"][0]["days"] == 5
    hs = funnel(data, "hs")
    # hs:15 entered qualified 02-10: 33 days; closes today: not past due
    assert [(d["id"], d["days"], d["basis"]) for d in hs["stale"]["deals"]] == [
        ("15", 33, "stage_entered_at")
    ]
    assert hs["past_due"]["count"] == 0
    pd = funnel(data, "pd")
    assert [(d["id"], d["days"]) for d in pd["stale"]["deals"]] == [("21", 103)]  # 2024-12-02
    assert pd["past_due"]["amount"] == {"EUR": "7500"}
    consolidated = data["consolidated"]
    assert (consolidated["stale"], consolidated["past_due"]) == (2, 1)  # sf:4, hs:15; Draco once


def test_forecast_by_close_month_from_the_current_month(data):
    def months(forecast):
        return [
            (m["month"], m["currency"], m["deals"], m["weighted"], m["committed"])
            for m in forecast["months"]
        ]

    sf = funnel(data, "sf")["forecast"]
    assert months(sf) == [("2025-04", "USD", 1, "5000.00", "0.00")]  # sf:1; sf:4 past due
    assert (sf["past_due"], sf["no_close_date"], sf["without_amount"]) == (1, 1, 0)
    hs = funnel(data, "hs")["forecast"]
    # hs:15 closes today: this month, 4000 x 0.25
    assert months(hs) == [
        ("2025-03", "USD", 1, "1000.00", "0.00"),
        ("2025-04", "USD", 1, "5000.00", "0.00"),
    ]
    pd = funnel(data, "pd")["forecast"]
    assert months(pd) == [("2025-05", "GBP", 1, "200.00", "0.00")]
    consolidated = data["consolidated"]["forecast"]
    assert months(consolidated) == [
        ("2025-03", "USD", 1, "1000.00", "0.00"),
        ("2025-04", "USD", 1, "5000.00", "0.00"),  # Orion once
        ("2025-05", "GBP", 1, "200.00", "0.00"),
    ]
    assert (consolidated["past_due"], consolidated["no_close_date"]) == (1, 1)


def test_an_open_deal_in_the_last_open_stage_is_committed_at_its_whole_amount():
    july = date(2025, 7, 1)
    deals = {"sf": [
        make("sf", "1", "A", "negotiation", "Negotiation", at(2025, 1, 1),
             value=money("1000", "USD"), close_date=july),  # last open stage: 750 / 1000
        make("sf", "2", "B", "lead", "Prospecting", at(2025, 1, 1),
             value=money("500", "USD"), probability=D("0.95"), close_date=july),  # p >= 0.9
        make("sf", "3", "C", "lead", "Prospecting", at(2025, 1, 1),
             value=money("300", "USD"), close_date=july),  # 30, not committed
    ]}  # fmt: skip
    forecast = report(deals=deals, entities=[])["consolidated"]["forecast"]
    # weighted 750 + 475 + 30 = 1255; committed 1000 + 500 = 1500 over 2 deals
    assert [(m["weighted"], m["committed"], m["committed_deals"]) for m in forecast["months"]] == [
        ("1255.00", "1500.00", 2)
    ]


# --- data quality, thresholds, cross-system ---------------------------------------------------


def test_completeness_counts_missing_amount_close_date_and_owner(data):
    def shares(instance):
        quality = data["data_quality"]["instances"][instance]["completeness"]
        return {f["field"]: (f["filled"], f["total"], f["share"]) for f in quality}

    assert shares("sf") == {  # sf:5 lacks amount and close date, sf:4 an owner
        "amount": (4, 5, "0.8000"),
        "close_date": (4, 5, "0.8000"),
        "owner_email": (4, 5, "0.8000"),
    }
    assert shares("hs") == {  # hs:14 lacks amount and close date
        "amount": (4, 5, "0.8000"),
        "close_date": (4, 5, "0.8000"),
        "owner_email": (5, 5, "1.0000"),
    }
    assert shares("pd")["owner_email"] == (3, 4, "0.7500")  # pd:24


def test_thresholds_on_consolidated_figures(data):
    values = {t["name"]: (t["value"], t["breached"]) for t in data["thresholds"]}
    assert values == {
        "min_completeness": ("0.7500", True),  # pd owner 3/4 < 0.8
        "stale_share": ("0.4000", True),  # 2 stale of 5 open > 0.3
        "past_due_share": ("0.2000", False),  # 1 of 5 open
        "min_win_rate": ("0.5000", False),  # 0.5 is not below the 0.5 floor
    }
    assert [t["name"] for t in data["breached"]] == ["min_completeness", "stale_share"]


def test_pairs_count_matched_deals_per_instance_pair(data):
    pairs = [(p["a"], p["b"], p["matched"], p["only_a"], p["only_b"])
             for p in data["cross_system"]["pairs"]]  # fmt: skip
    assert pairs == [("hs", "pd", 0, 5, 4), ("hs", "sf", 2, 3, 3), ("pd", "sf", 1, 3, 4)]
    assert data["cross_system"]["entities"] == 3


# --- the period and its time zone -------------------------------------------------------------


def test_since_is_inclusive_and_days_begin_in_the_report_time_zone():
    # Updated 2025-02-28 23:30 UTC = 2025-03-01 00:30 in Berlin: in a window from 03-01 there.
    late = make("x", "1", "Late", "lead", "Prospecting", at(2025, 1, 1),
                updated_at=at(2025, 2, 28, 23, 30))  # fmt: skip
    # midnight UTC: in the window in UTC
    edge = make("x", "2", "Edge", "lead", "Prospecting", at(2025, 1, 1),
                updated_at=at(2025, 3, 1))  # fmt: skip
    old = make("x", "3", "Old", "lead", "Prospecting", at(2025, 1, 1),
               updated_at=at(2025, 2, 27))  # fmt: skip
    deals = {"x": [late, edge, old]}
    since = date(2025, 3, 1)
    utc = report(deals=deals, entities=[], since=since)
    berlin = report(deals=deals, entities=[], since=since, timezone="Europe/Berlin")
    assert utc["systems"]["x"]["deals"] == 1  # Edge
    assert berlin["systems"]["x"]["deals"] == 2  # Late and Edge (01:00 there)


def test_since_counts_a_matched_deal_once_when_any_copy_is_in_the_window():
    # in the window from 03-01 (created or updated that day or later): sf:1, sf:4 (03-01),
    # sf:5; hs:11, hs:13; pd:21, pd:23, pd:24. Vega (sf:2 02-28, hs:12 02-28) is out.
    # Orion, Draco, Cygnus, Pollux, Altair, Deneb: 6 deals, 2 copies merged;
    # open Orion, Draco, Cygnus, Deneb; won Pollux, Altair; none lost
    data = report(since=date(2025, 3, 1))
    c = data["consolidated"]
    assert (c["deals"], c["copies_merged"], c["open"], c["won"], c["lost"]) == (6, 2, 4, 2, 0)
    assert {i: s["deals"] for i, s in data["systems"].items()} == {"sf": 3, "hs": 2, "pd": 3}


def test_since_pairs_count_a_matched_deal_when_any_of_its_copies_is_in_the_window():
    # From 03-05: sf:5 (created 03-14); hs:11 (updated 03-10); pd:21 (03-12), pd:23 (03-05).
    # Orion is in the window through hs:11, Draco through pd:21: both matched deals count,
    # with their copies outside it (sf:1, sf:4), as the consolidated figures count them.
    data = report(since=date(2025, 3, 5))
    assert (data["consolidated"]["deals"], data["consolidated"]["copies_merged"]) == (4, 2)
    assert data["cross_system"]["entities"] == 2
    pairs = [(p["a"], p["b"], p["matched"], p["only_a"], p["only_b"])
             for p in data["cross_system"]["pairs"]]  # fmt: skip
    assert pairs == [
        ("hs", "pd", 0, 1, 2),  # hs:11 | pd:21, pd:23
        ("hs", "sf", 1, 0, 2),  # Orion; sf:4 (Draco, matched in pd only) and sf:5
        ("pd", "sf", 1, 1, 2),  # Draco; pd:23 | sf:1 (Orion, in hs only) and sf:5
    ]
