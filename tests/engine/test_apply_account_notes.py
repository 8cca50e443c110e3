"""The notes of copies created otherwise than under the account of their name are kept with
the apply's run (README "What the dry run finds of the accounts"): bounded, the rest counted."""

from __future__ import annotations

from sync.apply_report import NOTES_KEPT, ApplyReport, ChangeResult, Outcome


def _copy(n: int, note: str | None, outcome: Outcome = Outcome.APPLIED) -> ChangeResult:
    return ChangeResult(f"c{n}", "salesforce", f"006{n:06d}", None, outcome, note, f"E{n}")


def test_a_run_keeps_the_notes_of_created_copies_only() -> None:
    report = ApplyReport.of(
        "r",
        "p",
        [
            _copy(1, "no Account is named 'Krusty': created without an Account"),
            _copy(2, None),
            _copy(3, "INVALID_FIELD", Outcome.FAILED),
            ChangeResult("u4", "salesforce", "0064", "amount", Outcome.APPLIED, "moved"),
        ],
    )
    assert report.account_notes() == {
        "account_notes": [
            {
                "system": "salesforce",
                "id": "006000001",
                "entity": "E1",
                "note": "no Account is named 'Krusty': created without an Account",
            }
        ]
    }


def test_a_migration_of_many_noted_copies_keeps_the_first_and_counts_the_rest() -> None:
    report = ApplyReport.of("r", "p", [_copy(n, f"note {n}") for n in range(NOTES_KEPT + 7)])
    kept = report.account_notes()
    assert len(kept["account_notes"]) == NOTES_KEPT
    assert kept["account_notes_left_off"] == 7


def test_a_run_without_notes_adds_no_key() -> None:
    assert ApplyReport.of("r", "p", [_copy(1, None)]).account_notes() == {}
