"""The plan table's Unmatched section says what the apply does with each deal found in one CRM
only. A migration's dry run read "837 creates, 1145 unmatched": the copies, the copies that
cannot be made (errors) and the deals held back (ambiguous, duplicates) are listed apart, and
nothing said which unmatched deal would be copied and which would stay."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from sync.plan_render import render_plan
from sync.unmatched_fate import CopyRules


def _plan() -> dict[str, Any]:
    def unmatched(system: str, deal_id: str) -> dict[str, str]:
        return {"system": system, "id": deal_id, "name": f"Deal {deal_id}"}

    return {
        "run_id": "r1",
        "summary": {"creates_by_system": {"salesforce": 1}},
        "changes": [],
        "creates": [
            {
                "system": "salesforce",
                "entity": "E1",
                "source": {"system": "pipedrive", "id": "11"},
                "values": {"name": "Deal 11", "stage": "lead"},
            }
        ],
        "conflicts": [],
        "unmatched": [
            unmatched("pipedrive", "11"),
            unmatched("pipedrive", "12"),
            unmatched("pipedrive", "13"),
            unmatched("pipedrive", "14"),
            unmatched("pipedrive", "16"),
            unmatched("salesforce", "0065g0000000001AAA"),
        ],
        "ambiguous": [
            {"system": "hubspot", "id": "9", "instance": "pipedrive", "candidates": ["13", "99"]}
        ],
        "duplicates": [{"system": "pipedrive", "ids": ["14", "15"], "reason": "same key"}],
        "errors": [
            {
                "system": "pipedrive",
                "id": "12",
                "field": "owner_email",
                "reason": "no copy can be made in salesforce: no salesforce user with email a@b.c",
            }
        ],
        "deleted": [
            {
                "entity": "E2",
                "deleted": [{"system": "hubspot", "id": "77"}],
                "live": [{"system": "pipedrive", "id": "16"}],
                "propagate": False,
                "reason": "linked hubspot deal 77 is deleted there (or not visible)",
            }
        ],
    }


def _unmatched_section(plan: dict[str, Any]) -> list[str]:
    out = io.StringIO()
    render_plan(plan, {}, Console(file=out, width=200, force_terminal=False))
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Unmatched"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("└"))
    return lines[start:end]


def test_each_unmatched_deal_says_whether_the_apply_copies_it_and_the_title_counts_them() -> None:
    lines = _unmatched_section(_plan())

    assert lines[0].rstrip() == (
        "Unmatched (in one system only) (6: 1 copied, 1 cannot be copied, 3 held back, "
        "1 not copied)"
    )
    assert "on apply" in lines[2]
    rows = {line.split("│")[2].strip(): line.split("│")[4].strip() for line in lines[4:]}
    assert rows == {
        "11": "copied to salesforce",
        "12": "no copy in salesforce: see Errors",
        "13": "not copied while ambiguous: see Ambiguous",
        "14": "not copied while duplicated: see Duplicates",
        "16": "not copied while a deal it is linked to is deleted: see Deleted",
        "0065g0000000001AAA": (
            "not copied: push.create_missing is off, push.create_from leaves its CRM out, "
            "or no target lacks it"
        ),
    }


def test_an_unmatched_deal_whose_copy_is_a_dead_letter_is_not_said_to_be_copied() -> None:
    out = io.StringIO()
    dead = {("salesforce", "E1", "")}  # the copy of pipedrive 11, refused until released
    render_plan(_plan(), {}, Console(file=out, width=200, force_terminal=False), dead)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Unmatched"))

    assert "(6: 2 cannot be copied, 3 held back, 1 not copied)" in lines[start]
    [row] = [line for line in lines[start:] if "│ 11 " in line]
    assert "copy dead-lettered in salesforce: not sent until released" in row


def test_an_unmatched_deal_no_rule_keeps_uncopied_is_said_to_be_archived() -> None:
    """create_missing on, Salesforce's deals copied, Pipedrive a target: only an archived deal
    is the source of no copy (`_create_sources`), and under create_from a copy crmsync made."""
    out = io.StringIO()
    rules = CopyRules(True, None, ("pipedrive",), ("salesforce", "pipedrive"))
    render_plan(_plan(), {}, Console(file=out, width=200, force_terminal=False), rules=rules)
    [row] = [line for line in out.getvalue().splitlines() if "0065g0000000001AAA" in line]
    assert "not copied: it is archived" in row
