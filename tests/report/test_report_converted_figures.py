"""Figures split per currency get a converted total in `report.currency` too, from
`report.rates` (EUR 1.08, GBP 1.27; CHF has none): pulled from the three CRM emulators over
HTTP with the clock at 2025-03-15 10:00 UTC. Every figure is computed by hand in the comments.

salesforce  Apollo  negotiation  1000 EUR  p 0.9   close 2025-04-10  (committed: p >= 0.9)
salesforce  Boreas  won          2000 EUR
salesforce  Ceto    proposal     3000 USD  p 0.5   close 2025-04-20
hubspot     Dione   proposal     1000 GBP  p 0.5   close 2025-04-05
hubspot     Eos     won          3000 USD
hubspot     Iris    qualified     500 GBP  p 0.2   close 2025-03-01  (past due: in no month)
pipedrive   Gaia    negotiation   100 CHF          close 2025-04-15  (committed: last open stage)
pipedrive   Helios  won          1000 GBP
No deal is matched across CRMs: the consolidated figures hold all eight.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from connectors.sandbox.generator import generate
from sync.health import build_health
from sync.health_model import HealthReport
from sync.reconcile import analyze
from sync.report_inputs import health_inputs
from sync.report_render import to_html, to_json, to_table
from sync.runtime import open_runtime
from tests.report.test_report_audit_sandbox import _hs, _pd, _sf
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

pytestmark = pytest.mark.timeout(180)

NOW = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
RATES = {"EUR": "1.08", "GBP": "1.27"}


def _dataset() -> dict[str, Any]:
    world = generate(3, 1)[0]
    sf, hs, pd = world["salesforce"], world["hubspot"], world["pipedrive"]
    sf["Opportunity"] = [
        _sf(1, "Apollo", "Negotiation/Review", "2025-01-01", Amount=1000, Probability=90,
            CurrencyIsoCode="EUR", CloseDate="2025-04-10"),
        _sf(2, "Boreas", "Closed Won", "2025-01-01", Amount=2000, Probability=100,
            CurrencyIsoCode="EUR", CloseDate="2025-02-01"),
        _sf(3, "Ceto", "Proposal/Price Quote", "2025-01-01", Amount=3000, Probability=50,
            CloseDate="2025-04-20"),
    ]  # fmt: skip
    sf["OpportunityHistory"] = []
    hs["deals"] = [
        _hs("11", "Dione", "presentationscheduled", "2025-01-02", "2025-03-10", amount="1000",
            deal_currency_code="GBP", closedate="2025-04-05T00:00:00Z",
            hs_deal_stage_probability="0.5"),
        _hs("12", "Eos", "closedwon", "2025-01-02", "2025-02-28", amount="3000",
            closedate="2025-02-28T00:00:00Z", hs_deal_stage_probability="1.0"),
        _hs("13", "Iris", "qualifiedtobuy", "2025-01-02", "2025-03-01", amount="500",
            deal_currency_code="GBP", closedate="2025-03-01T00:00:00Z",
            hs_deal_stage_probability="0.2"),
    ]  # fmt: skip
    template = pd["deals"][0]
    pd["deals"] = [
        _pd(template, 21, "Gaia", stage_id=5, value=100, currency="CHF",
            add_time="2025-01-02 00:00:00", update_time="2025-03-01 00:00:00",
            expected_close_date="2025-04-15"),
        _pd(template, 22, "Helios", stage_id=5, status="won", value=1000, currency="GBP",
            add_time="2025-01-05 00:00:00", update_time="2025-03-05 00:00:00",
            won_time="2025-03-05 00:00:00", close_time="2025-03-05 00:00:00",
            expected_close_date="2025-03-05", active=False),
    ]  # fmt: skip
    pd["deal_flows"] = {}
    return world


def _with_report(env: SandboxEnv, name: str, report: dict[str, Any]) -> Path:
    """A copy of the env's config (same CRMs, same store) with another `report` section."""
    document = yaml.safe_load(env.config.read_text())
    document["report"] = report
    path = env.config.with_name(name)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("converted")
    sandbox_env = make_env(
        folder,
        _dataset(),
        f"sqlite:///{folder}/store.db",
        report={"currency": "USD", "rates": RATES},
    )
    try:
        pulled: subprocess.CompletedProcess[str] = run_crmsync(
            "pull", "--config", str(sandbox_env.config), "--full"
        )
        assert pulled.returncode == 0, pulled.stderr
        yield sandbox_env
    finally:
        sandbox_env.sandbox.stop()


def _report(config: Path) -> HealthReport:
    with open_runtime(str(config), connect=False) as rt:
        run_id = rt.store.runs.start("report", "report", rt.config.fingerprint())
        result = analyze(rt.config, rt.store, run_id=run_id, remember=False, known_writes=True)
        report = build_health(health_inputs(rt.config, rt.store, result, now=NOW))
        rt.store.runs.finish(run_id, "ok")
    return report


@pytest.fixture(scope="module")
def report(env: SandboxEnv) -> HealthReport:
    return _report(env.config)


@pytest.fixture(scope="module")
def data(report: HealthReport) -> dict[str, Any]:
    return to_json(report)


def _stage(funnel: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in funnel["stages"] if s["key"] == key)


def test_stage_rows_get_converted_amount_and_weighted_with_unconverted_deals_named(data):
    consolidated = data["funnels"]["default"]
    # the per-currency figures stay as they are
    assert _stage(consolidated, "won")["amount"].keys() == {"EUR", "GBP", "USD"}
    # 2000 x 1.08 + 1000 x 1.27 + 3000 = 2160 + 1270 + 3000; a won deal weighs its whole amount
    assert _stage(consolidated, "won")["converted"] == {
        "currency": "USD", "amount": "6430.00", "weighted": "6430.00", "unconverted": {},
    }  # fmt: skip
    # Apollo 1000 x 1.08 = 1080, weighted 900 x 1.08 = 972; Gaia's CHF has no rate
    assert _stage(consolidated, "negotiation")["converted"] == {
        "currency": "USD", "amount": "1080.00", "weighted": "972.00", "unconverted": {"CHF": 1},
    }  # fmt: skip
    # Ceto 3000 + Dione 1000 x 1.27; weighted 1500 + 500 x 1.27 = 1500 + 635
    assert _stage(consolidated, "proposal")["converted"]["amount"] == "4270.00"
    assert _stage(consolidated, "proposal")["converted"]["weighted"] == "2135.00"
    hubspot = data["systems"]["hubspot"]["funnels"]["default"]
    assert _stage(hubspot, "proposal")["converted"]["amount"] == "1270.00"


def test_forecast_months_get_a_converted_total(data):
    forecast = data["consolidated"]["forecast"]
    assert [m["currency"] for m in forecast["months"]] == ["CHF", "EUR", "GBP", "USD"]
    # April: weighted 972 (Apollo) + 635 (Dione) + 1500 (Ceto); committed Apollo's 1000 x 1.08
    assert forecast["converted"] == {
        "currency": "USD",
        "months": [{"month": "2025-04", "deals": 3, "weighted": "3107.00",
                    "committed": "1080.00", "committed_deals": 1, "unconverted": {"CHF": 1}}],
    }  # fmt: skip
    assert data["funnels"]["default"]["forecast"]["converted"] == forecast["converted"]
    salesforce = data["systems"]["salesforce"]["funnels"]["default"]["forecast"]["converted"]
    assert salesforce["months"] == [
        {"month": "2025-04", "deals": 2, "weighted": "2472.00", "committed": "1080.00",
         "committed_deals": 1, "unconverted": {}},
    ]  # fmt: skip


def test_won_deal_size_gets_the_mean_and_median_of_the_converted_won_amounts(data):
    # 2160, 1270, 3000: mean 6430 / 3 = 2143.333..., median 2160
    assert data["funnels"]["default"]["won_size_converted"] == {
        "currency": "USD", "count": 3, "average": "2143.33", "median": "2160.00",
        "unconverted": {},
    }  # fmt: skip
    pipedrive = data["systems"]["pipedrive"]["funnels"]["default"]["won_size_converted"]
    assert (pipedrive["count"], pipedrive["average"]) == (1, "1270.00")


def test_the_consolidated_totals_are_converted_as_before(data):
    converted = data["consolidated"]["converted"]
    # open: 1080 + 3000 + 1270 + 635 (Iris); Gaia's CHF left out
    assert (converted["open_amount"], converted["not_converted"]) == ("5985.00", {"CHF": 1})


def test_past_due_amount_gets_a_converted_total(data):
    # Iris: 500 x 1.27
    expected = {"currency": "USD", "amount": "635.00", "unconverted": {}}
    assert data["funnels"]["default"]["past_due"]["converted"] == expected
    assert data["systems"]["hubspot"]["funnels"]["default"]["past_due"]["converted"] == expected
    assert data["systems"]["salesforce"]["funnels"]["default"]["past_due"]["converted"] == {
        "currency": "USD", "amount": "0.00", "unconverted": {},
    }  # fmt: skip


def test_table_shows_the_converted_figures_beside_the_per_currency_ones(report):
    console = Console(width=250, record=True, force_terminal=False)
    to_table(report, console)
    text = console.export_text()
    assert "2,143.33 USD" in text  # average won size in the KPI table and by instance
    assert re.search(r"forecast 2025-04 in USD.*weighted 3,107\.00 / committed 1,080\.00", text)
    assert re.search(r"Negotiation .*1,080\.00 USD / 972\.00 USD.*CHF: 1", text)
    assert re.search(r"past due +│ +1 │ 500\.00 GBP; 635\.00 USD converted", text)


def test_html_forecast_chart_plots_converted_figures_only_when_every_currency_has_a_rate(
    env, report
):
    per_currency = to_html(report)
    assert '"name":"weighted CHF"' in per_currency  # CHF has no rate: per currency, said so
    assert "no rate for CHF" in per_currency
    won_size = 'won deal size in USD</th><td class="num">average 2,143.33, median 2,160.00'
    assert won_size in per_currency
    assert '<td>in USD</td><td class="num">3</td><td class="num">3,107.00</td>' in per_currency
    everything = _report(_with_report(env, "all-rates.yaml", {
        "currency": "USD", "rates": {**RATES, "CHF": "1.10"}}))  # fmt: skip
    page = to_html(everything)
    assert '"name":"weighted USD (converted)"' in page
    assert '"name":"weighted EUR"' not in page


def test_report_currency_without_rates_warns_naming_the_currencies_without_one(env):
    config = _with_report(env, "no-rates.yaml", {"currency": "EUR"})
    run = run_crmsync("report", "--config", str(config), "--format", "json")
    assert run.returncode in (0, 3), run.stderr
    warnings = [line for line in run.stderr.splitlines() if "report.rates" in line]
    assert warnings == [
        "crmsync: warning: report.currency is EUR, but report.rates has no rate for CHF, GBP, "
        "USD: their amounts are in no converted figure"
    ]
    partial = _with_report(env, "partial-rates.yaml", {"currency": "USD", "rates": RATES})
    run = run_crmsync("report", "--config", str(partial), "--format", "json")
    assert [line for line in run.stderr.splitlines() if "report.rates" in line] == [
        "crmsync: warning: report.currency is USD, but report.rates has no rate for CHF: "
        "their amounts are in no converted figure"
    ]
