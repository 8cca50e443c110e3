"""Renderers: stable JSON, CSV injection neutralised, HTML escaped and self-contained."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from decimal import Decimal as D

import pytest
from chromium import CHROMIUM, NO_CHROMIUM, dump_dom
from fixtures import HS, NOW, SF, inputs, usd
from rich.console import Console

from sync.health import build_health
from sync.kpis import ratio
from sync.report_html import PAGE_TITLE, chart_json, charts
from sync.report_render import (
    deal_rows,
    mismatch_rows,
    neutralise_cell,
    to_csv,
    to_html,
    to_json,
    to_table,
)
from sync.report_run import render_report
from sync.report_words import share

ATTACK = "</script><script>document.title='pwned'</script>"
SCRIPT = "<script>alert(1)</script>"


def hostile_report():
    """The fixture with hostile deal names on the stale deal and in the plan."""
    beta = dataclasses.replace(SF[1], name=ATTACK + SCRIPT)
    plan = {
        "changes": [
            {"system": "sf", "id": "2", "field": "name", "from": SCRIPT, "to": "=HYPERLINK(1)"}
        ]
    }
    return build_health(inputs(deals={"sf": [SF[0], beta, SF[2], SF[3]]}, plan=plan))


def test_json_has_stable_top_level_keys_and_decimals_as_strings():
    data = to_json(build_health(inputs()))
    assert list(data) == [
        "version",
        "generated_at",
        "since",
        "stale_days",
        "report_currency",
        "thresholds",
        "breached",
        "systems",
        "funnels",
        "consolidated",
        "data_quality",
        "cross_system",
        "timezone",
        "filters",  # added last: the keys before keep their order
    ]
    assert data["filters"] == {"funnels": [], "systems": [], "since": None, "until": None}
    assert data["generated_at"] == "2024-06-30T12:00:00Z"
    assert data["consolidated"]["open_amount"] == {"EUR": "2000", "GBP": "100", "USD": "1000"}
    conversion = data["funnels"]["default"]["conversion"]
    assert conversion["method"] == "current_stage_only"
    assert conversion["lead_to_won"] == "0.2857"
    json.dumps(data)  # serialisable as is


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    out = io.StringIO()
    to_csv(mismatch_rows(hostile_report()), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["value_to"] == "'=HYPERLINK(1)"
    assert rows[0]["value_from"] == SCRIPT  # plain text is left as it is
    assert [neutralise_cell(v) for v in ("+1", "-2", "@x", "\tx", "\rx", "ok")] == [
        "'+1",
        "'-2",
        "'@x",
        "'\tx",
        "'\rx",
        "ok",
    ]


def test_deal_csv_lists_stale_and_past_due_deals_with_neutralised_names():
    beta = dataclasses.replace(SF[1], name="=cmd|' /C calc'!A0")
    report = build_health(inputs(deals={"sf": [beta]}, plan=None))
    out = io.StringIO()
    assert to_csv(deal_rows(report), out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["flag"], r["name"]) for r in rows] == [
        ("stale", "'=cmd|' /C calc'!A0"),
        ("past_due", "'=cmd|' /C calc'!A0"),
    ]


def test_table_lists_breached_thresholds_before_the_figures():
    report = build_health(inputs(thresholds={"min_completeness": 0.8, "stale_share": 0.9}))
    console = Console(record=True, width=140)
    to_table(report, console)
    text = console.export_text()
    assert text.index("BREACHED") < text.index("funnel default")
    assert text.index("min_completeness") < text.index("stale_share")


def test_chart_json_cannot_close_the_script_element():
    text = chart_json([{"name": ATTACK, "amp": "a&b"}])
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == [{"name": ATTACK, "amp": "a&b"}]


def test_html_escapes_every_crm_text_and_embeds_plotly_once():
    page = to_html(hostile_report())
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 2  # the plotly bundle and the chart bootstrap, nothing else
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)  # nothing fetched


def test_html_links_each_mismatch_to_its_record_with_a_quoted_id():
    plan = {"changes": [{"system": "sf", "id": "0061/x?y", "field": "amount", "to": "2"}]}
    page = to_html(build_health(inputs(plan=plan)))
    assert 'href="https://acme.my.salesforce.com/lightning/r/Opportunity/0061%2Fx%3Fy/view"' in page


def test_chart_titles_show_an_instance_name_as_text_not_as_a_plotly_link():
    evil = '<a href="https://phish.example">sf</a>'
    sf = [dataclasses.replace(d, ref=d.ref._replace(system=evil)) for d in SF]
    report = build_health(
        inputs(deals={evil: sf, "hs": HS}, consolidation_order=[evil, "hs"], instance_urls={})
    )
    data = json.dumps(charts(report))
    assert "phish.example" in data  # the instance's funnel chart is there
    assert "<a " not in data and "&lt;a href=" in data


@pytest.mark.parametrize(
    "base_url",
    [
        "https://svc:proxy-pass-77@acme.my.salesforce.com",
        "https://acme.my.salesforce.com/?access_token=proxy-pass-77",
        "https://acme.my.salesforce.com#proxy-pass-77",
    ],
)
def test_a_proxy_login_in_the_base_url_reaches_no_record_link_in_any_format(base_url):
    plan = {"changes": [{"system": "sf", "id": "0061", "field": "amount", "to": "2"}]}
    urls = {"sf": ("salesforce", base_url)}
    report = build_health(inputs(plan=plan, instance_urls=urls))
    page = to_html(report)
    assert 'href="https://acme.my.salesforce.com/lightning/r/Opportunity/0061/view"' in page
    out = io.StringIO()
    to_csv(mismatch_rows(report), out)
    for text in (page, json.dumps(to_json(report)), out.getvalue()):
        assert "proxy-pass-77" not in text


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_html_renders_charts_in_headless_chromium_and_runs_no_injected_script(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(to_html(hostile_report()), encoding="utf-8")
    dom = dump_dom(page)
    assert dom.count('class="main-svg"') >= 6  # plotly drew the charts (2 svg layers each)
    assert f"<title>{PAGE_TITLE}</title>" in dom
    assert "pwned" not in dom.split("</title>")[0]


def test_table_and_html_show_the_forecast_months_the_json_has():
    # Consolidated default funnel: Beta, moved to close today, 2024-06 EUR 2000 x 0.8,
    # committed (last open stage); Acme 2024-07 USD 1000 x 0.5; Eta 2024-08 GBP 100 x 0.1.
    beta_today = dataclasses.replace(SF[1], close_date=NOW.date())
    report = build_health(inputs(deals={"sf": [SF[0], beta_today, SF[2], SF[3]], "hs": HS}))
    months = to_json(report)["funnels"]["default"]["forecast"]["months"]
    assert [(m["month"], m["currency"], m["weighted"], m["committed"]) for m in months] == [
        ("2024-06", "EUR", "1600.00", "2000.00"),
        ("2024-07", "USD", "500.00", "0.00"),
        ("2024-08", "GBP", "10.00", "0.00"),
    ]
    console = Console(record=True, width=160)
    to_table(report, console)
    text = console.export_text()
    assert "forecast 2024-06 EUR" in text and "weighted 1,600.00 / committed 2,000.00" in text
    assert "weighted 10.00 / committed 0" in text
    page = to_html(report)
    assert "<td>2024-06</td><td>EUR</td>" in page and ">1,600.00<" in page


def test_forecast_left_out_counts_past_due_deals_in_json_table_and_html():
    # Consolidated default funnel: Beta (close 2024-06-01) is past due, in no forecast month.
    report = build_health(inputs())
    forecast = to_json(report)["funnels"]["default"]["forecast"]
    assert list(forecast) == [
        "rule", "months", "no_close_date", "without_amount", "past_due", "converted",
    ]  # fmt: skip
    assert [forecast[key] for key in list(forecast)[2:]] == [0, 0, 1, None]  # no report.rates
    console = Console(record=True, width=160)
    to_table(report, console)
    text = console.export_text()
    assert "0 / 0 / 1" in text and "without amount / past due (close date before today)" in text
    page = to_html(report)
    assert "0 without an amount, 1 past due (close date before today)." in page


def test_table_shows_the_consolidated_figures_the_html_shows_and_n_a_for_no_sales_cycle():
    # Only lost deals: no sales cycle. Consolidated over the fixture: 2 won / 2 lost, 1 stale
    # (Beta), 1 past due (Beta), won 3000 USD + 5000 USD, EUR at 1.10.
    lost_only = build_health(inputs(deals={"sf": [SF[3]]}, entities=[], plan=None))
    console = Console(record=True, width=160)
    to_table(lost_only, console)
    assert "median n/a / mean n/a / p90 n/a" in console.export_text()
    report = build_health(inputs(report_currency="USD", rates={"EUR": D("1.10")}))
    console = Console(record=True, width=160)
    to_table(report, console)
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in console.export_text().splitlines()
        if line.count("│") == 3
    }
    assert rows["win rate"] == "50.00%"
    assert rows["stale / past due"] == "1 / 1"
    assert rows["won in USD"] == "8,000.00"
    page = to_html(report)
    assert '<th>win rate</th><td class="num">50.00%</td>' in page


def test_html_writes_rates_as_percentages_and_counts_one_deal_in_the_singular():
    # Consolidated default funnel: 2024-06 EUR holds one committed deal (Beta, closing today).
    beta_today = dataclasses.replace(SF[1], close_date=NOW.date())
    page = to_html(build_health(inputs(deals={"sf": [SF[0], beta_today, SF[2], SF[3]], "hs": HS})))
    assert "0.5000" not in page and "50.00% (2 won / 2 lost)" in page
    assert "2,000.00 (1 deal)</td>" in page and "(1 deals)" not in page


def test_a_rate_is_shown_as_the_json_has_it_not_rounded_a_second_time():
    # 10 of 81 is 12.3457%: the JSON's 0.1235 rounded again to one decimal showed 12.4%.
    assert share(ratio(10, 81)) == "12.35%"
    assert share("0.1235") == "12.35%" and share(None) == "n/a"


def test_html_groups_the_digits_of_amounts_while_json_and_csv_keep_them_plain():
    big = [dataclasses.replace(d, value=usd("1234567.50")) if d.value else d for d in SF]
    report = build_health(inputs(deals={"sf": big, "hs": HS}))
    page = to_html(report)
    assert "1,234,567.50 USD" in page
    assert "1234567.50" not in page.split("<script>")[0]  # the figures, not the chart data
    data = json.dumps(to_json(report))
    assert "1234567.50" in data and "1,234,567" not in data


def test_mismatch_csv_without_mismatches_still_has_its_header_row():
    """A pipeline in sync exports a CSV a spreadsheet or script can still read: the header
    row, no data rows (an empty file has no columns to read)."""
    text = render_report(build_health(inputs(plan={"changes": []})), "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["entity", "kind", "field", "system", "id", "value_from", "value_to", "reason", "url"]
    ]


def test_table_and_html_show_every_amount_with_its_cents_whatever_digits_the_crm_sent():
    # Salesforce sends 85100.0, HubSpot "2800": summed as sent, the table showed
    # "85,100.0 GBP" and "2,800 GBP" beside "1,234.56 USD".
    sent = [
        dataclasses.replace(SF[0], value=usd("85100.0", "GBP")),
        dataclasses.replace(SF[2], value=usd("2800", "GBP")),
    ]
    report = build_health(inputs(deals={"sf": sent}, entities=[], plan=None))
    console = Console(record=True, width=200)
    to_table(report, console)
    text = console.export_text()
    assert "85,100.00 GBP" in text and "2,800.00 GBP" in text
    assert "85,100.0 GBP" not in text and "2,800 GBP" not in text
    page = to_html(report)
    assert "85,100.00 GBP" in page and "2,800.00 GBP" in page
    assert "85,100.0 GBP" not in page and "2,800 GBP" not in page


def test_forecast_won_size_and_converted_totals_show_amounts_as_every_other_amount():
    """Grouped digits and cents in the table and the page, as the README says of amounts;
    the forecast, the won deal size and the converted totals showed "6172.75", "8000.00"."""
    big = [
        dataclasses.replace(SF[0], value=usd("12345.5"), close_date=NOW.date()),
        dataclasses.replace(SF[2], value=usd("8000")),
    ]
    rates = {"EUR": D("1.10")}
    report = build_health(
        inputs(deals={"sf": big}, entities=[], plan=None, report_currency="USD", rates=rates)
    )
    console = Console(record=True, width=250)
    to_table(report, console)
    lines, page = console.export_text().splitlines(), to_html(report)

    def row(start: str) -> str:
        return next(line for line in lines if line.startswith(f"│ {start}"))

    assert "weighted 6,172.75 / committed 0.00" in row("forecast 2024-06 USD")
    assert "avg 8,000.00 / median 8,000.00" in row("won size USD")
    assert "12,345.50" in row("open in USD")
    assert '<td class="num">6,172.75</td><td class="num">0.00 (' in page  # the forecast row
