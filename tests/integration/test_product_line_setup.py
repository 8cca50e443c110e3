"""`crmsync init` on a renewals pipeline whose funnel is the config's own: a native stage named
with a word of a funnel stage's key ("Quote Sent" for quoted, "Verbal Commit" for committed) is
proposed as that stage, and a deal moved to `quoted` is written in "Quote Sent", not in the
"Customer Contacted" before it."""

from __future__ import annotations

import re

import yaml
from click.testing import CliRunner

from sync.cli import main
from tests.integration.conftest import World
from tests.integration.product_lines import RENEWAL, renewals_on_their_own_funnel


def test_init_proposes_renewal_stages_named_like_the_funnels_own_keys(small_world: World) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["funnels"] = {"renewal": {"stages": RENEWAL}}
    for system, pipeline in (("hubspot", "renewals"), ("pipedrive", "2")):
        instance = document["systems"][system]
        instance["pipeline_funnels"] = {pipeline: "renewal"}
        del instance["stage_map"][pipeline]  # as before the renewals had a funnel of their own
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    out = CliRunner().invoke(main, ["init", "--config", str(small_world.config)])
    assert out.exit_code == 0, out.output

    systems = yaml.safe_load(small_world.config.read_text())["systems"]
    assert systems["hubspot"]["stage_map"]["renewals"] == {
        "75210931": "renewal_due",  # Renewal Due
        "75210932": "quoted",  # Customer Contacted: by its position
        "75210933": "quoted",  # Quote Sent
        "75210934": "committed",  # Verbal Commit
        "75210935": "renewed",
        "75210936": "churned",
    }
    assert systems["pipedrive"]["stage_map"]["2"] == {
        "6": "renewal_due",
        "7": "quoted",
        "8": "quoted",
        "9": "committed",
    }
    assert systems["hubspot"]["stage_write"]["renewals"] == {"quoted": "75210933"}
    assert systems["pipedrive"]["stage_write"]["2"] == {"quoted": "8"}
    text = small_world.config.read_text()
    assert re.search(r"'75210933': quoted +# review: name 'Quote Sent' contains 'quote'", text)


def _check_offline(world: World) -> tuple[int, str]:
    out = CliRunner().invoke(main, ["check", "--offline", "--config", str(world.config)])
    return out.exit_code, out.stderr


def test_a_renewal_stage_mapped_to_a_new_business_stage_is_one_line_naming_key_line_and_funnel(
    small_world: World,
) -> None:
    renewals_on_their_own_funnel(small_world)
    text = small_world.config.read_text()
    small_world.config.write_text(text.replace("'75210934': committed", "'75210934': negotiation"))
    line = next(
        n for n, t in enumerate(small_world.config.read_text().splitlines(), 1) if "75210934" in t
    )

    code, err = _check_offline(small_world)

    assert code == 2
    assert err.splitlines() == [
        f"crmsync: error: {small_world.config}:{line}: "
        "systems.hubspot.stage_map.renewals.75210934: unknown funnel stage 'negotiation' "
        "(expected one of renewal_due, quoted, committed, renewed, churned); 'negotiation' is a "
        "stage of funnel 'default', and pipeline renewals follows funnel 'renewal' "
        "(systems.hubspot.pipeline_funnels.renewals)"
    ]


def test_renewal_stages_mapped_without_the_pipelines_funnel_name_pipeline_funnels(
    small_world: World,
) -> None:
    renewals_on_their_own_funnel(small_world)
    document = yaml.safe_load(small_world.config.read_text())
    del document["systems"]["pipedrive"]["pipeline_funnels"]["2"]  # forgotten
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    code, err = _check_offline(small_world)

    assert code == 2
    first, *rest = err.splitlines()  # one line per stage of the pipeline, each naming the key
    assert "systems.pipedrive.stage_map.2.6: unknown funnel stage 'renewal_due'" in first
    assert (
        "'renewal_due' is a stage of funnel 'renewal', and pipeline 2 follows funnel 'default' "
        "(systems.pipedrive.pipeline_funnels.2)"
    ) in first
    assert all(line.startswith("crmsync: error: ") for line in rest), err
    assert all("systems.pipedrive.stage_" in line for line in rest), err
