"""Where each HubSpot call crmsync makes goes: HubSpot's date-versioned API, API_VERSION.

HubSpot ends its support of v1-v3 (every /crm/v3 and /account-info/v3 path) in September 2027,
and of a date version 18 months after its release: 2026-03 at about the same time, 2026-09
(released 2026-09-09) about March 2028 (its changelog "Legacy APIs and legacy apps: what's
going unsupported and when"; "Developer platform and API versioning"). Its references give
2026-09 v3's (and, for associations, v4's) bodies and answers. hubspot-api-client 12 wraps no
dated path, so each goes through the SDK's REST client (`HubSpotConnector._unwrapped`).
Moving to the next version is this constant (and the sandbox's API_VERSIONS).
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_DETAILS",
    "API_VERSION",
    "DEAL_COMPANIES_READ",
    "OWNERS",
    "PIPELINES",
    "objects",
]

API_VERSION = "2026-09"

ACCOUNT_DETAILS = f"/account-info/{API_VERSION}/details"
PIPELINES = f"/crm/pipelines/{API_VERSION}/deals"
OWNERS = f"/crm/owners/{API_VERSION}"  # without v3's trailing slash, as the reference has it
# Object types by name, as v4's call named them: the reference says only "the type of the from
# Object", neither names nor ids (0-3, 0-2) in words; v4 took both.
DEAL_COMPANIES_READ = f"/crm/associations/{API_VERSION}/deals/companies/batch/read"


def objects(noun: str) -> str:
    """The objects API of a type (`deals`, `companies`): its list; search and batch below it."""
    return f"/crm/objects/{API_VERSION}/{noun}"
