"""A saved plan edited by hand (a plan an older crmsync wrote, one a person cut down) is only
applied with a checksum that matches its edit: tests that need one sign it as crmsync does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["signed"]


def signed(plan: dict[str, Any]) -> dict[str, Any]:
    """`plan` with the checksum of what it now holds: the documented signature, sha256 of the
    compact, key-sorted JSON without the checksum."""
    body = {k: v for k, v in plan.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**body, "checksum": hashlib.sha256(canonical.encode()).hexdigest()}
