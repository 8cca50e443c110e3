"""How the report words its figures, the same in the terminal table and the HTML page:
percentages, amounts, the deals a converted figure leaves out, and how matched deals were
counted."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sync.health_model import AcrossFunnels, CopiesCounted
from sync.terminal import counted

__all__ = ["across_funnels", "amount", "copies_counted_lines", "no_rate", "share"]


def share(value: Decimal | str | None) -> str:
    """A rate (0..1 to 4 places, or its JSON string) as the percentage it is: "12.35%".
    Two decimals show the JSON's rate exactly. One decimal rounded it a second time: 10 of 81
    (12.3457%, 0.1235 in the JSON) showed as 12.4%."""
    return "n/a" if value is None else f"{(Decimal(value) * 100).quantize(Decimal('0.01'))}%"


def no_rate(unconverted: Mapping[str, int]) -> str:
    """The deals a converted figure leaves out, per currency without a rate: "GBP: 2 deals"."""
    return ", ".join(f"{code}: {counted(n, 'deal')}" for code, n in unconverted.items())


def amount(value: Decimal | str) -> str:
    """An amount for people, digits grouped: "14,899,089.90" (JSON and CSV keep 14899089.90).
    The page shows some sections from their JSON form, where amounts are strings. At least the
    cents, whatever digits the CRMs sent (Salesforce 85100.0, HubSpot "2800"); more decimals
    are shown as they are, never rounded."""
    try:
        text = f"{Decimal(value):,f}"
    except ArithmeticError:  # not a number: shown as it is
        return str(value)
    whole, _, cents = text.partition(".")
    if not whole[-1:].isdigit():  # NaN, Infinity
        return text
    return f"{whole}.{cents.ljust(2, '0')}"


def across_funnels(across: AcrossFunnels) -> str:
    """The matched deals whose copies follow different funnels, where they counted and the fix,
    as the table and the page say it ("" where there are none)."""
    if not across.deals:
        return ""
    where = ", ".join(f"{name}: {n}" for name, n in across.counted_in.items())
    text = f"{counted(across.deals, 'matched deal')}, counted in {where}"
    if across.by_stage_policy:
        text += f" ({across.by_stage_policy} by the stage policy: copies in several named funnels)"
    return f"{text}; to fix: {across.fix}"


def copies_counted_lines(counted: CopiesCounted) -> list[str]:
    """Per counted field, how many disagreeing matched deals its policy or config order
    decided, a change since the copies agreed, the value agreed where only copies left out of
    it differ, or the copy whose stage counts (the rule is in the JSON): the table's and the
    page's words. The agreed value is no change: a first `reconcile --dry-run`, which applies
    nothing, records it where the copies that differ are no push target (or cannot hold it)."""
    order = ", ".join(counted.order)
    lines = []
    for f in counted.fields:
        changed = f.by_change - f.by_agreed_value
        lines.append(
            f"{f.field}: {f.by_policy} by policy ({f.policy}), {f.by_order} by config order "
            f"({order})"
            + (f", {changed} by a change since the copies agreed" if changed else "")
            + (
                f", {f.by_agreed_value} at the value the other copies agree on (those that "
                "differ keep their own: no push target, unable to hold it, or an apply stopped "
                "before them)"
                if f.by_agreed_value
                else ""
            )
            + (f", {f.with_stage} with the stage's copy" if f.with_stage else "")
        )
    return lines
