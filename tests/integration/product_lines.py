"""Two product lines in a sandbox world: new business on the default funnel, renewals on a funnel
of their own in HubSpot's and Pipedrive's Renewals pipelines (Salesforce's org has no record
types: its one pipeline, `default`, is on the default funnel)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml

__all__ = ["RENEWAL", "renewals_on_their_own_funnel"]


class _Configured(Protocol):
    """A sandbox with a config file: an integration `World`, a report test's `SandboxEnv`."""

    config: Path


RENEWAL = [
    {"key": "renewal_due", "phase": "awareness", "probability": 0.2},
    {"key": "quoted", "phase": "decision", "probability": 0.5},
    {"key": "committed", "phase": "decision", "probability": 0.9},
    {"key": "renewed", "phase": "action", "probability": 1, "closed": True, "won": True},
    {"key": "churned", "phase": "action", "probability": 0, "closed": True},
]


def renewals_on_their_own_funnel(world: _Configured) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["funnels"] = {"renewal": {"stages": RENEWAL}}
    systems = document["systems"]
    systems["hubspot"]["pipeline_funnels"] = {"default": "default", "renewals": "renewal"}
    systems["hubspot"]["stage_map"]["renewals"] = {
        "75210931": "renewal_due", "75210932": "quoted", "75210933": "quoted",
        "75210934": "committed", "75210935": "renewed", "75210936": "churned",
    }  # fmt: skip
    systems["hubspot"]["stage_write"]["renewals"] = {"quoted": "75210933"}
    systems["pipedrive"]["pipeline_funnels"] = {"1": "default", "2": "renewal"}
    systems["pipedrive"]["stage_map"]["2"] = {
        "6": "renewal_due",
        "7": "quoted",
        "8": "quoted",
        "9": "committed",
    }
    systems["pipedrive"]["stage_write"]["2"] = {"quoted": "8"}
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
