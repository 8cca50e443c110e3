"""Typed connector errors: each names the system instance, the operation and the API's cause."""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "BudgetExhausted",
    "ConnectorError",
    "PermissionDenied",
    "RateLimitExhausted",
]


class ConnectorError(Exception):
    """A call to a CRM failed for good. Messages never contain secrets."""

    exit_code = 1

    def __init__(self, system: str, operation: str, message: str, status: int | None = None):
        self.system, self.operation, self.status = system, operation, status
        self.message = " ".join(str(message).split())[:500]
        super().__init__(f"{system}: {operation}: {self.message}")


class AuthError(ConnectorError):
    """Credentials rejected (401): fix the credentials in the config."""

    exit_code = 2


class PermissionDenied(ConnectorError):
    """Authenticated, but the user or token lacks a scope or permission (403)."""

    exit_code = 2


class RateLimitExhausted(ConnectorError):
    """Still rate limited after every retry, or the daily API allowance is used up."""


class BudgetExhausted(ConnectorError):
    """The configured per-run call budget is spent; the run stops cleanly and resumes later."""


class ApiError(ConnectorError):
    """Any other non-retryable API error (400, 404, unexpected responses)."""
