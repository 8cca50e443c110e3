"""`crmsync init`: discover pipelines and stages, write proposed stage maps into the config."""

from __future__ import annotations

from pathlib import Path

import click

from sync.commands import config_option
from sync.init import init_config

__all__ = ["command"]


@click.command("init")
@config_option
def command(config_path: str) -> None:
    """Discover every pipeline and stage and propose stage maps (guesses marked for review)."""
    result = init_config(Path(config_path))
    for instance, added in result.added.items():
        guesses, left = result.guesses[instance], result.left[instance]
        writes = result.writes.get(instance, 0)
        funnels = result.funnels.get(instance, 0)
        click.echo(
            f"{instance}: {result.pipelines[instance]} pipeline(s), {added} stage(s) added to "
            f"the stage map"
            + (f", {guesses} guessed (marked '# review:')" if guesses else "")
            + (f", {left} left for you to map (see the warnings)" if left else "")
            + (f", stage_write proposed for {writes} shared funnel stage(s)" if writes else "")
            + (f", {funnels} pipeline funnel(s) proposed (marked '# review:')" if funnels else "")
        )
    for instance, zone in result.timezones.items():
        click.echo(
            f"{instance}: the portal's time zone {zone} written to systems.{instance}.timezone"
        )
    for instance, currency in result.currencies.items():
        click.echo(
            f"{instance}: {result.currency_names[instance]} {currency} written to "
            f"systems.{instance}.currency"
        )
    done = "updated" if result.written else "left unchanged (it held all of it already)"
    click.echo(f"{done} {config_path}; run `crmsync check --config {config_path}` next")
