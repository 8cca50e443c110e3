"""The `crmsync` command line: one group, commands loaded lazily from `sync.commands`.

Every error ends the same way: one line `crmsync: error: <message>` on stderr and the error's
exit code (anything with an integer `exit_code`; 1 otherwise; 2 for a usage error, whose line
points at the command's --help); `--verbose` adds the traceback.
Logging goes to stderr only, so stdout stays clean for JSON/JSONL output.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import traceback
import warnings
from typing import Any, TextIO

import click

from config.errors import ConfigError
from sync.errors import store_failure, terminal_safe
from sync.shutdown import STOPPED, Terminated

__all__ = ["main"]

# Command names; each is a module under sync/commands/ (`-` spelled `_`) exposing a click
# command named `command`.
# Each command and the line `crmsync --help` shows for it. Written here so that the list needs
# none of them imported: together they take a second or two to import, which `crmsync --help`
# (and `crmsync` alone) would spend for one screen of text.
_COMMANDS: dict[str, str] = {
    "apply": "Apply a saved plan (refused when stale).",
    "check": "Validate the config; online, test each CRM and its stage maps.",
    "dead-letters": "Changes the CRMs kept refusing; `retry` releases them.",
    "demo": "Sandboxes of the three CRMs, sample data, a plan and a report.",
    "forget": "Remove what the store holds of a retired instance (--apply).",
    "init": "Discover pipelines and stages; propose stage maps.",
    "links": "Review matching: which deals are one real deal.",
    "pull": "Pull deals into the store (incrementally after the first).",
    "reconcile": "Match, diff and plan; apply it unless --dry-run.",
    "report": "Pipeline health per system, per funnel and consolidated.",
    "rollback": "Undo a run's writes (shown first; --apply writes).",
    "runs": "Recent runs, newest first; their ids feed `crmsync rollback`.",
    "sandbox": "Local emulators of Salesforce, HubSpot and Pipedrive.",
    "schedule": "Run the configured jobs on their cron schedules.",
}

_HANDLER_NAME = "crmsync-cli"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"crmsync: {record.levelname.lower()}: {text}"


def configure_logging(verbose: bool, stream: TextIO | None = None) -> None:
    """stderr, WARNING (DEBUG with --verbose); replaces our handler if called again."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_Formatter("%(name)s: %(message)s" if verbose else "%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    logging.getLogger("crmsync").warning("%s", message)


# A config's problems shown at most: a wrong file (another tool's YAML) has one per key.
_MOST_PROBLEMS = 20


def _error_lines(exc: BaseException) -> list[str]:
    """One line per error: every problem of a config file, each on its own line in file order
    (one at a time, a file with several typos took as many runs to fix), the first
    `_MOST_PROBLEMS` of them and how many more; else the one line."""
    if not isinstance(exc, ConfigError):
        return [_one_line(exc)]
    lines = [terminal_safe(" ".join(line.split())) for line in exc.lines]
    if len(lines) <= _MOST_PROBLEMS:
        return lines
    more = len(lines) - _MOST_PROBLEMS
    return [*lines[:_MOST_PROBLEMS], f"{exc.filename}: {more} more problem(s) not shown"]


def _one_line(exc: BaseException) -> str:
    text = terminal_safe(" ".join(str(exc).split()))
    if isinstance(getattr(exc, "exit_code", None), int):
        return text or type(exc).__name__
    failed = store_failure(exc)
    if failed is not None:  # the database, not a bug: say what to check
        return terminal_safe(failed)
    # not one of ours: say what it is, since the message alone may be cryptic
    return f"unexpected {type(exc).__name__}: {text} (run with --verbose for the traceback)"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the exit's final flush hits no closed pipe again."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: an in-memory stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _whole_writes() -> None:
    """Under PYTHONUNBUFFERED (or `python -u`) stdout writes straight to its raw file, and the
    text layer drops whatever a short write left out (a reader that stopped early, a signal):
    output was cut without an error, and the command ended as if all of it was read. A
    buffered writer in between writes the rest or raises (BrokenPipeError: exit 1, quietly).
    Lines still go out as they are printed."""
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(stream.buffer, io.RawIOBase):
        return  # buffered already (the default), or not a real file (tests' runners)
    stream.flush()
    raw = io.FileIO(stream.fileno(), "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors,
        line_buffering=True,
    )  # fmt: skip


# `crmsync` alone (or a group alone) shows its help: not a mistake to report in one line.
_HELP_INSTEAD: tuple[type[Exception], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


def _usage_line(exc: click.UsageError) -> str:
    """A usage error in the one-line form of every other error, keeping click's hint."""
    command = exc.ctx.command_path if exc.ctx is not None else "crmsync"
    return f"crmsync: error: {exc.format_message()} (see '{command} --help')"


class _Group(click.Group):
    """Lazy command loading plus the single error handler for every command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # an option of `crmsync` itself
            if isinstance(exc, _HELP_INSTEAD):
                raise
            click.echo(_usage_line(exc), err=True)
            ctx.exit(exc.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *super().list_commands(ctx)})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = dict(_COMMANDS)
        for name, command in self.commands.items():  # added with `main.add_command`
            if not command.hidden:
                rows[name] = command.get_short_help_str(formatter.width)
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows.items()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:  # also serves commands added with `main.add_command`
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"sync.commands.{cmd_name.replace('-', '_')}")
        command: click.Command = module.command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        configure_logging(verbose)
        _whole_writes()
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            if not verbose:  # as Python itself: a file some library left to the collector is
                # not the user's concern (and in a test process, may not even be ours)
                warnings.simplefilter("ignore", ResourceWarning)
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except click.UsageError as exc:  # a command's arguments: one line, exit 2
                if isinstance(exc, _HELP_INSTEAD):
                    raise
                click.echo(_usage_line(exc), err=True)
                ctx.exit(exc.exit_code)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
                raise  # click's own exits keep their codes
            except KeyboardInterrupt as exc:  # in the documented one-line form, not "Aborted!"
                why = STOPPED if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
                click.echo(f"crmsync: error: {why}", err=True)
                ctx.exit(1)
            except BrokenPipeError:  # the reader left (`| head`): stop quietly, like other tools
                _silence_stdout()
                ctx.exit(1)
            except Exception as exc:
                if verbose:
                    traceback.print_exc(file=sys.stderr)
                for line in _error_lines(exc):
                    click.echo(f"crmsync: error: {line}", err=True)
                code = getattr(exc, "exit_code", 1)
                ctx.exit(code if isinstance(code, int) and code > 0 else 1)


@click.group(cls=_Group)
@click.version_option(
    None, "--version", package_name="crmsync", prog_name="crmsync", message="%(prog)s %(version)s"
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging; tracebacks on errors.")
def main(verbose: bool) -> None:
    """Keep the sales pipelines of Salesforce, HubSpot and Pipedrive consistent."""
