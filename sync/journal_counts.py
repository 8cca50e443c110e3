"""A journal's rows counted as the outcomes `crmsync runs` shows for a run that has no report
of its own: one stopped by Ctrl-C, or killed outright and found dead by the next run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sync.store_records import JournalRecord, RunKind

__all__ = ["journal_totals", "killed_run_counts"]

# A journal row's state, as the outcome an apply cut short had reached for its change.
_CUT_SHORT = {
    "done": "applied",
    "failed": "failed",
    "skipped": "skipped",
    "sent": "in_doubt",  # sent, no answer: the next apply settles it
    "intended": "not_sent",
}


def killed_run_counts(kind: RunKind, records: Sequence[JournalRecord]) -> dict[str, Any]:
    """The counts `crmsync runs` shows for a run killed outright (kill -9) that journaled
    writes, recorded by the next run: as for one stopped by Ctrl-C, a reconcile's under
    `applied`, an apply's or a rollback's under `totals`. Nothing journaled: none. A kill can
    land between sending a batch and recording its answer, so what it journaled as intended
    is in doubt, not unsent: the copies of such a batch were found in the CRM."""
    if not records:
        return {}
    totals = journal_totals(records)
    totals["in_doubt"] += totals.pop("not_sent")
    return {"applied" if kind is RunKind.RECONCILE else "totals": totals}


def journal_totals(records: Iterable[JournalRecord]) -> dict[str, int]:
    """What an apply stopped by Ctrl-C (it has no report) had got through, by its journal:
    the counts `crmsync runs` shows for it."""
    found = Counter(_CUT_SHORT[r.state.value] for r in records)
    return {outcome: found[outcome] for outcome in _CUT_SHORT.values()}
