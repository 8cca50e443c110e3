"""The plan table's summary lines (`reconcile --format table`): the counts, and the estimated
write calls, wrap at the terminal's width between their items, never inside one."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from sync.plan_render import render_plan


def _plan(changes: int, conflicts: int, unmatched: int, duplicates: int) -> dict[str, Any]:
    return {
        "run_id": "r1",
        "summary": {"api_calls": {"salesforce": 3, "hubspot-emea": 12, "pipedrive": 1400}},
        "changes": [
            {
                "system": "hubspot",
                "id": str(i),
                "field": "amount",
                "from": "1",
                "to": "2",
                "reason": "changed in salesforce",
            }
            for i in range(changes)
        ],
        "creates": [],
        "conflicts": [
            {
                "field": "stage",
                "values": [{"system": "hubspot", "id": str(i), "value": "won"}],
                "reason": "changed in several systems",
            }
            for i in range(conflicts)
        ],
        "unmatched": [
            {"system": "hubspot", "id": str(i), "name": "Acme"} for i in range(unmatched)
        ],
        "ambiguous": [],
        "duplicates": [{"system": "hubspot", "ids": [str(i), f"{i}b"]} for i in range(duplicates)],
        "errors": [],
        "deleted": [],
        "held": [{"entity": "E1", "links": [], "changes": 1}],
    }


def _summary_lines(plan: dict[str, Any], width: int) -> list[str]:
    out = io.StringIO()
    render_plan(plan, {}, Console(file=out, width=width, force_terminal=False))
    lines = out.getvalue().splitlines()
    assert lines[0] == "Plan (run r1)", lines
    summary = []
    for line in lines[1:]:  # the summary's lines are indented; the sections' titles are not
        if not line.startswith("  "):
            break
        summary.append(line)
    return summary


def test_the_plan_summary_wraps_between_counts_at_80_columns() -> None:
    lines = _summary_lines(_plan(changes=1234, conflicts=789, unmatched=1011, duplicates=13), 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert all(line.startswith("  ") and not line.startswith("   ") for line in lines), lines
    counts = [line for line in lines if "estimated write calls" not in line]
    assert len(counts) > 1, lines  # it does wrap at 80 columns ...
    items = [item for line in counts for item in line.strip().rstrip(",").split(", ")]
    assert items == [  # ... and each line holds whole items, in order
        "1234 changes", "0 creates", "789 conflicts", "1011 unmatched", "0 ambiguous",
        "13 duplicates", "0 errors", "0 deleted", "1 held until their links are confirmed",
    ], lines  # fmt: skip
    [calls] = [line for line in lines if "estimated write calls" in line]
    assert calls == "  estimated write calls: hubspot-emea 12, pipedrive 1400, salesforce 3"


def test_the_plan_summary_is_one_line_where_it_fits_and_counts_one_in_the_singular() -> None:
    lines = _summary_lines(_plan(changes=2, conflicts=1, unmatched=0, duplicates=0), 200)
    assert lines[0] == (
        "  2 changes, 0 creates, 1 conflict, 0 unmatched, 0 ambiguous, 0 duplicates, "
        "0 errors, 0 deleted, 1 held until their links are confirmed"
    )


def test_changes_that_empty_a_field_are_counted_in_the_summary_and_their_section_title() -> None:
    """A migration's first plan, under `priority: [pipedrive, ...]`, emptied 75 Salesforce
    amounts where Pipedrive held none (its 0): among 375 changes, nothing set them apart."""

    def change(i: int, field: str, to: str | None) -> dict[str, Any]:
        return {
            "system": "salesforce",
            "id": f"006{i}",
            "field": field,
            "from": "100" if field == "amount" else "USD",
            "to": to,
            "reason": "first sync: priority: pipedrive",
        }

    plan = _plan(changes=0, conflicts=0, unmatched=0, duplicates=0)
    plan["changes"] = [
        change(1, "amount", None),
        change(2, "amount", None),
        change(3, "amount", "250"),
        change(1, "currency", None),  # goes with its amount: the field keeps its code
        change(2, "currency", None),
    ]
    out = io.StringIO()
    render_plan(plan, {}, Console(file=out, width=200, force_terminal=False))
    lines = [line.rstrip() for line in out.getvalue().splitlines()]

    assert "  values emptied: salesforce amount 2" in lines
    assert "salesforce: amount (3, 2 of them empty it)" in lines
    assert "salesforce: currency (2)" in lines
