"""The "KPIs by instance" comparison in the terminal table and the HTML page."""

from __future__ import annotations

import dataclasses
import re

from fixtures import HS, SF, inputs
from rich.console import Console

from mapping.funnel import DEFAULT_FUNNEL, Funnel
from sync.health import build_health
from sync.report_render import to_html, to_table

COLUMNS = 10
HOSTILE_INSTANCE = "<b>[red]eu[/red]</b>"
HOSTILE_FUNNEL = "[link=https://phish.example]new[/link]<script>x</script>"


def distinct_win_rates():
    """sf: 1 won / 1 lost (50.00%); hs without Zeta: 1 won / 0 lost (100.00%); consolidated:
    2 won / 1 lost (66.67%)."""
    return build_health(inputs(deals={"sf": SF, "hs": [HS[0], HS[1], HS[3]]}))


def comparison_rows(report) -> list[list[str]]:
    console = Console(record=True, width=220)
    to_table(report, console)
    text = console.export_text()
    section = text[text.index("KPIs by instance") :]
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in section.splitlines()
        if line.count("│") == COLUMNS + 1
    ]


def comparison_table(page: str) -> str:
    match = re.search(r'<table id="kpis-by-instance">.*?</table>', page, re.S)
    assert match, "no KPIs by instance table"
    return match.group(0)


def test_table_compares_each_instance_win_rate_with_the_consolidated_one():
    rows = comparison_rows(distinct_win_rates())
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("sf", "default", "50.00%", "1 / 1"),
        ("hs", "default", "100.00%", "1 / 0"),
        ("Consolidated", "default", "66.67%", "2 / 1"),
    ]
    sf, hs, _ = rows
    assert sf[6] == "3,000.00 USD" and hs[6] == "5,000.00 USD"  # average won deal size
    assert sf[7] == "100.0 / 100.0 (stage_history)"  # median / mean, and how it was measured


def test_html_compares_each_instance_win_rate_with_the_consolidated_one():
    table = comparison_table(to_html(distinct_win_rates()))
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("</tr>")]
    assert [(r[0], r[1], r[3]) for r in cells if r] == [
        ("sf", "default", "50.00%"),
        ("hs", "default", "100.00%"),
        ("Consolidated", "default", "66.67%"),
    ]
    assert '<tr class="consolidated">' in table


def test_comparison_lists_funnels_sorted_and_instances_in_report_order():
    # hs holds deals of a second funnel "alpha"; sf only "default".
    alpha = [dataclasses.replace(d, funnel="alpha") for d in HS]
    report = build_health(
        inputs(
            deals={"sf": SF, "hs": alpha},
            funnels={"default": DEFAULT_FUNNEL, "alpha": DEFAULT_FUNNEL},
            entities=[],
        )
    )
    assert [(r[0], r[1]) for r in comparison_rows(report)] == [
        ("hs", "alpha"),
        ("Consolidated", "alpha"),
        ("sf", "default"),
        ("Consolidated", "default"),
    ]


def hostile_report():
    deals = [dataclasses.replace(d, funnel=HOSTILE_FUNNEL) for d in SF]
    return build_health(
        inputs(
            deals={HOSTILE_INSTANCE: deals},
            funnels={HOSTILE_FUNNEL: DEFAULT_FUNNEL},
            entities=[],
            plan=None,
            consolidation_order=[HOSTILE_INSTANCE],
        )
    )


def test_table_shows_a_hostile_instance_and_funnel_name_as_text_not_markup():
    rows = comparison_rows(hostile_report())
    assert [(r[0], r[1]) for r in rows] == [
        (HOSTILE_INSTANCE, HOSTILE_FUNNEL),
        ("Consolidated", HOSTILE_FUNNEL),
    ]


def test_html_escapes_a_hostile_instance_and_funnel_name_in_the_comparison():
    table = comparison_table(to_html(hostile_report()))
    assert "<b>" not in table and "<script>" not in table
    assert "<td>&lt;b&gt;[red]eu[/red]&lt;/b&gt;</td>" in table
    assert "&lt;script&gt;x&lt;/script&gt;" in table


def test_the_whole_table_report_shows_names_that_look_like_markup_as_text():
    """Instance and funnel names come from the config: `eu[/]` once crashed the table output
    (rich read it as a closing tag), `[b]x[/b]` turned into formatting."""
    instance, funnel = "eu[/]", "[b]new[/b]"
    deals = [dataclasses.replace(d, funnel=funnel) for d in SF]
    report = build_health(
        inputs(
            deals={instance: deals},
            funnels={funnel: DEFAULT_FUNNEL},
            entities=[],
            plan=None,
            consolidation_order=[instance],
        )
    )
    console = Console(record=True, width=220)
    to_table(report, console)
    text = console.export_text()
    assert f"{instance} — funnel {funnel}" in text
    assert f"Consolidated — funnel {funnel}" in text and f"KPIs — funnel {funnel}" in text


def test_on_an_80_column_terminal_no_instance_name_or_figure_is_cut_short():
    # Ten columns side by side need about 150: at 80 they were cut to "Cons…", "3000…".
    console = Console(record=True, width=80)
    to_table(distinct_win_rates(), console)
    text = console.export_text()
    section = text[text.index("KPIs by instance") : text.index("deals (matched copies merged)")]
    assert "…" not in section, section
    assert max(len(line) for line in section.splitlines()) <= 80
    for whole in ("sf", "hs", "Consolidated", "3,000.00 USD", "5,000.00 USD", "50.00%", "66.67%",
                  "(stage_history)"):  # fmt: skip
        assert re.search(rf"(^|[│ ]){re.escape(whole)}($|[│ ])", section, re.M), whole


def renewal_line_report():
    """sf on the default funnel; hs on "renewal", the default funnel's stages renamed (its
    first stage renewal_due, its won stage renewed)."""
    keys = {"lead": "renewal_due", "won": "renewed"}
    renewal = Funnel(
        "renewal",
        tuple(dataclasses.replace(s, key=keys.get(s.key, s.key)) for s in DEFAULT_FUNNEL.stages),
    )
    renewals = [
        dataclasses.replace(d, funnel="renewal", stage=keys.get(d.stage or "", d.stage)) for d in HS
    ]
    return build_health(
        inputs(
            deals={"sf": SF, "hs": renewals},
            funnels={"default": DEFAULT_FUNNEL, "renewal": renewal},
            entities=[],
        )
    )


def test_wide_comparison_names_each_funnels_conversion_column_by_its_own_stages():
    console = Console(record=True, width=220)
    to_table(renewal_line_report(), console)
    text = console.export_text()
    section = text[text.index("KPIs by instance") : text.index("matched copies merged")]
    default_part = section[: section.index("funnel renewal")]
    renewal_part = section[section.index("funnel renewal") :]

    assert "lead -> won" in default_part and "renewal_due -> renewed" not in default_part
    assert "renewal_due -> renewed" in renewal_part and "lead -> won" not in renewal_part
    assert "│ hs " in renewal_part and "│ sf " not in renewal_part
