"""`crmsync init` and `crmsync check` see an org's Opportunity record types as pipelines: init
proposes a stage map per record type, check reports the coverage of each and names a stage map
keyed by a record type the org does not have, as for any other CRM's unknown pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from connectors.sandbox.launcher import start_sandbox
from sync.cli import main
from sync.sandbox_config import write_sandbox_config
from tests.salesforce.conftest import FAST
from tests.salesforce.sf_record_types import RENEWAL_STAGES, record_type_org


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with start_sandbox(
        record_type_org(), systems=["salesforce"], faults=FAST, workdir=tmp_path
    ) as running:
        path = tmp_path / "crmsync.yaml"
        write_sandbox_config(running.ready_info(), path)  # stage maps as `crmsync init` proposes
        yield path


def _check(config: Path) -> tuple[int, list[str]]:
    out = CliRunner().invoke(main, ["check", "--config", str(config)])
    return out.exit_code, out.stdout.splitlines()


def test_init_proposes_a_stage_map_for_each_record_type(config: Path) -> None:
    stage_map = yaml.safe_load(config.read_text())["systems"]["salesforce"]["stage_map"]

    assert list(stage_map) == ["default", "New_Business", "Renewal"]
    assert set(stage_map["Renewal"]) == set(RENEWAL_STAGES)


def test_check_reports_coverage_per_record_type(config: Path) -> None:
    code, lines = _check(config)

    assert code == 0, lines
    assert "ok: salesforce: connected, deals readable, 3 pipeline(s)" in "\n".join(lines)
    coverage = [line.strip() for line in lines if line.strip().startswith("salesforce pipeline")]
    assert [line.split(" -> ")[0] for line in coverage] == [
        "salesforce pipeline default",
        "salesforce pipeline New_Business",
        "salesforce pipeline Renewal",
    ]


def test_a_stage_map_of_a_record_type_the_org_lacks_is_a_config_problem(config: Path) -> None:
    document = yaml.safe_load(config.read_text())
    stage_map = document["systems"]["salesforce"]["stage_map"]
    stage_map["Renewal"] = {
        "Renewal Due": "lead", "Renewal Committed": "negotiation",
        "Closed Won": "won", "Closed Lost": "lost",
    }  # fmt: skip
    stage_map["Renewals"] = {"Renewal Due": "lead"}  # a typo of Renewal
    config.write_text(yaml.safe_dump(document, sort_keys=False))

    code, lines = _check(config)

    assert code == 2
    assert [line for line in lines if line.startswith("problem:")] == [
        "problem: salesforce: systems.salesforce.stage_map.Renewals.Renewal Due: no such stage "
        "in the CRM (renamed or removed?)"
    ]
