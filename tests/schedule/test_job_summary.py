"""The one line a job's outcome is logged as (and `schedule --run-now` ends with)."""

from __future__ import annotations

from sync.jobs import JobOutcome


def test_a_report_that_breached_its_thresholds_says_so_first_not_ok() -> None:
    outcome = JobOutcome("weekly-health", "ok", None, 3, "thresholds breached: stale_share", 2.4)
    assert outcome.summary() == (
        "weekly-health: limits breached in 2.4s: thresholds breached: stale_share"
    )


def test_a_finished_run_says_its_status_and_run() -> None:
    outcome = JobOutcome("nightly-apply", "ok", "r1", 0, "3 changes applied", 1.25)
    assert outcome.summary() == "nightly-apply: ok in 1.2s (run r1): 3 changes applied"
