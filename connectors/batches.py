"""Batch plumbing the connectors share: splitting ids into API-sized chunks, and the
`NOT_FOUND` result a delete of a missing or already-deleted record gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from connectors.base import NOT_FOUND, PushResult

__all__ = ["chunks", "not_found"]

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def not_found(record_id: str, message: str | None) -> PushResult:
    """A delete of a record the CRM says is missing or already in its recycle bin."""
    return PushResult(record_id, False, message, NOT_FOUND)
