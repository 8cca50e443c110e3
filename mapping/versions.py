"""Versions of the mappers' output, per kind.

A kind's version goes up when the same record maps to another canonical deal (a new flag, a
field read otherwise). It is part of each instance's mapping fingerprint
(`Config.mapping_fingerprint`), so the first pull after an upgrade reads that kind's deals again
instead of keeping those stored under the old mapper for good. A kind at version 1 is left out
of the fingerprint: stores pulled before versions existed stay current.
"""

from __future__ import annotations

__all__ = ["MAPPER_VERSIONS"]

MAPPER_VERSIONS: dict[str, int] = {
    # 2: an amount of 0 is no amount (mapping.model.money_or_none); 3: the account's id
    # (extra["account_id"]) beside its name, always; 4: a Salesforce id in an id field read as
    # the API's 18-character id (mapping.salesforce_ids), as in the other kinds
    "salesforce": 4,
    # 3: a deal's account is its (primary) company's name (extra["account"]); 4: and its id
    # (extra["account_id"]); 5: a Salesforce id in an id field read as the API's 18-character id
    "hubspot": 5,
    # 2: archived deals are flagged (extra["archived"]); 3: an amount of 0 is no amount, and
    # an open deal won after its last stage change has no stage_entered_at (reopened since);
    # 4: the organization's id (extra["account_id"]); 5: deals read from API v2 (custom fields
    # nested, owner and organization by id, the organization's name resolved by the connector);
    # 6: a Salesforce id in an id field read as the API's 18-character id
    "pipedrive": 6,
}
