"""The health report as ONE self-contained HTML page: jinja2 with autoescape, plotly charts
with the plotly.js bundle embedded once, no network needed to open it."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from sync.health_model import FunnelFigures, HealthReport
from sync.report_words import across_funnels, amount, copies_counted_lines, no_rate, share
from sync.terminal import counted

__all__ = [
    "PAGE_TITLE",
    "basis_words",
    "chart_json",
    "charts",
    "method_words",
    "plotly_text",
    "render_page",
]

PAGE_TITLE = "crmsync pipeline health"

# JSON inside <script> must never hold a literal `<`, `>` or `&`: a CRM-supplied name such as
# `</script><script>...` would otherwise end the script element and run as markup.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


# Plotly reads a subset of HTML in chart text (`<a href>`, `<b>`, `<br>`): a CRM-supplied deal
# name (or an instance, funnel or stage name of the config) such as
# `<a href="https://phish.example">` would become a live link in the chart. Plotly
# decodes these entities back to the characters, so the name shows as it is, as plain text.
_PLOTLY_LITERAL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def plotly_text(value: str) -> str:
    """`value` for a Plotly label or title, shown literally (no pseudo-HTML markup)."""
    return value.translate(_PLOTLY_LITERAL)


def chart_json(figures: list[dict[str, Any]]) -> str:
    return json.dumps(figures, separators=(",", ":")).translate(_SCRIPT_SAFE)


def _figure(fig: go.Figure) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(pio.to_json(fig, validate=True))
    return data


def _stage_labels(figures: FunnelFigures) -> Callable[[str], str]:
    """A stage key -> the label its funnel defines, for a chart (the JSON keeps the keys)."""
    labels = {s.key: s.label for s in figures.stages}
    return lambda key: plotly_text(labels.get(key, key))


# Plotly shrinks text that does not fit inside a bar down to ~7 px; at 12 px it stays legible,
# and a label that does not fit inside is drawn beside its bar instead.
_READABLE = 12


def _funnel_chart(title: str, figures: FunnelFigures) -> dict[str, Any]:
    keys = [step.from_stage for step in figures.conversion.steps]
    if figures.conversion.steps:
        keys.append(figures.conversion.steps[-1].to_stage)
    reached = [step.reached_from for step in figures.conversion.steps]
    if figures.conversion.steps:
        reached.append(figures.conversion.steps[-1].reached_to)
    fig = go.Figure(
        go.Funnel(
            y=list(map(_stage_labels(figures), keys)),
            x=reached,
            # one line: two lines of 12 px overflow the bars of a five-stage funnel
            texttemplate="%{value:,} (%{percentInitial:.0%})",
            textposition="auto",
            textfont={"size": _READABLE + 1},
        )
    )
    method = method_words(figures.conversion.method)
    title = plotly_text(f"{title} — deals that reached each stage ({method})")
    fig.update_layout(title=title, height=360, uniformtext={"minsize": _READABLE, "mode": "show"})
    return _figure(fig)


def _stage_time_chart(name: str, figures: FunnelFigures) -> dict[str, Any]:
    stages = [s for s in figures.time_in_stage.stages if s.median_days is not None]
    label = _stage_labels(figures)
    fig = go.Figure(
        go.Bar(
            x=[label(s.stage) for s in stages],
            y=[float(s.median_days or 0) for s in stages],
        )
    )
    fig.update_layout(
        title=plotly_text(
            f"Median days in stage — funnel {name} ({figures.time_in_stage.deals} deals "
            "with stage history)"
        ),
        yaxis_title="days",
        height=340,
    )
    return _figure(fig)


def _forecast_chart(report: HealthReport) -> dict[str, Any]:
    """In the report currency where every month's deals could be converted: bars of several
    currencies on one axis compare amounts that do not compare."""
    fig = go.Figure()
    title = "Forecast by close month (open deals, past due left out)"
    converted = report.consolidated.forecast.converted
    missing = sorted({c for m in converted.months for c in m.unconverted}) if converted else []
    if converted is not None and not missing:
        currency = plotly_text(converted.currency)
        x = [m.month for m in converted.months]
        fig.add_bar(name=f"weighted {currency} (converted)", x=x,
                    y=[float(m.weighted) for m in converted.months])  # fmt: skip
        fig.add_bar(name=f"committed {currency} (converted)", x=x,
                    y=[float(m.committed) for m in converted.months])  # fmt: skip
        fig.update_layout(title=f"{title}, in {currency} at the configured rates")
    else:
        _forecast_per_currency(fig, report)
        if missing:
            shown = plotly_text(", ".join(missing))
            fig.update_layout(title=f"{title}, per currency: no rate for {shown}")
        else:
            fig.update_layout(title=title)
    fig.update_layout(barmode="group", height=360)
    fig.update_xaxes(type="category")
    return _figure(fig)


def _forecast_per_currency(fig: go.Figure, report: HealthReport) -> None:
    months = report.consolidated.forecast.months
    for currency in sorted({m.currency for m in months}):
        rows = [m for m in months if m.currency == currency]
        # Plotly draws floats; the exact Decimal figures are in the tables and the JSON.
        fig.add_bar(
            name=f"weighted {currency}",
            x=[m.month for m in rows],
            y=[float(m.weighted) for m in rows],
        )
        fig.add_bar(
            name=f"committed {currency}",
            x=[m.month for m in rows],
            y=[float(m.committed) for m in rows],
        )


def _stale_chart(report: HealthReport) -> dict[str, Any]:
    flags = [
        f for s in report.systems.values() for ff in s.funnels.values() for f in ff.stale.deals
    ]
    flags = sorted(flags, key=lambda f: -f.days)[:15]
    fig = go.Figure(
        go.Bar(
            x=[f.days for f in flags],
            y=[plotly_text(f"{f.name} ({f.system}:{f.id})") for f in flags],
            orientation="h",
        )
    )
    fig.update_layout(title="Oldest stale deals (days without a stage change)", height=380)
    return _figure(fig)


def charts(report: HealthReport) -> list[dict[str, Any]]:
    """Plotly figure specs: funnel per system and consolidated, stage durations, forecast."""
    specs = [
        _funnel_chart(f"{instance} / {name}", figures)
        for instance, system in report.systems.items()
        for name, figures in system.funnels.items()
    ]
    specs += [_funnel_chart(f"Consolidated / {n}", f) for n, f in report.funnels.items()]
    specs += [_stage_time_chart(n, f) for n, f in report.funnels.items()]
    specs.append(_forecast_chart(report))
    specs.append(_stale_chart(report))
    return specs


# How a figure was measured, for people; the JSON, CSV and table keep the values themselves.
_METHOD_WORDS = {
    "stage_history": "from stage history",
    "current_stage_only": "from the current stage only, for deals without stage history",
    "not_available": "not available: no stage history",
}
# What a stale or past-due deal's age counts from (under the column "measured from").
_BASIS_WORDS = {"stage_entered_at": "current stage entered", "updated_at": "last update"}


def method_words(method: str) -> str:
    """A figure's method in plain words ("stage_history" -> "from stage history")."""
    return _METHOD_WORDS.get(method, method.replace("_", " "))


def basis_words(basis: str) -> str:
    """A deal age's basis in plain words ("updated_at" -> "last update")."""
    return _BASIS_WORDS.get(basis, basis.replace("_", " "))


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("sync", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    environment.filters["share"] = share
    environment.filters["amount"] = amount
    environment.filters["no_rate"] = no_rate
    environment.filters["deals"] = partial(counted, noun="deal")
    environment.filters["across_funnels"] = across_funnels
    environment.filters["method_words"] = method_words
    environment.filters["basis_words"] = basis_words
    return environment


def render_page(
    report: HealthReport,
    data: dict[str, Any],
    kpis: list[dict[str, Any]],
    headlines: list[str],
) -> str:
    """One HTML page from the report, its JSON form and its "KPIs by instance" rows (both as
    `report_render.plain` gives them), headed by `headlines`; every CRM-supplied text is escaped
    by the template, chart data is script-safe JSON."""
    specs = charts(report)
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=report.filters.title(PAGE_TITLE),
        report=report,
        data=data,
        kpis=kpis,
        headlines=headlines,
        plotly_js=get_plotlyjs(),
        chart_data=chart_json(specs),
        chart_count=len(specs),
        copies_counted=copies_counted_lines(report.consolidated.copies_counted),
    )
