"""Config problems: one self-contained line each, `file:line: key.path: what (expected ...)`.

ConfigError carries an `exit_code` (2, usage or config error) so the CLI can map it without
config importing the engine (dependency direction: config -> mapping only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "LiteralSecretWarning",
    "Problem",
    "StaleStageWriteWarning",
    "format_path",
]

Path_ = tuple[str | int, ...]


def format_path(path: Path_) -> str:
    """`systems.hubspot.stage_map.default.closedwon`; list items by index (`schedule.0.cron`)."""
    return ".".join(str(part) for part in path)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file, located by key path and (when known) line."""

    path: Path_
    message: str
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        key = format_path(self.path)
        text = f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"
        return " ".join(text.split())  # one line, whatever the message held


class ConfigError(ValueError):
    """The config cannot be used; `str()` is the first problem (by line), on one line."""

    exit_code = 2

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        ordered = sorted(problems, key=lambda p: (p.line or 0, format_path(p.path)))
        self.filename = filename
        self.problems: tuple[Problem, ...] = tuple(ordered)
        self.lines: tuple[str, ...] = tuple(p.render(filename) for p in ordered)
        super().__init__(self.lines[0])

    @classmethod
    def single(
        cls, filename: str, message: str, line: int | None = None, path: Path_ = ()
    ) -> ConfigError:
        return cls(filename, [Problem(path, message, line)])


class LiteralSecretWarning(UserWarning):
    """A credential written into the config file instead of read from the environment."""


class StaleStageWriteWarning(UserWarning):
    """A `stage_write` entry naming a native stage the stage map does not give that funnel
    stage (any more): ignored, the first native stage mapped to it is written instead."""
