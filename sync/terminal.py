"""How crmsync prints people's output: CRM and config text shown as written, never read as
rich markup or terminal codes."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from sync.errors import terminal_safe

__all__ = ["cell", "counted", "fitted", "id_column", "plain_console"]


class _PipeConsole(Console):
    """A reader that stops early (`| head`) raises BrokenPipeError, as `click.echo` does:
    rich's own SystemExit would end the process before a run could record its end."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def plain_console(**options: Any) -> Console:
    """A rich console that prints strings as written. Deal names, ids, values and error
    messages come from the CRMs and the config: read as markup, a `[/]` in one fails the whole
    output and a `[b]...[/b]` restyles it. Styling is set with `Text(..., style=...)`.

    On stderr off a terminal (systemd's journal, cron's mail, a log file) a line printed is
    never wrapped: rich wraps at 80 columns there, which split status lines mid-message and
    broke alerting that greps them. Tables keep their width either way."""
    console = _PipeConsole(markup=False, **options)
    if options.get("stderr") and "soft_wrap" not in options:
        console.soft_wrap = not console.is_terminal
    return console


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` of `noun` in words: "1 change", "2 changes" ("2 entities": `plural`)."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


def cell(*lines: object) -> Text:
    """A table cell of `lines` (one or more), each with its control characters spelled out.

    A `Text` is never parsed as markup, whatever the console, and `terminal_safe` keeps escape
    codes and bidi overrides from the CRM off the terminal.
    """
    return Text("\n".join(terminal_safe(str(line)) for line in lines))


def id_column(table: Table, header: str, ids: Iterable[object]) -> None:
    """A column of record ids that never wraps or shrinks: people copy them into the CRM's
    search or into `crmsync rollback`; the other columns fold on a narrow terminal."""
    width = max((len(str(i)) for i in ids), default=len(header))
    table.add_column(header, no_wrap=True, min_width=max(width, len(header)))


def fitted(table: Table, console: Console) -> Table:
    """`table` without its vertical rules when it is wider than this console (the 80-column
    terminal): the columns then keep their whole text.

    Its natural width decides, not its minimum: rich squeezes a boxed table whose minimum
    just fits by folding headers, and crops its last column and right edge when the folds
    fall short (an instance named `hubspot-emea` in the pull table)."""
    unbounded = console.options.update(max_width=10 * console.width)
    if Measurement.get(console, unbounded, table).maximum > console.width:
        # No box at all: rich's "simple" boxes still spend a column per rule, as spaces.
        table.box, table.pad_edge, table.show_edge = None, False, False
    return table
