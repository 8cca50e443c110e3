"""The HTML page as a sales VP reads it: the gist first, plain words, stage labels, no
explanations in the way of the figures (the JSON, CSV and table keep their own forms)."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal as D

import pytest
from chromium import CHROMIUM, NO_CHROMIUM, dump_dom
from fixtures import HS, SF, inputs
from markupsafe import escape

from mapping.funnel import DEFAULT_FUNNEL, Funnel
from sync.health import build_health
from sync.report_html import charts
from sync.report_render import to_html, to_json
from sync.report_words import copies_counted_lines


def _details(page: str, summary: str) -> str:
    match = re.search(
        rf"<details>\s*<summary>{re.escape(summary)}</summary>(.*?)</details>", page, re.S
    )
    assert match, f"no collapsed details {summary!r}"
    return match.group(1)


def test_copy_counting_rule_is_folded_away_while_its_figures_stay_in_view():
    report = build_health(inputs())
    page = to_html(report)
    folded = _details(page, "how matched deals are counted")
    assert str(escape(report.consolidated.copies_counted.rule)) in folded
    outside = page.replace(folded, "")
    assert str(escape(report.consolidated.copies_counted.rule)) not in outside
    for line in copies_counted_lines(report.consolidated.copies_counted):
        assert str(escape(line)) in outside


def renamed_stages_report():
    """The default funnel with labels a config gives its stages ("Discovery" for lead)."""
    labels = {"lead": "Discovery", "qualified": "Qualified lead", "won": "Closed won"}
    funnel = Funnel(
        "default",
        tuple(
            dataclasses.replace(s, label=labels.get(s.key, s.label)) for s in DEFAULT_FUNNEL.stages
        ),
    )
    return build_health(inputs(funnels={"default": funnel}))


def test_charts_name_stages_by_the_labels_their_funnel_defines_and_json_keeps_keys():
    report = renamed_stages_report()
    funnel_charts = [c for c in charts(report) if c["data"][0]["type"] == "funnel"]
    assert funnel_charts
    for chart in funnel_charts:
        assert chart["data"][0]["y"][0] == "Discovery"
        assert "lead" not in chart["data"][0]["y"]
    stage_time = next(c for c in charts(report) if "Median days in stage" in str(c["layout"]))
    assert "Qualified lead" in stage_time["data"][0]["x"]
    assert "qualified" not in stage_time["data"][0]["x"]
    steps = to_json(report)["funnels"]["default"]["conversion"]["steps"]
    assert steps[0]["from_stage"] == "lead"


def test_funnel_chart_values_are_written_at_a_readable_size():
    for chart in charts(build_health(inputs())):
        if chart["data"][0]["type"] == "funnel":
            assert chart["data"][0]["textfont"]["size"] >= 12
            assert chart["layout"]["uniformtext"]["minsize"] >= 12


# Written into the page by a script of the test's own, once the charts are drawn: how much
# wider than the window the page is.
_OVERFLOW_PROBE = """<script>window.addEventListener("load", function () {
  var root = document.documentElement, out = document.createElement("output");
  out.id = "overflow"; out.textContent = String(root.scrollWidth - root.clientWidth);
  document.body.appendChild(out);
});</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_page_fits_a_1400_pixel_window_with_long_unbroken_mismatch_values(tmp_path):
    long_value = "x" * 400
    plan = {
        "changes": [
            {"system": "sf", "id": "1" * 60, "field": "name", "from": long_value, "to": "y" * 300}
        ]
    }
    page = tmp_path / "report.html"
    text = to_html(build_health(inputs(plan=plan)))
    page.write_text(text.replace("</body>", _OVERFLOW_PROBE), encoding="utf-8")
    dom = dump_dom(page, width=1400)
    match = re.search(r'<output id="overflow">(-?\d+)</output>', dom)
    assert match and int(match.group(1)) <= 0, match


def test_page_says_how_history_figures_were_measured_in_plain_words_json_keeps_the_value():
    # sf's deals have stage history, hs's none: consolidated figures are current_stage_only.
    report = build_health(inputs())
    data = to_json(report)["funnels"]["default"]
    assert data["sales_cycle"]["method"] == "current_stage_only"
    page = to_html(report)
    figures = page.split("<script>")[0]
    for raw in ("current_stage_only", "stage_history", "not_available"):
        assert raw not in figures
    assert "from the current stage only" in figures
    kpis = re.search(r'<table id="kpis-by-instance">.*?</table>', page, re.S)
    assert kpis and "(from the current stage only" in kpis.group(0)


def _headline(page: str) -> list[str]:
    match = re.search(r'<ul id="headline">(.*?)</ul>', page, re.S)
    assert match, "no headline"
    return re.findall(r"<li>(.*?)</li>", match.group(1), re.S)


def test_headline_gives_each_funnel_its_open_deals_pipeline_win_rate_and_median_cycle():
    # Consolidated default funnel: open Acme 1000 USD (sf and hs copies, once), Beta 2000 EUR,
    # Eta 100 GBP; won Gamma (100 days) and Epsilon (30 days), lost Delta and Zeta.
    page = to_html(build_health(inputs()))
    assert _headline(page) == [
        "default: 3 open deals, 2,000.00 EUR + 100.00 GBP + 1,000.00 USD open pipeline, "
        "win rate 50.00%, median cycle 65.0 days"
    ]
    assert page.index('id="headline"') < page.index("<h2>")  # before any table


def test_headline_converts_the_open_pipeline_with_report_currency_and_rates():
    report = build_health(inputs(report_currency="USD", rates={"EUR": D("1.10")}))
    assert _headline(to_html(report)) == [
        "default: 3 open deals, 3,200.00 USD open pipeline (converted; no rate: GBP: 1 deal), "
        "win rate 50.00%, median cycle 65.0 days"
    ]


def test_headline_escapes_a_hostile_funnel_name():
    hostile = "<script>alert(1)</script>[bold]x"
    funnel = dataclasses.replace(DEFAULT_FUNNEL, name=hostile)
    deals = {
        k: [dataclasses.replace(d, funnel=hostile) for d in v] for k, v in (("sf", SF), ("hs", HS))
    }
    page = to_html(build_health(inputs(deals=deals, funnels={hostile: funnel})))
    (line,) = _headline(page)
    assert line.startswith("&lt;script&gt;alert(1)&lt;/script&gt;[bold]x: 3 open deals")
    assert "<script>alert" not in page


def test_a_hostile_stage_label_reaches_the_charts_as_plain_text():
    hostile = '<a href="https://phish.example">Lead</a>[bold]'
    funnel = Funnel(
        "default",
        tuple(
            dataclasses.replace(s, label=hostile) if s.key == "lead" else s
            for s in DEFAULT_FUNNEL.stages
        ),
    )
    data = json.dumps(charts(build_health(inputs(funnels={"default": funnel}))))
    assert '&lt;a href=\\"https://phish.example\\"&gt;Lead&lt;/a&gt;[bold]' in data
    assert "<a " not in data
