"""The engine's typed errors; each carries the process exit code the CLI turns it into.

Exit codes (DESIGN.md): 1 run failed; 2 usage or config error; 3 thresholds or limits breached.
Any exception with an integer `exit_code` attribute (config.ConfigError, connector errors) is
treated the same way by the CLI, so packages below `sync` need not import this module.
"""

from __future__ import annotations

__all__ = ["CrmsyncError", "LimitsExceeded", "UsageError"]


class CrmsyncError(Exception):
    """A failure with a one-line, user-actionable message."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CrmsyncError):
    """The command was asked for something it cannot do as given (wrong options, missing file)."""

    exit_code = 2


class LimitsExceeded(CrmsyncError):
    """Report thresholds or reconcile limits (conflicts, unmatched) were breached."""

    exit_code = 3
