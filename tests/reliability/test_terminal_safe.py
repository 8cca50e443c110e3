"""CRM text printed to a terminal is shown, never interpreted (escape codes, bidi overrides)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console

from sync.apply_report import ApplyReport, ChangeResult, Outcome, render_apply_report
from sync.errors import terminal_safe
from sync.plan_render import render_plan


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Acme GmbH — Renewal 2026 · €", "Acme GmbH — Renewal 2026 · €"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("id\u202egnp.exe", "id\\u202egnp.exe"),
        ("a\nb\rc\x00", "a\\x0ab\\x0dc\\x00"),
    ],
)
def test_control_characters_are_spelled_out_and_everything_else_kept(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


HOSTILE = "[/oops] [link=https://evil.example]click[/link] \x1b[2Jwiped"
SHOWN = "[/oops] [link=https://evil.example]click[/link] \\x1b[2Jwiped"


def _printed(draw: Callable[[Console], None]) -> str:
    out = io.StringIO()
    draw(Console(file=out, width=400, force_terminal=False))
    return out.getvalue()


def test_a_plan_table_shows_crm_text_as_written_not_as_markup_or_escape_codes() -> None:
    """A deal named like console markup crashed `reconcile --format table` (MarkupError)."""
    plan = {
        "run_id": "r1",
        "summary": {},
        "changes": [
            {"system": "sf", "id": "1", "field": "name", "from": "a", "to": HOSTILE, "reason": "x"}
        ],
        "creates": [],
        "conflicts": [
            {
                "field": "name",
                "values": [{"system": "sf", "id": "1", "value": HOSTILE}],
                "reason": "conflict",
            }
        ],
        "unmatched": [{"system": "hs", "id": "2", "name": HOSTILE}],
        "ambiguous": [],
        "duplicates": [],
        "errors": [{"system": "pd", "id": "3", "field": "amount", "reason": HOSTILE}],
    }
    text = _printed(lambda console: render_plan(plan, {}, console))
    assert text.count(SHOWN) == 4, text
    assert "\x1b" not in text


def test_an_apply_report_shows_a_crm_reason_as_written() -> None:
    failed = ChangeResult("c1", "sf", "1", "name", Outcome.FAILED, reason=HOSTILE)
    report = ApplyReport("r1", "p1", (failed,), {})
    text = _printed(lambda console: render_apply_report(report, "table", console))
    assert SHOWN in text and "\x1b" not in text
