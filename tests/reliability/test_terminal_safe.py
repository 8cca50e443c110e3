"""CRM text printed to a terminal is shown, never interpreted (escape codes, bidi overrides)."""

from __future__ import annotations

import pytest

from sync.errors import terminal_safe


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
