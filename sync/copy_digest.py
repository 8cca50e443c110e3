"""What a copy crmsync creates carries, as a digest: a refused copy's dead letter is of it.

A dead letter of a copy (`push.create_missing`) stands for one copy: crmsync sends it no more
until a person releases it. Where the plan now copies other content (its deal corrected, its
account renamed), the letter stands for nothing the plan holds: it is forgotten, and the new
copy is tried afresh (sync/stale_letters.py). The digest is journaled with each create
(`sync.apply_creates`), so the comparison needs no copy of the content in the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from connectors.account_names import name_key
from sync.plan import encode_value

__all__ = ["create_digest", "values_digest"]


def create_digest(create: Mapping[str, Any]) -> str:
    """What a plan create's copy carries, as a short digest: its source and values, where it
    lands (pipeline and native stage, as the plan names them) and the account it goes under:
    the organization it is filed under in Pipedrive (an account's name, or `create_org_id`),
    the Account or company of its account's name in Salesforce or HubSpot. A refused copy is
    of that content (sync/stale_letters.py): a copy refused because its organization could
    not be made, or by an org whose validation rule requires an Account, is another copy once
    its account is corrected. Alike for a create in memory and one read back from a plan file
    (whose values decode to the same plain JSON). Not `decided`: the values hold what the
    policies decided already, and `decided` only says that the members disagree, which
    crmsync's own writes may settle while the copy stays the same. Nor the labels of the
    landing, nor an account's `reason`: words for people, which the CRM never gets. A
    Salesforce or HubSpot copy under no account by name adds nothing, so the letters of such
    copies journaled before creates named an account keep their digest; one by name adds its
    name as compared there (`name_key`: a name differing in case alone finds the same)."""
    target, org = create.get("target") or {}, create.get("organization") or {}
    content = {
        **_copied(create),
        "lands": [target.get("pipeline"), target.get("native_stage")] if target else None,
        "filed": [org.get("by"), org.get("name"), org.get("id")] if org else None,
    }
    account = create.get("account") or {}
    if account.get("by") == "account" and account.get("name"):
        content["account"] = name_key(str(account["name"]))
    return _digest(content)


def values_digest(create: Mapping[str, Any]) -> str:
    """`create_digest` as crmsync journaled it before it held the landing and organization: of
    the source and values alone; a copy refused then is compared by it (sync/stale_letters.py)."""
    return _digest(_copied(create))


def _copied(create: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": create["source"],
        "values": {k: encode_value(v) for k, v in sorted(create["values"].items())},
    }


def _digest(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
