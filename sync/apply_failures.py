"""The dead-letter bookkeeping of one target instance within one apply, shared by its field
changes (sync/apply.py) and its creates (sync/apply_creates.py): which records are dead (not
sent), a refusal counted (dead once it is the `push.max_attempts`th), a write that went through
cleared. Stored in the store's dead-letter list (sync/store_failures.py), keyed (instance,
record, field); a whole record's (a create's) field is None.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.apply_report import Outcome
from sync.store import Store
from sync.store_records import FailureRecord

__all__ = ["Failures"]


@dataclass
class Failures:
    """The failures of `instance`, as read when its writes began and as this apply counts
    them."""

    store: Store
    instance: str
    max_attempts: int
    known: dict[tuple[str, str], FailureRecord]

    @classmethod
    def of(cls, store: Store, instance: str, max_attempts: int) -> Failures:
        known = {(f.deal_id, f.field): f for f in store.failures.records(instance=instance)}
        return cls(store, instance, max_attempts, known)

    def dead(self, record_id: str, field: str | None = None) -> str | None:
        """Why the write of `field` (None: the whole record) is not sent: its dead letter.
        None: it may be sent."""
        failure = self.known.get((record_id, field or ""))
        if failure is None or not failure.dead:
            return None
        return _dead(failure.attempts, failure.reason)

    def fail(self, record_id: str, field: str | None, reason: str) -> tuple[Outcome, str]:
        """Count a refusal: (FAILED, the reason), or (DEAD, why) once it is the last allowed."""
        record = self.store.failures.record(
            self.instance, record_id, field, reason, max_attempts=self.max_attempts
        )
        self.known[(record_id, field or "")] = record
        if record.dead:
            return Outcome.DEAD, _dead(record.attempts, reason)
        return Outcome.FAILED, reason

    def clear(self, record_id: str, field: str | None = None) -> None:
        """The write went through: its failure, if any, is forgotten."""
        if self.known.pop((record_id, field or ""), None) is not None:
            self.store.failures.clear(self.instance, record_id, field)


def _dead(attempts: int, reason: str) -> str:
    return f"dead-lettered after {attempts} attempts: {reason}"
