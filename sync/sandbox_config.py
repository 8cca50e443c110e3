"""A ready-to-use crmsync config for a running sandbox (`sandbox serve --config-out`, demo)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID

__all__ = ["is_sandbox_config", "sandbox_config", "write_sandbox_config"]

_HEADER = """\
# crmsync config for the local sandbox, written by crmsync.
# The credentials are the sandbox's own throw-away tokens: for real CRMs, put secrets in
# environment variables and reference them as ${VAR} (see crmsync.example.yaml).
"""


def sandbox_config(ready: Mapping[str, Any]) -> dict[str, Any]:
    """The config for the servers of a `--ready-file` document (DESIGN.md shape)."""
    tokens = ready["tokens"]
    systems: dict[str, Any] = {}
    if "salesforce" in tokens:
        systems["salesforce"] = {
            "kind": "salesforce",
            "base_url": ready["salesforce"],
            "ca_file": str(ready["ca_file"]),
            "credentials": {"session_id": tokens["salesforce"]},
            "currency": "USD",
            "external_ids": {"hubspot": "HubSpot_Deal_Id__c", "pipedrive": "Pipedrive_Deal_Id__c"},
            "link_field": "Crmsync_Id__c",
        }
    if "hubspot" in tokens:
        systems["hubspot"] = {
            "kind": "hubspot",
            "base_url": ready["hubspot"],
            "credentials": {"access_token": tokens["hubspot"]},
            "currency": "USD",
            "external_ids": {
                "salesforce": "salesforce_opportunity_id",
                "pipedrive": "pipedrive_deal_id",
            },
            "link_field": "crmsync_id",
        }
    if "pipedrive" in tokens:
        systems["pipedrive"] = {
            "kind": "pipedrive",
            "base_url": ready["pipedrive"],
            "credentials": {"api_token": tokens["pipedrive"]},
            "currency": "USD",
            "external_ids": {"salesforce": PD_FIELD_SALESFORCE_ID, "hubspot": PD_FIELD_HUBSPOT_ID},
            "link_field": PD_FIELD_CRMSYNC_ID,
            # Pipedrive refuses a deal linked to no person or organization: crmsync's copies
            # go to their account's organization, those of deals without one to the
            # generated data's first organization.
            "create_org_id": 1,
        }
    for system in systems.values():
        system["external_ids"] = {
            other: field for other, field in system["external_ids"].items() if other in systems
        }
    return {
        "version": 1,
        "systems": systems,
        "matching": {"keys": ["name", "owner_email", "close_month"]},
        "policies": {
            "default": "newest",
            "fields": {"stage": "newest", "owner_email": "newest"},
        },
        "push": {
            "targets": list(systems),
            "max_changes": 100000,
            "create_missing": False,
        },
        "report": {"stale_days": 30},
    }


def is_sandbox_config(path: Path) -> bool:
    """Was the config at `path` written by crmsync for a sandbox (not a user's own)?"""
    try:
        with path.open("rb") as file:
            return file.read(len(_HEADER)).decode("utf-8", "replace") == _HEADER
    except OSError:
        return False


def write_sandbox_config(ready: Mapping[str, Any], path: Path) -> None:
    """Write the config with stage maps proposed from the live sandboxes as `init` does.

    Composed beside `path` and moved there whole: a run started meanwhile (`serve ... &`,
    then `crmsync reconcile`) never reads it without its stage maps.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(sandbox_config(ready), sort_keys=False, allow_unicode=True)
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(_HEADER + body)
    from sync.init import init_config  # the engine side of `crmsync init`

    try:
        init_config(draft)
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
