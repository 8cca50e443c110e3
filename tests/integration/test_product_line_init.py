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
from tests.integration.product_lines import RENEWAL


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
