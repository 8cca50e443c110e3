"""CLI commands, one module each, exposing a click command named `command`.

`sync.cli._COMMANDS` lists the command names (a `-` is a `_` in the module's name); a module is
imported only when its command runs (or `--help` lists it), so one command's heavy imports
never slow down another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import click

__all__ = ["config_option", "wait_option"]

F = TypeVar("F", bound=Callable[..., object])


def config_option(function: F) -> F:
    """`--config FILE`, default `crmsync.yaml` in the current directory (shared by commands)."""
    return click.option(
        "--config",
        "config_path",
        default="crmsync.yaml",
        show_default=True,
        type=click.Path(path_type=str),
        help="The crmsync config file.",
    )(function)


def wait_option(waits_for: str, default: float | None = None) -> Callable[[F], F]:
    """`--wait S`: how long to wait for the locks another process holds, `waits_for` saying
    for what (shared by the commands that take a lock)."""
    return click.option(
        "--wait",
        "wait_seconds",
        type=click.FloatRange(min=0),
        default=default,
        callback=_a_number,
        help=f"Wait up to this long (seconds) {waits_for}.",
    )


def _a_number(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and math.isnan(value):  # FloatRange lets nan through: no bound holds
        raise click.BadParameter("nan is not a number of seconds", ctx, param)
    return value
