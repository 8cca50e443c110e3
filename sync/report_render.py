"""Render a HealthReport: JSON (stable keys), a rich table, CSV exports, one HTML file.

The HTML page is built by `sync.report_html`; this module holds the text formats.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mapping.model import Ref, format_utc
from sync.conversion import ConvertedSize, ConvertedStage
from sync.health_model import (
    Conversion,
    CopiesCounted,
    FunnelFigures,
    HealthReport,
    Method,
    MismatchRow,
    StageFigure,
    UnmappedStageFigure,
)
from sync.report_headline import headlines
from sync.report_html import PAGE_TITLE, render_page
from sync.report_words import across_funnels, amount, copies_counted_lines, no_rate, share
from sync.terminal import cell, id_column

__all__ = [
    "JSON_VERSION",
    "MISMATCH_COLUMNS",
    "KpiRow",
    "deal_rows",
    "kpi_rows",
    "mismatch_rows",
    "neutralise_cell",
    "plain",
    "to_csv",
    "to_html",
    "to_json",
    "to_table",
]

JSON_VERSION = 1
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain(value: Any) -> Any:
    """JSON-ready data: dataclasses as dicts in field order, Decimal as plain strings,
    datetimes as ISO UTC with Z, dates as YYYY-MM-DD, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Ref):  # a NamedTuple: an object in JSON, not a pair
        return {"system": value.system, "id": value.id}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(report: HealthReport) -> dict[str, Any]:
    """The report as JSON data; the schema (keys and their order) is a contract."""
    return {"version": JSON_VERSION, **plain(report)}


def to_html(report: HealthReport) -> str:
    """The report as one self-contained HTML page (opens without network)."""
    return render_page(report, plain(report), plain(kpi_rows(report)), headlines(report))


def neutralise_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    # Blanks first too: LibreOffice's CSV import can trim them and then evaluate formulas.
    risky = text.startswith(_FORMULA_STARTS) or text.lstrip().startswith(_FORMULA_STARTS)
    return "'" + text if risky else text


def to_csv(rows: Iterable[Mapping[str, object]], file: IO[str], header: Sequence[str] = ()) -> int:
    """Write rows (header from the first row's keys) with every cell neutralised; rows written.
    `header`: written even without rows, so an empty export still names its columns."""
    writer: Any = None
    if header:
        writer = csv.writer(file)
        writer.writerow([neutralise_cell(k) for k in header])
    count = 0
    for row in rows:
        if writer is None:
            writer = csv.writer(file)
            writer.writerow([neutralise_cell(k) for k in row])
        writer.writerow([neutralise_cell(v) for v in row.values()])
        count += 1
    return count


def _copies_counted(counted: CopiesCounted) -> Text:
    """`copies_counted_lines`, instance names as text, never markup."""
    return cell(*copies_counted_lines(counted))


MISMATCH_COLUMNS = tuple(f.name for f in dataclasses.fields(MismatchRow))


def mismatch_rows(report: HealthReport) -> list[dict[str, object]]:
    """One row per planned change or conflicting value, for the mismatch CSV."""
    return [{k: v for k, v in plain(row).items()} for row in report.cross_system.mismatches]


def deal_rows(report: HealthReport) -> list[dict[str, object]]:
    """Flagged deals (stale, past due) per instance and funnel, for the deal CSV."""
    rows: list[dict[str, object]] = []
    for instance, system in report.systems.items():
        for name, figures in system.funnels.items():
            flagged = (("stale", figures.stale.deals), ("past_due", figures.past_due.deals))
            for flag_kind, flags in flagged:
                rows.extend(
                    {"flag": flag_kind, "instance": instance, "funnel": name, **plain(f)}
                    for f in flags
                )
    return rows


@dataclasses.dataclass(frozen=True, slots=True)
class KpiRow:
    """One row of the "KPIs by instance" comparison: headline figures the report already has,
    as the text both the terminal table and the HTML page show."""

    instance: str  # "Consolidated" on the consolidated row
    consolidated: bool
    funnel: str
    deals: int
    win_rate: str
    won_lost: str
    lead_to_won: str
    # The funnel's first open stage and its won stage, which name the overall conversion
    # (`lead_to_won`) in its own words: the comparison's column header for the funnel.
    conversion_stages: tuple[str, str]
    won_size: tuple[str, ...]  # average won deal size, one per currency
    sales_cycle_days: str  # median and mean days
    sales_cycle_method: Method  # how they were obtained
    stale: str
    past_due: int
    # the average of the converted won amounts, with report.currency and report.rates
    won_size_converted: str | None = None

    @property
    def sales_cycle(self) -> str:
        """Median and mean days, and how they were obtained: "20.0 / 30.3 (stage_history)"."""
        return f"{self.sales_cycle_days} ({self.sales_cycle_method})"


def _kpi_row(instance: str, consolidated: bool, name: str, f: FunnelFigures) -> KpiRow:
    cycle = f.sales_cycle
    return KpiRow(
        instance=instance,
        consolidated=consolidated,
        funnel=name,
        deals=f.deals,
        win_rate=share(f.win_rate.rate),
        won_lost=f"{f.win_rate.won} / {f.win_rate.lost}",
        lead_to_won=share(f.conversion.lead_to_won),
        conversion_stages=_overall_stages(f.conversion),
        won_size=tuple(f"{amount(s.average)} {s.currency}" for s in f.won_size),
        sales_cycle_days=f"{_number(cycle.median_days)} / {_number(cycle.mean_days)}",
        sales_cycle_method=cycle.method,
        stale=f"{f.stale.count} of {f.stale.open_deals}",
        past_due=f.past_due.count,
        won_size_converted=_converted_size(f.won_size_converted),
    )


def _converted_size(size: ConvertedSize | None) -> str | None:
    if size is None or size.average is None:
        return None
    return _converted_text(size.average, size.currency, size.unconverted)


def _converted_text(value: Decimal, currency: str, unconverted: Mapping[str, int]) -> str:
    """For people: "2,143.33 USD converted (no rate: CHF: 1 deal)"."""
    left_out = f" ({_no_rate_note(unconverted)})" if unconverted else ""
    return f"{amount(value)} {currency} converted{left_out}"


def _no_rate_note(unconverted: Mapping[str, int]) -> str:
    return f"no rate: {no_rate(unconverted)}" if unconverted else ""


def _converted_stage(converted: ConvertedStage) -> str:
    figures = (
        f"{amount(converted.amount)} {converted.currency} / "
        f"{amount(converted.weighted)} {converted.currency}"
    )
    return "; ".join(filter(None, (figures, _no_rate_note(converted.unconverted))))


def kpi_rows(report: HealthReport) -> list[KpiRow]:
    """Per funnel (sorted), one row per instance in report order, then the consolidated row."""
    names = {name for system in report.systems.values() for name in system.funnels}
    rows: list[KpiRow] = []
    for name in sorted(names | set(report.funnels)):
        rows.extend(
            _kpi_row(instance, False, name, system.funnels[name])
            for instance, system in report.systems.items()
            if name in system.funnels
        )
        if name in report.funnels:
            rows.append(_kpi_row("Consolidated", True, name, report.funnels[name]))
    return rows


def _amounts(amounts: Mapping[str, Decimal]) -> str:
    """For people, digits grouped (JSON and CSV keep them plain)."""
    return ", ".join(f"{amount(a)} {c}" for c, a in amounts.items()) or "-"


def _money(value: Decimal | None) -> str:
    return "n/a" if value is None else amount(value)


def _number(value: Decimal | None) -> str:
    return "n/a" if value is None else format(value, "f")


def _funnel_table(title: str, figures: FunnelFigures, across: bool = False) -> Table:
    """A funnel's stage rows, then a row per native stage the stage map lacks, so the rows add
    up to the deals its title counts (`across`: over several instances, each row names its
    instance)."""
    table = Table(title=cell(title))
    for column in ("stage", "deals", "amount", "weighted", "no amount"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    currency = next((s.converted.currency for s in figures.stages if s.converted), None)
    if currency is not None:
        table.add_column(f"in {currency} (amount / weighted)", justify="right")
    rows: list[StageFigure | UnmappedStageFigure] = [*figures.stages, *figures.unmapped_stages]
    for s in rows:
        label = s.label if isinstance(s, StageFigure) else _unmapped_label(s, across)
        # "-" as in the per-currency columns: a stage without amounts has no total to convert;
        # an unmapped stage's deals are converted in no figure (no stage holds them)
        shown = s.converted if isinstance(s, StageFigure) else None
        converted = [_converted_stage(shown) if shown and s.amount else "-"] if currency else []
        table.add_row(
            cell(label),
            str(s.count),
            _amounts(s.amount),
            _amounts(s.weighted),
            str(s.without_amount),
            *converted,
        )
    return table


def _unmapped_label(figure: UnmappedStageFigure, across: bool) -> str:
    """The stage table's row of deals in a stage the stage map lacks."""
    where = f" ({figure.system})" if across else ""
    return f"in an unmapped stage: {figure.name}{where}"


def _overall_stages(conversion: Conversion) -> tuple[str, str]:
    """The stages the overall conversion runs between in its own funnel: its first open stage
    and its won stage (lead, won in the default funnel; renewal_due, renewed in a renewal
    funnel). The JSON keeps the key `lead_to_won` for every funnel."""
    if not conversion.steps:
        return ("lead", "won")
    return (conversion.steps[0].from_stage, conversion.steps[-1].to_stage)


def _overall_label(stages: tuple[str, str]) -> str:
    return f"{stages[0]} -> {stages[1]}"


def _kpi_table(title: str, f: FunnelFigures) -> Table:
    table = Table(title=cell(title))
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("method / basis")
    conv = f.conversion
    for step in conv.steps:
        table.add_row(
            cell(f"{step.from_stage} -> {step.to_stage}"),
            share(step.rate),
            f"{conv.method} ({conv.deals} deals, {conv.history_deals} with history)",
        )
    overall = _overall_label(_overall_stages(conv))
    table.add_row(cell(overall), share(conv.lead_to_won), f"{conv.entered} deals")
    table.add_row(
        "win rate", share(f.win_rate.rate), f"{f.win_rate.won} won / {f.win_rate.lost} lost"
    )
    for size in f.won_size:
        table.add_row(
            f"won size {size.currency}",
            f"avg {amount(size.average)} / median {amount(size.median)}",
            f"{size.count} deals",
        )
    if (converted_size := f.won_size_converted) is not None:
        table.add_row(
            f"won size in {converted_size.currency}",
            f"avg {_money(converted_size.average)} / median {_money(converted_size.median)}",
            "; ".join(
                filter(
                    None,
                    (f"{converted_size.count} deals", _no_rate_note(converted_size.unconverted)),
                )
            ),
        )
    cycle = f.sales_cycle
    table.add_row(
        "sales cycle (days)",
        f"median {_number(cycle.median_days)} / mean {_number(cycle.mean_days)} "
        f"/ p90 {_number(cycle.p90_days)}",
        f"{cycle.method} ({cycle.deals} deals)",
    )
    tis = f.time_in_stage
    table.add_row(
        "bottleneck", ", ".join(tis.bottleneck) or "-", f"{tis.method} ({tis.deals} deals)"
    )
    drop = f.drop_off
    table.add_row(
        "drop-off",
        ", ".join(f"{k}: {v}" for k, v in drop.by_stage.items()) or "-",
        f"{drop.method}; unknown {drop.unknown}",
    )
    table.add_row(
        "stale",
        f"{f.stale.count} of {f.stale.open_deals} open",
        ", ".join(f"{k}: {v}" for k, v in f.stale.by_basis.items()) or f.stale.method,
    )
    past_due = _amounts(f.past_due.amount)
    if (due := f.past_due.converted) is not None and f.past_due.amount:
        past_due += "; " + _converted_text(due.amount, due.currency, due.unconverted)
    table.add_row("past due", str(f.past_due.count), past_due)
    for m in f.forecast.months:
        table.add_row(
            f"forecast {m.month} {m.currency}",
            f"weighted {amount(m.weighted)} / committed {amount(m.committed)}",
            f"{m.deals} deals, {m.committed_deals} committed",
        )
    if (converted := f.forecast.converted) is not None:
        for cm in converted.months:
            table.add_row(
                f"forecast {cm.month} in {converted.currency}",
                f"weighted {amount(cm.weighted)} / committed {amount(cm.committed)}",
                "; ".join(filter(None, (f"{cm.deals} deals, {cm.committed_deals} committed",
                                        _no_rate_note(cm.unconverted)))),
            )  # fmt: skip
    table.add_row(
        "forecast left out",
        f"{f.forecast.no_close_date} / {f.forecast.without_amount} / {f.forecast.past_due}",
        "open deals without close date / without amount / past due (close date before today)",
    )
    return table


def _kpi_columns(group: list[KpiRow]) -> tuple[str | Text, ...]:
    """The KPI names of one funnel's rows, its overall conversion named by its own stages."""
    return (
        "deals",
        "win rate",
        "won / lost",
        cell(_overall_label(group[0].conversion_stages)),
        "avg won size",
        "sales cycle (median / mean days, method)",
        "stale of open",
        "past due",
    )


def _kpi_cells(r: KpiRow) -> tuple[str | Text, ...]:
    """A row's figures, in the order of `_kpi_columns`."""
    converted = [r.won_size_converted] if r.won_size_converted else []
    won_size = cell(*(r.won_size or ["-"]), *converted)
    return (str(r.deals), r.win_rate, r.won_lost, r.lead_to_won, won_size, r.sales_cycle,
            r.stale, str(r.past_due))  # fmt: skip


def _kpi_groups(rows: list[KpiRow]) -> list[list[KpiRow]]:
    """The rows per funnel, in their order: each funnel gets a table of its own, since its
    overall conversion is named by its own stages."""
    return [[r for r in rows if r.funnel == f] for f in dict.fromkeys(r.funnel for r in rows)]


def _kpi_title(group: list[KpiRow]) -> Text:
    return cell(f"KPIs by instance — funnel {group[0].funnel}")


def _kpi_comparison_table(group: list[KpiRow]) -> Table:
    table = Table(title=_kpi_title(group))
    for column in ("instance", "funnel"):
        table.add_column(column)
    for name in _kpi_columns(group):
        table.add_column(name, justify="right")
    for r in group:
        table.add_row(
            cell(r.instance),
            cell(r.funnel),
            *_kpi_cells(r),
            style="bold" if r.consolidated else None,
        )
    return table


def _kpi_turned_table(group: list[KpiRow]) -> Table:
    """The comparison for a terminal too narrow for ten columns side by side: a row per KPI
    and a column per instance (cut short, "5138…" would read as another figure)."""
    table = Table(title=_kpi_title(group))
    table.add_column("KPI", overflow="fold")
    for r in group:
        table.add_column(
            cell(r.instance), justify="right", overflow="fold",
            header_style="bold" if r.consolidated else "",
            style="bold" if r.consolidated else None,
        )  # fmt: skip
    columns = [_kpi_cells(r) for r in group]
    for i, name in enumerate(_kpi_columns(group)):
        table.add_row(name, *(values[i] for values in columns))
    return table


def _print_kpi_comparison(rows: list[KpiRow], console: Console) -> None:
    """Per funnel, side by side where every funnel's table fits the terminal, else turned."""
    tables = [_kpi_comparison_table(group) for group in _kpi_groups(rows)]
    unbounded = console.options.update_width(10_000)  # what it needs, not what there is
    if any(console.measure(t, options=unbounded).maximum > console.width for t in tables):
        tables = [_kpi_turned_table(group) for group in _kpi_groups(rows)]
    for table in tables:
        console.print(table)


def to_table(report: HealthReport, console: Console) -> None:
    """The report for a terminal: breached thresholds first, then figures and checks."""
    if report.filters.active():
        # one line, however narrow the terminal: a script may take it as the report's name
        console.print(Text(report.filters.title(PAGE_TITLE), style="bold"), soft_wrap=True)
    if report.thresholds:
        table = Table(title="Thresholds")
        for column in ("threshold", "value", "limit", "status"):
            table.add_column(column)
        for t in report.thresholds:
            status = Text("BREACHED", style="bold red") if t.breached else Text("ok")
            value = "n/a" if t.value is None else format(t.value, "f")
            table.add_row(t.name, value, f"{t.comparison} {t.limit}", status)
        console.print(table)
    for instance, system in report.systems.items():
        for name, figures in system.funnels.items():
            title = f"{instance} — funnel {name} ({figures.deals} deals)"
            console.print(_funnel_table(title, figures))
    for name, figures in report.funnels.items():
        title = f"Consolidated — funnel {name} (matched deals once)"
        console.print(_funnel_table(title, figures, across=True))
        console.print(_kpi_table(f"KPIs — funnel {name}", figures))
    if rows := kpi_rows(report):
        _print_kpi_comparison(rows, console)
    c = report.consolidated
    totals = Table(title="Consolidated")
    totals.add_column("figure")
    totals.add_column("value", justify="right")
    totals.add_row("deals (matched copies merged)", f"{c.deals} ({c.copies_merged} merged)")
    totals.add_row("copies that disagree, counted by", _copies_counted(c.copies_counted))
    if spanning := across_funnels(c.copies_counted.across_funnels):
        totals.add_row("copies in different funnels", cell(spanning))
    totals.add_row("open / won / lost", f"{c.open} / {c.won} / {c.lost}")
    totals.add_row("open pipeline", _amounts(c.open_amount))
    totals.add_row("weighted pipeline", _amounts(c.weighted))
    totals.add_row("won", _amounts(c.won_amount))
    totals.add_row("win rate", share(c.win_rate.rate))
    totals.add_row("stale / past due", f"{c.stale} / {c.past_due}")
    if c.converted:
        cv = c.converted
        totals.add_row(f"open in {cv.report_currency} ({cv.note})", amount(cv.open_amount))
        totals.add_row(f"weighted in {cv.report_currency}", amount(cv.weighted))
        totals.add_row(f"won in {cv.report_currency}", amount(cv.won_amount))
        if cv.not_converted:
            totals.add_row("not converted (no rate)", no_rate(cv.not_converted))
    console.print(totals)
    quality = Table(title="Data quality")
    id_column(quality, "instance", report.data_quality.instances)  # never "salesfor…"
    for column in (
        "amount",
        "close_date",
        "owner_email",
        "unmapped stages",
        "mapping errors",
        "duplicates",
    ):
        quality.add_column(column, overflow="fold")  # narrow: wrapped, never cut short
    for q in report.data_quality.instances.values():
        shares = [share(f.share) for f in q.completeness]
        named = q.unmapped_stage_names
        unmapped = cell(
            ", ".join(f"{named.get(k, k)}: {v}" for k, v in q.unmapped_stages.items()) or "-"
        )
        quality.add_row(
            cell(q.instance), *shares, unmapped, str(q.mapping_errors), str(q.duplicates)
        )
    console.print(quality)
    _copies_without_account(report.data_quality.copies_without_account, console)
    x = report.cross_system
    cross = Table(title="Cross-system")
    cross.add_column("check")
    cross.add_column("value")
    for p in x.pairs:
        cross.add_row(
            cell(f"{p.a} <-> {p.b}"),
            cell(f"matched {p.matched}, only {p.a} {p.only_a}, only {p.b} {p.only_b}"),
        )
    cross.add_row("mismatched entities", f"{x.mismatched_entities} of {x.entities}")
    for field, count in x.mismatches_by_field.items():
        cross.add_row(cell(f"  {field}"), str(count))
    cross.add_row("open conflicts", str(x.conflicts))
    cross.add_row("deleted in one, live in another", str(len(x.deleted)))
    cross.add_row("dead letters", str(len(x.dead_letters)))
    for s in x.sync:
        last = format_utc(s.last_success) if s.last_success else "never"
        cross.add_row(cell(f"last sync {s.instance}"), f"{last} ({s.api_calls} API calls)")
    console.print(cross)


# The table's rows of copies without an account (JSON lists every one).
_MAX_ROWS_WITHOUT = 50


def _copies_without_account(copies: Sequence[Mapping[str, Any]], console: Console) -> None:
    """The copies an apply created without an account, and why: a person attaches one by
    hand (the next pull then reads it, and the row drops off)."""
    if not copies:
        return
    title = f"Copies created without an account ({len(copies)}): attach one"
    if len(copies) > _MAX_ROWS_WITHOUT:
        title += f"; the first {_MAX_ROWS_WITHOUT} (--format json lists all)"
    table = Table(title=title)
    for column in ("system", "id", "why"):
        table.add_column(column, overflow="fold")
    for c in copies[:_MAX_ROWS_WITHOUT]:
        table.add_row(cell(str(c.get("system"))), cell(str(c.get("id"))), cell(str(c["note"])))
    console.print(table)
