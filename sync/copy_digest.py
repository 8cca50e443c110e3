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

from sync.plan import encode_value

__all__ = ["create_digest", "values_digest"]


def create_digest(create: Mapping[str, Any]) -> str:
    """What a plan create's copy carries, as a short digest: its source and values, where it
    lands (pipeline and native stage, as the plan names them) and the organization it is filed
    under (Pipedrive: an account's name, or `create_org_id`). A refused copy is of that content
    (sync/stale_letters.py): a copy refused because its organization could not be made is
    another copy once its account is corrected. Alike for a create in memory and one read back
    from a plan file (whose values decode to the same plain JSON). Not `decided`: the values
    hold what the policies decided already, and `decided` only says that the members disagree,
    which crmsync's own writes may settle while the copy stays the same. Nor the labels of the
    landing, nor an organization's `reason`: words for people, which the CRM never gets. Nor a
    Salesforce or HubSpot copy's `account`: crmsync makes no Account nor company, so no copy is
    refused for one it could not make (as a Pipedrive copy is for its organization), and the
    letters of copies journaled before creates named one would all differ from the plan at the
    first reconcile after an upgrade, each sent again unasked."""
    target, org = create.get("target") or {}, create.get("organization") or {}
    return _digest(
        {
            **_copied(create),
            "lands": [target.get("pipeline"), target.get("native_stage")] if target else None,
            "filed": [org.get("by"), org.get("name"), org.get("id")] if org else None,
        }
    )


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
