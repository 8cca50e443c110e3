"""Figures a VP deck takes from `crmsync report`, end to end: Pipedrive deals served by the
sandbox, pulled through the official client library, every figure computed by hand here.

Pipeline 1 ("Sales") gains a stage the config's stage map lacks, 10 "On Hold":
- deals 1-3 won: created 01-01, won 01-11 (10 days); created 02-01, won 02-21 (20 days);
  created 03-01, won 05-01 (61 days). Median 20.0, mean 91 / 3 = 30.3, p90 61.0;
- deal 4 open in stage 1 (Lead In -> lead);
- deal 5 open in stage 10 "On Hold", 2500 USD at probability 0.2 (500 weighted), and deal 6
  open without an amount in stage 11, named with markup: counted in the funnel's 6 deals, in
  no stage row of the funnel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures import pipedrive_only

from tests.sandbox_env import make_env, run_crmsync

WON = [  # (id, add_time, won_time)
    (1, "2024-01-01 00:00:00", "2024-01-11 00:00:00"),
    (2, "2024-02-01 00:00:00", "2024-02-21 00:00:00"),
    (3, "2024-03-01 00:00:00", "2024-05-01 00:00:00"),
]
ON_HOLD = 10
HOSTILE = 11
HOSTILE_NAME = "Parked <b>x</b> [red]y[/red]"


def _deal(deal_id: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict(id=deal_id, title=f"Deal {deal_id}", value=1000, currency="USD")
    record.update(pipeline_id=1, probability=None, expected_close_date=None, stage_change_time=None)
    record.update(won_time=None, lost_time=None, first_won_time=None, close_time=None)
    record.update(fields)
    return record


def _dataset() -> dict[str, Any]:
    deals = [
        _deal(i, status="won", stage_id=5, add_time=added, won_time=won, update_time=won)
        for i, added, won in WON
    ]
    opened = dict(status="open", add_time="2024-06-01 00:00:00", update_time="2024-06-01 00:00:00")
    deals += [
        _deal(4, stage_id=1, **opened),
        _deal(5, stage_id=ON_HOLD, **{**opened, "value": 2500, "probability": 20}),
        _deal(6, stage_id=HOSTILE, **{**opened, "value": None}),
    ]
    dataset = pipedrive_only(*deals)
    stages = dataset["pipedrive"]["stages"]
    for order, (stage_id, name) in enumerate(((ON_HOLD, "On Hold"), (HOSTILE, HOSTILE_NAME))):
        stages.append({**stages[0], "id": stage_id, "name": name, "order_nr": 6 + order})
    return dataset


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("deck")
    env = make_env(folder, _dataset(), f"sqlite:///{folder}/store.db", systems=("pipedrive",))
    document = yaml.safe_load(env.config.read_text())
    stages = document["systems"]["pipedrive"]["stage_map"]["1"]
    for added in (ON_HOLD, HOSTILE):  # stages added in Pipedrive after `init` wrote the map
        del stages[str(added)]
    env.config.write_text(yaml.safe_dump(document))
    try:
        pulled = run_crmsync("pull", "--config", str(env.config), "--format", "table")
        assert pulled.returncode == 0, pulled.stderr
        yield env.config
    finally:
        env.sandbox.stop()


def _report(config: Path, form: str) -> str:
    """The report as `form`, on a terminal wide enough for the KPIs by instance side by side."""
    done = run_crmsync("report", "--config", str(config), "--format", form, columns=220)
    assert done.returncode in (0, 3), done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def report(config: Path) -> dict[str, Any]:
    return dict(json.loads(_report(config, "json")))


def test_sales_cycle_json_adds_the_mean_next_to_the_median(report: dict[str, Any]) -> None:
    own = report["systems"]["pipedrive"]["funnels"]["default"]["sales_cycle"]
    consolidated = report["funnels"]["default"]["sales_cycle"]
    for cycle in (own, consolidated):
        assert (cycle["deals"], cycle["median_days"], cycle["p90_days"]) == (3, "20.0", "61.0")
        assert cycle["mean_days"] == "30.3"


def test_sales_cycle_table_and_html_show_the_mean_next_to_the_median(config: Path) -> None:
    table = _report(config, "table")
    assert "median 20.0 / mean 30.3 / p90 61.0" in table  # the consolidated KPI table
    assert "sales cycle (median / mean days, method)" in table
    assert len(re.findall(r"20\.0 / 30\.3 \(current_stage_only\)", table)) == 2  # by instance
    page = _report(config, "html")
    assert "median 20.0, mean 30.3, p90 61.0" in page
    # the page says how in plain words (the table and the JSON keep current_stage_only)
    assert page.count("20.0 / 30.3 (from the current stage only, for deals without stage") == 2


def _unmapped(funnel: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (u["system"], u["pipeline"], u["native_stage"], u["name"], u["count"], u["amount"],
         u["weighted"], u["without_amount"])
        for u in funnel["unmapped_stages"]
    ]  # fmt: skip


def test_funnel_stage_rows_and_unmapped_stages_add_up_to_the_deals_it_counts(
    report: dict[str, Any],
) -> None:
    own = report["systems"]["pipedrive"]["funnels"]["default"]
    consolidated = report["funnels"]["default"]
    for funnel in (own, consolidated):
        rows = sum(s["count"] for s in funnel["stages"])
        unmapped = sum(u["count"] for u in funnel["unmapped_stages"])
        assert (funnel["deals"], rows, unmapped, funnel["unmapped_stage"]) == (6, 4, 2, 2)
        assert _unmapped(funnel) == [
            ("pipedrive", "1", "10", "Sales / On Hold", 1, {"USD": "2500"}, {"USD": "500.00"}, 0),
            ("pipedrive", "1", "11", f"Sales / {HOSTILE_NAME}", 1, {}, {}, 1),
        ]


def test_table_and_html_stage_tables_end_with_the_deals_in_unmapped_stages(config: Path) -> None:
    table = _report(config, "table")
    assert "pipedrive — funnel default (6 deals)" in table
    rows = {
        cells[0]: cells[1:]
        for line in table.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 5
    }
    assert rows["in an unmapped stage: Sales / On Hold"] == ["1", "2,500.00 USD", "500.00 USD", "0"]
    assert rows["in an unmapped stage: Sales / On Hold (pipedrive)"][0] == "1"  # consolidated
    assert rows[f"in an unmapped stage: Sales / {HOSTILE_NAME}"] == ["1", "-", "-", "1"]
    page = _report(config, "html")
    assert (
        '<tr class="unmapped"><td>in an unmapped stage: Sales / On Hold</td><td class="num">1</td>'
        in page
    )
    assert "in an unmapped stage: Sales / Parked &lt;b&gt;x&lt;/b&gt; [red]y[/red]</td>" in page
    assert "<b>x</b>" not in page


def test_data_quality_names_unmapped_stages_as_the_crm_does_and_json_keeps_their_ids(
    report: dict[str, Any], config: Path
) -> None:
    quality = report["data_quality"]["instances"]["pipedrive"]
    assert quality["unmapped_stages"] == {"1/10": 1, "1/11": 1}
    names = {"1/10": "Sales / On Hold", "1/11": f"Sales / {HOSTILE_NAME}"}
    assert quality["unmapped_stage_names"] == names
    table = _report(config, "table")
    section = table[table.index("Data quality") : table.index("Cross-system")]
    assert "Sales / On Hold: 1" in section and "1/10" not in section
    page = _report(config, "html")
    assert "Sales / On Hold: 1<br>Sales / Parked &lt;b&gt;x&lt;/b&gt; [red]y[/red]: 1<br>" in page
    assert "1/10: 1" not in page
