"""The health report of two product lines: each funnel's figures speak its own stages. The
overall conversion of the renewal funnel runs from renewal_due to renewed, not from the
default funnel's lead to won, and the page shows it as a percentage like every other rate."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from sync.cli import main
from sync.report_words import share
from tests.integration.conftest import World
from tests.integration.native_stages import cli_json
from tests.integration.product_lines import renewals_on_their_own_funnel


def _report(world: World, fmt: str, out: Path) -> None:
    args = ["report", "--config", str(world.config), "--format", fmt, "--out", str(out)]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, args)
    assert result.exit_code in (0, 3), result.output  # 3: the sample breaches stale_share


def test_each_funnels_overall_conversion_is_named_by_its_own_first_and_won_stages(
    small_world: World, tmp_path: Path
) -> None:
    renewals_on_their_own_funnel(small_world)
    cli_json(small_world, "reconcile", "--yes")
    _report(small_world, "json", tmp_path / "report.json")
    _report(small_world, "table", tmp_path / "report.txt")
    _report(small_world, "html", tmp_path / "report.html")

    funnels = json.loads((tmp_path / "report.json").read_text())["funnels"]
    table = (tmp_path / "report.txt").read_text()
    page = (tmp_path / "report.html").read_text()
    renewal_kpis = table[table.index("KPIs — funnel renewal") :]
    assert "renewal_due -> renewed" in renewal_kpis
    assert "lead -> won" not in renewal_kpis.split("KPIs by instance")[0]
    default_kpis = table[table.index("KPIs — funnel default") :]
    assert "lead -> won" in default_kpis.split("KPIs — funnel renewal")[0]
    for name, first, won in (("default", "lead", "won"), ("renewal", "renewal_due", "renewed")):
        rate = share(funnels[name]["conversion"]["lead_to_won"])
        assert rate.endswith("%")
        assert f"<td>{first} → {won}</td>" in page, name
        assert f'<td class="num">{rate}</td>' in page, (name, rate)


def test_each_funnels_conversion_column_by_instance_is_named_by_its_own_stages(
    small_world: World, tmp_path: Path
) -> None:
    renewals_on_their_own_funnel(small_world)
    cli_json(small_world, "reconcile", "--yes")
    _report(small_world, "table", tmp_path / "report.txt")
    _report(small_world, "html", tmp_path / "report.html")

    table = (tmp_path / "report.txt").read_text()
    by_instance = table[table.index("KPIs by instance") : table.index("matched copies merged")]
    default_part = by_instance[: by_instance.index("funnel renewal")]
    renewal_part = by_instance[by_instance.index("funnel renewal") :]
    assert "lead -> won" in default_part
    assert "renewal_due -> renewed" in renewal_part and "lead -> won" not in renewal_part
    page = (tmp_path / "report.html").read_text()
    comparison = page[page.index('<table id="kpis-by-instance">') :]
    comparison = comparison[: comparison.index("</table>")]
    headers = re.findall(r"<th>([^<]*→[^<]*)</th>", comparison)
    assert headers == ["lead → won", "renewal_due → renewed"], headers
    renewal_rows = comparison[comparison.index("<th>renewal_due → renewed</th>") :]
    assert "<td>renewal</td>" in renewal_rows and "<td>default</td>" not in renewal_rows
