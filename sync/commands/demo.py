"""`crmsync demo`: see crmsync work end to end, with no accounts and no set-up."""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import click

from sync.demo import DemoResult, run_demo
from sync.outfile import check_directory
from sync.terminal import plain_console

__all__ = ["command"]


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("crmsync-demo"),
              show_default=True, help="Where the config, data, plan and report go.")  # fmt: skip
@click.option("--deals", type=click.IntRange(10, 200_000), default=1500, show_default=True,
              help="Deals per CRM in the generated sample data.")  # fmt: skip
@click.option("--seed", type=int, default=42, show_default=True)
def command(out: Path, deals: int, seed: int) -> None:
    """Sandboxes of all three CRMs + sample data -> a dry-run plan and a health report."""
    check_directory(out, what="--out")
    console = plain_console(stderr=True)
    fancy = sys.stderr.isatty()
    if fancy:
        with console.status("starting") as status:
            result = run_demo(out, deals=deals, seed=seed, step=lambda s: status.update(s))
    else:
        result = run_demo(
            out, deals=deals, seed=seed, step=lambda s: click.echo(f"· {s}", err=True)
        )
    _story(result)


def _story(r: DemoResult) -> None:
    plan, report = r.plan_json, r.report
    assert report is not None
    echo = click.echo
    q = shlex.quote
    # the commands to copy: as the user ran crmsync (e.g. .venv/bin/crmsync when not on PATH)
    exe = q(sys.argv[0]) if os.sep in sys.argv[0] else "crmsync"
    echo("")
    echo(f"crmsync demo — done in {r.seconds:.1f} s. Three sandbox CRMs held ~{_deals(r)} deals.")
    echo("")
    echo("What reconcile --dry-run found (nothing was written to any CRM):")
    fields = Counter(c["field"] for c in plan["changes"])
    detail = ", ".join(f"{n} {f}" for f, n in fields.most_common())
    echo(f"  {len(plan['changes'])} field corrections planned" + (f": {detail}" if detail else ""))
    echo(f"  {len(plan['conflicts'])} conflicts the policies could not decide")
    echo(f"  {len(plan['unmatched'])} deals present in one CRM only, "
         f"{len(plan['ambiguous'])} ambiguous matches (reported, never guessed), "
         f"{len(plan['duplicates'])} duplicates inside one CRM")  # fmt: skip
    echo(f"  {len(plan.get('deleted', []))} deals deleted in one CRM but live in another; "
         f"{len(plan['errors'])} records or values that cannot be synced")  # fmt: skip
    planted = ", ".join(f"{n} {k}" for k, n in sorted(r.planted_kinds.items()))
    echo(f"  (the generator planted: {planted}; see {r.planted})")
    unmapped = sum(sum(q.unmapped_stages.values()) for q in report.data_quality.instances.values())
    echo(f"  {unmapped} deals in unmapped stages (see `crmsync check`)")
    echo("")
    _kpis(r)
    echo("")
    echo("Files:")
    echo(f"  plan (review it line by line): {r.plan}")
    echo(f"  health report (open in a browser): {r.report_html}")
    echo(f"  config: {r.config}    sample data: {r.dataset}")
    echo("")
    # The sandbox comes back on new ports and rewrites the config: wait for its ready file, or
    # the reconcile reads the demo's config, whose servers are gone.
    ready = q(str(r.out / "ready.json"))
    echo("Apply the plan against the sandbox (it stopped with the demo; start it again and")
    echo("wait until it is ready):")
    echo(f"  rm -f {ready}")
    echo(f"  {exe} sandbox serve --dataset {q(str(r.dataset))} --config-out {q(str(r.config))} "
         f"--ready-file {ready} &")  # fmt: skip
    echo(f"  while [ ! -f {ready} ]; do sleep 0.2; done")
    echo(f"  {exe} reconcile --config {q(str(r.config))} --dry-run --plan-out {q(str(r.plan))}")
    echo(f"  {exe} apply {q(str(r.plan))} --config {q(str(r.config))}")
    echo("")
    echo("Point it at your CRMs: copy crmsync.example.yaml, put tokens in environment variables")
    echo("(${HUBSPOT_TOKEN} ...), then: crmsync init, crmsync check, crmsync reconcile --dry-run.")


def _deals(r: DemoResult) -> int:
    report = r.report
    assert report is not None
    return sum(s.deals for s in report.systems.values())


def _kpis(r: DemoResult) -> None:
    report = r.report
    assert report is not None
    click.echo("Pipeline health (consolidated, matched deals counted once):")
    c = report.consolidated
    click.echo(
        f"  {c.deals} deals ({c.copies_merged} cross-CRM copies merged): {c.open} open, "
        f"{c.won} won, {c.lost} lost; win rate {_pct(c.win_rate.rate)}; open pipeline "
        f"{_money(c.open_amount)}; {c.stale} stale, {c.past_due} past their close date"
    )
    for name, figures in report.funnels.items():
        cycle = figures.sales_cycle
        click.echo(
            f"  funnel {name}: median sales cycle {_days(cycle.median_days)}, mean "
            f"{_days(cycle.mean_days)} ({cycle.method})"
        )
    for t in report.breached:
        click.echo(f"  threshold breached: {t.name} = {t.value} (limit {t.limit})")


def _money(amounts: object) -> str:
    items = sorted(dict(amounts).items())  # type: ignore[call-overload]
    return ", ".join(f"{amount:,.0f} {currency}" for currency, amount in items) or "0"


def _days(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:.0f} days"


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]
