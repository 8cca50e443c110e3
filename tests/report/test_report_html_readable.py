"""The HTML page as a sales VP reads it: the gist first, plain words, stage labels, no
explanations in the way of the figures (the JSON, CSV and table keep their own forms)."""

from __future__ import annotations

import re

from fixtures import inputs
from markupsafe import escape

from sync.health import build_health
from sync.report_html import copies_counted_lines
from sync.report_render import to_html


def _details(page: str, summary: str) -> str:
    match = re.search(
        rf"<details>\s*<summary>{re.escape(summary)}</summary>(.*?)</details>", page, re.S
    )
    assert match, f"no collapsed details {summary!r}"
    return match.group(1)


def test_copy_counting_rule_is_folded_away_while_its_figures_stay_in_view():
    report = build_health(inputs())
    page = to_html(report)
    folded = _details(page, "how matched deals are counted")
    assert str(escape(report.consolidated.copies_counted.rule)) in folded
    outside = page.replace(folded, "")
    assert str(escape(report.consolidated.copies_counted.rule)) not in outside
    for line in copies_counted_lines(report.consolidated.copies_counted):
        assert str(escape(line)) in outside
