"""Injection: CRM text never becomes code. A deal name with quotes and backslashes round-trips
through the Salesforce connector and the sandbox's SOQL (values are quoted, never spliced);
CSV cells that a spreadsheet would run as a formula are neutralised."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.format import format_soql

from connectors.base import NativeUpdate
from sync.report_render import to_csv
from tests.sandbox_env import deal_records, make_env

HOSTILE_NAMES = [
    "O'Brien \\ Co' OR Name != '",
    "\\' OR Id != '' --",
    "x\\\\' AND IsDeleted = false",
    '50% off_Q3\nline two\r\t"quoted"',
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_quoted_deal_name_round_trips_through_soql(
    name: str, dataset: dict[str, Any], tmp_path: Path
) -> None:
    env = make_env(tmp_path, dataset, f"sqlite:///{tmp_path / 's.db'}", systems=["salesforce"])
    try:
        target = str(deal_records(env.dump())["salesforce"][0]["Id"])
        with env.runtime() as rt:
            connector: Any = rt.connectors["salesforce"]
            results = connector.update_deals([NativeUpdate(target, {"Name": name})])
            assert all(r.ok for r in results), results
            soql = format_soql("SELECT Id, Name FROM Opportunity WHERE Name = {}", name)
            found = list(connector._query("injection", soql))
        assert [(r["Id"], r["Name"]) for r in found] == [(target, name)]
    finally:
        env.sandbox.stop()


def test_csv_cells_that_start_a_formula_are_neutralised() -> None:
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "ok"]
    out = io.StringIO()
    to_csv([{"name": value} for value in hostile], out)
    cells = [row[0] for row in csv.reader(io.StringIO(out.getvalue()))][1:]
    for value, cell in zip(hostile, cells, strict=True):
        if value == "ok":
            assert cell == "ok"
        else:
            assert cell == "'" + value, (value, cell)


def test_csv_cells_that_start_a_formula_after_blanks_are_neutralised() -> None:
    hostile = [' =HYPERLINK("http://x")', "\n+1+1", "\u00a0-2+3", "  @SUM(A1)", " ok", "a =1"]
    out = io.StringIO()
    to_csv([{"name": value} for value in hostile], out)
    cells = [row[0] for row in csv.reader(io.StringIO(out.getvalue()))][1:]
    assert cells == ["'" + v for v in hostile[:4]] + hostile[4:]
