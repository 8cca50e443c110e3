"""The consoles crmsync prints people's output with."""

from __future__ import annotations

from typing import Any

from rich.console import Console

__all__ = ["plain_console"]


def plain_console(**options: Any) -> Console:
    """A rich console that prints text as written. Deal names, ids, values and error messages
    come from the CRMs and the config: read as markup, a `[/]` in one fails the whole output and
    a `[b]...[/b]` restyles it. Styling is set with `Text(..., style=...)` instead."""
    return Console(markup=False, **options)
