"""The apply report prints what the CRMs said as written: their reasons are data, not markup."""

from __future__ import annotations

import pytest

from sync.apply_report import ApplyReport, ChangeResult, Outcome, render_apply_report
from sync.commands.apply import ApplyIncomplete, raise_if_failed


def test_a_crm_reason_that_looks_like_markup_is_printed_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per row
    reason = "INVALID_FIELD: value [/] for [b]Amount[/b] is not allowed"
    failed = ChangeResult("c1", "salesforce", "006A", "amount", Outcome.FAILED, reason)
    render_apply_report(ApplyReport("run-1", "plan-1", (failed,), {}), "table")
    assert reason in capsys.readouterr().out


def test_an_apply_with_nothing_to_write_says_so_instead_of_an_empty_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render_apply_report(ApplyReport("run-1", "plan-1", (), {}), "table")
    assert capsys.readouterr().out == "apply run-1 (plan plan-1): nothing to write\n"


def test_a_failed_create_is_named_by_its_entity_in_the_error_line() -> None:
    create = ChangeResult(
        "c1", "hubspot", None, None, Outcome.FAILED, "no hubspot user with email a@b.c", "E1"
    )
    update = ChangeResult("c2", "hubspot", "91", "amount", Outcome.FAILED, "read-only")
    with pytest.raises(ApplyIncomplete) as refused:
        raise_if_failed(ApplyReport("run-1", "plan-1", (create, update), {}))
    assert "(e.g. hubspot entity E1 create: no hubspot user with email a@b.c)" in str(refused.value)
    assert "None" not in str(refused.value)
    assert update.line() == "hubspot 91 amount: read-only"


def test_dead_lettered_changes_are_said_to_wait_for_a_release_not_the_next_run() -> None:
    dead = ChangeResult("c1", "hubspot", "91", "amount", Outcome.DEAD, "dead-lettered: no")
    refused = ChangeResult("c2", "hubspot", "92", "amount", Outcome.FAILED, "read-only")
    release = "`crmsync dead-letters retry` releases them once the cause is fixed in the CRM"
    for results, ending in (
        ((refused,), "; they are retried on the next run"),
        ((dead,), f"; they are dead-lettered, not sent again: {release}"),
        ((dead, refused), f"; 1 of them dead-lettered, not sent again ({release}); the others"),
    ):
        with pytest.raises(ApplyIncomplete) as failed:
            raise_if_failed(ApplyReport("run-1", "plan-1", results, {}))
        assert ending in str(failed.value), failed.value


def test_each_instance_is_named_whole_in_the_apply_table_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log or a pipe gets 80 columns: the eight outcome columns must not cut `salesforce`
    to `salesfo…`, the one cell that says which CRM a row is about."""
    monkeypatch.setenv("COLUMNS", "80")
    results = tuple(
        ChangeResult(f"c{i}", system, str(i), "amount", Outcome.APPLIED)
        for i, system in enumerate(("hubspot", "pipedrive", "salesforce"))
    )
    render_apply_report(ApplyReport.of("run-1", "plan-1", results), "table")
    out = capsys.readouterr().out
    assert all(f"│ {name} " in out for name in ("hubspot", "pipedrive", "salesforce")), out
