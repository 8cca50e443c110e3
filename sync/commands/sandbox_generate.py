"""`crmsync sandbox generate`: a seeded three-CRM dataset plus the list of what was planted."""

from __future__ import annotations

import time
from pathlib import Path

import click

from connectors.sandbox.generator import generate_full, write_generated
from sync.outfile import check_not_a_crmsync_file, check_writable

__all__ = ["command"]


@click.command("generate")
@click.option(
    "--deals",
    # The dataset is built in memory: 2M deals per system take several GB.
    type=click.IntRange(min=0, max=2_000_000),
    required=True,
    help="About this many deals per system (all kinds of discrepancy planted from 15 up; "
    "2,000,000 at most).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Dataset file to write; the planted list goes beside it as <stem>.planted.json.",
)
def command(deals: int, seed: int, out: Path) -> None:
    """Write a realistic sandbox dataset with planted cross-system discrepancies."""
    check_writable(out, what="--out")
    check_not_a_crmsync_file(out, what="--out")
    started = time.monotonic()
    result = generate_full(deals, seed)
    dataset_path, planted_path = write_generated(out, result)
    counts = ", ".join(
        f"{system} {len(result.dataset[system][name])}"
        for system, name in (("salesforce", "Opportunity"), ("hubspot", "deals"),
                             ("pipedrive", "deals"))
    )  # fmt: skip
    click.echo(
        f"wrote {dataset_path} ({counts} deals, {len(result.entity_refs)} entities) and "
        f"{planted_path} ({len(result.planted)} planted) in {time.monotonic() - started:.1f}s"
    )
