"""The crmsync config file: schema, loader, and the resolved `Config` the engine reads.

config = load_config("crmsync.yaml")      # ConfigError: one line, file:line: key: what
config.funnel_for("hubspot", "default")   # -> mapping.funnel.Funnel
config.systems["salesforce"].secret("session_id")  # plain value, for connectors only
"""

from __future__ import annotations

from config.errors import ConfigError, LiteralSecretWarning, Problem, StaleStageWriteWarning
from config.loader import DEFAULT_STORE_FILE, load_config, resolve_store_url
from config.resolved import Config, Policy, PolicyRule, redact_url
from config.schema import (
    BUILTIN_KINDS,
    Document,
    LimitsConfig,
    MatchingConfig,
    PoliciesConfig,
    PushConfig,
    ReportConfig,
    ScheduleEntry,
    SystemConfig,
    known_zone,
    parse_duration,
)

__all__ = [
    "BUILTIN_KINDS",
    "DEFAULT_STORE_FILE",
    "Config",
    "ConfigError",
    "Document",
    "LimitsConfig",
    "LiteralSecretWarning",
    "MatchingConfig",
    "PoliciesConfig",
    "Policy",
    "PolicyRule",
    "Problem",
    "PushConfig",
    "ReportConfig",
    "ScheduleEntry",
    "StaleStageWriteWarning",
    "SystemConfig",
    "known_zone",
    "load_config",
    "parse_duration",
    "redact_url",
    "resolve_store_url",
]
